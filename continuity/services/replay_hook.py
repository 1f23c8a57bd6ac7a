"""The replay step of RESTORING, as an interface the replayer implements.

Entering RESTORING calls :meth:`Replayer.start`; every monitor cycle in RESTORING asks
:meth:`Replayer.progress`, and a completed replay moves the machine on to FAILING_BACK.
Leaving RESTORING any other way (the primary fell again, a compromise, a pause) calls
:meth:`Replayer.stop`.

The implementation is continuity.services.replayer.ReplayService, installed by
continuity.services.failover_wiring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
