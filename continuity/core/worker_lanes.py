"""Which filter worker may take a message: the heavy and light lanes (pure).

Half of the workers (at least one) make the heavy lane, the rest the light one; a
replacement takes the lane of the worker it replaces (light first). A message over
``HEAVY_BYTES`` goes only to the heavy lane, one at a time per worker, and only to a
worker that holds no small message. A small one goes to any worker that holds no large
one, and keeps off the heavy lane while large ones wait for it. With one worker, that
worker takes everything. ``held`` is, for each message a worker holds, whether it is large.
"""

from __future__ import annotations

from collections.abc import Sequence

HEAVY_BYTES = 256 * 1024
_HEAVY_AT_ONCE = 1  # large messages one worker holds at once when it is the only worker


def takes_heavy(in_heavy_lane: bool, held: Sequence[bool], processes: int, most: int) -> bool:
    """Whether a worker may take a large message now (most: messages one worker may hold)."""
    if not in_heavy_lane or len(held) >= most:
        return False
    if processes == 1:
        return sum(held) < _HEAVY_AT_ONCE
    return not held  # none of its small messages waits behind a large one


def takes_light(in_heavy_lane: bool, held: Sequence[bool], processes: int, heavy_waiting: bool, most: int) -> bool:
    """Whether a worker may take a small message now."""
    if len(held) >= most:
        return False
    if processes == 1 or not in_heavy_lane:
        return True
    return not heavy_waiting and not any(held)


def joins_heavy_lane(lanes: Sequence[bool], processes: int) -> bool:
    """The lane of a worker that starts beside workers in lanes (True: heavy): light first."""
    light_wanted = processes - max(1, processes // 2)
    return sum(not heavy for heavy in lanes) >= light_wanted
