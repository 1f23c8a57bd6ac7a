"""The worker lanes: large messages only in the heavy lane, small ones kept off it while large ones wait."""

from __future__ import annotations

from continuity.core.worker_lanes import joins_heavy_lane, takes_heavy, takes_light


def test_lanes_are_filled_light_first_then_heavy_and_a_replacement_takes_the_missing_lane() -> None:
    assert [joins_heavy_lane([], 2), joins_heavy_lane([False], 2)] == [False, True]
    assert joins_heavy_lane([True], 2) is False  # the light worker was replaced
    assert joins_heavy_lane([False], 2) is True  # the heavy worker was replaced
    assert [joins_heavy_lane([False] * n, 4) for n in range(4)] == [False, False, True, True]
    assert joins_heavy_lane([], 1) is True  # one worker takes everything


def test_a_large_message_waits_for_a_heavy_lane_worker_that_holds_nothing() -> None:
    assert takes_heavy(True, [], 2, 32)
    assert not takes_heavy(True, [False], 2, 32)  # a small message would wait behind it
    assert not takes_heavy(False, [], 2, 32)
    assert takes_heavy(True, [False, False], 1, 32) and not takes_heavy(True, [True], 1, 32)


def test_small_messages_keep_off_the_heavy_lane_while_large_ones_hold_or_wait_for_it() -> None:
    assert takes_light(False, [], 2, True, 32)
    assert takes_light(True, [False], 2, False, 32)
    assert not takes_light(True, [True], 2, False, 32)
    assert not takes_light(True, [], 2, True, 32)
    assert takes_light(True, [True], 1, True, 32)  # alone, it takes everything
    assert not takes_light(False, [False] * 32, 2, False, 32)
