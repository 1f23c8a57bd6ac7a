"""The failover repository protocol: the machine's persisted record, its history, operator commands, probes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState
from continuity.core.failover_records import CommandStatus, OperatorCommand, RelayItem, TransitionEntry
from continuity.core.health import HealthMemory
from continuity.core.probes import ProbeResult


class FailoverRepository(Protocol):
    """State that must survive restarts and be shared with CLI processes."""

    async def load(self) -> FailoverRecord:
        """The current record (NORMAL at version 0 before the first transition)."""
        ...

    async def save(
        self, record: FailoverRecord, previous: FailoverState, event: FailoverEvent, evidence_json: str
    ) -> TransitionEntry:
        """Store record and its transition in one transaction.

        The stored version must be record.version - 1, otherwise another writer got there
        first: StorageError and nothing changes.
        """
        ...

    async def history(self, limit: int = 50) -> list[TransitionEntry]:
        """The newest transitions, oldest first."""
        ...

    async def submit(self, actor: str, event: FailoverEvent, note: str) -> OperatorCommand:
        """Queue an operator command for the process that runs the monitor."""
        ...

    async def pending(self) -> list[OperatorCommand]:
        """Commands not yet carried out, oldest first."""
        ...

    async def finish(self, command_id: int, status: CommandStatus, result: str) -> None:
        """Record what became of a command."""
        ...

    async def command(self, command_id: int) -> OperatorCommand | None:
        """One command, or None."""
        ...

    async def record_probes(self, results: Sequence[ProbeResult]) -> None:
        """Keep the latest result of each probe (for status and the API)."""
        ...

    async def latest_probes(self) -> list[ProbeResult]:
        """The latest result of each probe, by name."""
        ...

    async def save_health(self, memory: HealthMemory) -> None:
        """Keep the health policy's memory (its streaks), replacing the last one."""
        ...

    async def load_health(self) -> HealthMemory | None:
        """The health policy's memory as last saved, or None before the first monitor cycle."""
        ...

    async def relay_batch(self, limit: int, skip: Sequence[str] = ()) -> list[RelayItem]:
        """Gateway mode: the oldest messages waiting to be relayed, except the queue ids in skip."""
        ...

    async def finish_relay(self, queue_id: str, delivered: Sequence[str], failed: Sequence[str]) -> None:
        """Record which recipients the primary took and which it refused for good.

        The message becomes relayed once every recipient is delivered, held (for an operator)
        when none is pending and some failed, and stays waiting while some are deferred. Only a
        message still waiting to be relayed changes.
        """
        ...

    async def requeue_relay(self) -> int:
        """Turn every message still waiting to be relayed into one queued for replay; returns how many."""
        ...
