"""Per-mailbox flow control of the replay: rate slots, pauses that obey the server's backoff hint, predictions."""

from __future__ import annotations

import pytest

from continuity.core.replay_mailbox_flow import (
    MailboxFlows,
    MailboxLimits,
    mailbox_throttle,
    observed_mailbox_rate,
    predict_duration,
    suggested_backoff,
)

EXO_BAD = "BAD Request is throttled. Suggested Backoff Time: 1234 milliseconds"


def test_suggested_backoff_is_read_from_exchange_online_wording() -> None:
    assert suggested_backoff(EXO_BAD) == pytest.approx(1.234)
    assert suggested_backoff("NO [THROTTLED] Suggested Backoff Time: 3 seconds") == 3.0
    assert suggested_backoff("NO [LIMIT] Server busy") is None


def test_per_mailbox_throttle_is_told_apart_from_a_busy_server() -> None:
    assert mailbox_throttle(EXO_BAD)
    assert mailbox_throttle("NO [THROTTLED] slow down")
    assert not mailbox_throttle("NO [LIMIT] Server busy, try again later")
    assert not mailbox_throttle("NO Server Unavailable. 15")


def test_each_mailbox_keeps_its_own_rate() -> None:
    flows = MailboxFlows(MailboxLimits(rate=4.0, pause=1.0, pause_max=60.0))
    assert [flows.delay("a", 0.0) for _ in range(3)] == pytest.approx([0.0, 0.25, 0.5])
    assert flows.delay("b", 0.0) == 0.0  # another mailbox is not held back by a's slots


def test_a_throttled_mailbox_pauses_alone_for_the_suggested_backoff() -> None:
    flows = MailboxFlows(MailboxLimits(rate=0.0, pause=1.0, pause_max=60.0))
    assert flows.throttled("a", 10.0, EXO_BAD) == pytest.approx(1.234)
    assert flows.paused("a", 11.0) and not flows.paused("a", 11.3)
    assert not flows.paused("b", 11.0)
    assert flows.delay("a", 10.5) == pytest.approx(0.734)
    assert flows.delay("b", 10.5) == 0.0


def test_without_a_hint_pauses_double_up_to_the_maximum_and_reset_after_success() -> None:
    flows = MailboxFlows(MailboxLimits(rate=0.0, pause=1.0, pause_max=3.0))
    assert [flows.throttled("a", 0.0, "NO [THROTTLED]") for _ in range(3)] == [1.0, 2.0, 3.0]
    flows.succeeded("a", 5.0)
    assert flows.throttled("a", 6.0, "NO [THROTTLED]") == 1.0
    assert flows.throttled("a", 6.0, "Suggested Backoff Time: 999999 milliseconds") == 3.0  # capped


def test_prediction_uses_the_observed_rate_and_the_lanes() -> None:
    flows = MailboxFlows(MailboxLimits(rate=4.0, pause=1.0, pause_max=60.0))
    # Before anything is observed: mailbox_rate. 10 mailboxes x 20 copies at 4/s, 5 lanes: 2 rounds of 5 s.
    remaining = {f"m{n}": 20 for n in range(10)}
    assert flows.predicted_seconds(remaining, lanes=5, now=0.0) == pytest.approx(10.0)
    # Observed: 2 messages per second per mailbox.
    for step in range(5):
        flows.succeeded("m0", step * 0.5)
    assert flows.observed_rate() == pytest.approx(2.0)
    assert flows.predicted_seconds({"m0": 20}, lanes=5, now=0.0) == pytest.approx(10.0)
    assert flows.predicted_seconds({"m0": 0}, lanes=5, now=0.0) == 0.0


def test_prediction_counts_a_pause_and_is_unknown_without_any_rate() -> None:
    flows = MailboxFlows(MailboxLimits(rate=1.0, pause=1.0, pause_max=60.0))
    flows.throttled("m0", 0.0, "Suggested Backoff Time: 5000 milliseconds")
    assert flows.predicted_seconds({"m0": 2}, lanes=1, now=0.0) == pytest.approx(7.0)
    unlimited = MailboxFlows(MailboxLimits(rate=0.0, pause=1.0, pause_max=60.0))
    assert unlimited.predicted_seconds({"m0": 2}, lanes=1, now=0.0) is None


def test_observed_mailbox_rate_spreads_the_throughput_over_the_mailboxes_replayed_at_once() -> None:
    assert observed_mailbox_rate(delivered=2, elapsed=10.0, lanes=4, mailboxes=10) is None
    assert observed_mailbox_rate(delivered=160, elapsed=10.0, lanes=4, mailboxes=10) == pytest.approx(4.0)
    assert observed_mailbox_rate(delivered=40, elapsed=10.0, lanes=4, mailboxes=1) == pytest.approx(4.0)


def test_the_floor_of_the_benchmark_is_what_predict_duration_gives() -> None:
    # 1,000 mailboxes x 20 messages at 4 msg/s each, 64 at once: ceil(1000 / 64) rounds of 5 s is the floor.
    remaining = {f"m{n}": 20 for n in range(1000)}
    predicted = predict_duration(remaining, 4.0, 64)
    assert predicted == pytest.approx(1000 * 5.0 / 64)
    assert predicted is not None and predicted <= 16 * 5.0
