"""The replay step of RESTORING, as an interface the replayer implements.

Entering RESTORING calls :meth:`Replayer.start`; every monitor cycle in RESTORING asks
:meth:`Replayer.progress`, and a completed replay moves the machine on to FAILING_BACK.
Leaving RESTORING any other way (the primary fell again, a compromise, a pause) calls
:meth:`Replayer.stop`.

Until a replayer is installed, :class:`QueueWatch` stands in honestly: it replays
nothing, and reports the replay complete only when no message waits for replay (so a
failover during which no mail arrived can fail back); otherwise RESTORING lasts, and
says so every cycle, until the queue is replayed by other means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from continuity.store.protocol import Store


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """Whether the replay is complete, and one sentence about it."""

    completed: bool
    detail: str


class Replayer(Protocol):
    """Replays mail received on the standby into the primary."""

    async def start(self) -> None:
        """Begin (or continue) replaying; returns at once, the work goes on in the background."""
        ...

    async def stop(self) -> None:
        """Stop replaying; what is replayed stays replayed, the rest stays queued."""
        ...

    async def progress(self) -> ReplayProgress:
        """How far the replay is."""
        ...


class QueueWatch:
    """The stand-in until a replayer is installed: replays nothing, completes only on an empty queue."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def progress(self) -> ReplayProgress:
        waiting = await self._store.messages.count()
        if waiting == 0:
            return ReplayProgress(True, "no message waits for replay")
        return ReplayProgress(
            False, f"{waiting} message(s) wait for replay and no replayer is installed in this version"
        )
