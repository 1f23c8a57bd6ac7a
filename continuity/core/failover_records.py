"""Stored records around the failover machine: transition history and operator commands."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from continuity.core.failover import FailoverEvent, FailoverState


@dataclass(frozen=True, slots=True)
class TransitionEntry:
    """One persisted transition (also written to the audit log)."""

    seq: int
    at: float
    previous: FailoverState
    state: FailoverState
    event: FailoverEvent
    actor: str
    reason: str
    evidence_json: str


class CommandStatus(StrEnum):
    """Where an operator command stands."""

    PENDING = "pending"
    DONE = "done"
    REJECTED = "rejected"
    # Carried out, but the switch it started failed (refused, or not verified everywhere): see the result.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    """An order given through the CLI or the API, carried out by whoever holds the data directory."""

    id: int
    at: float
    actor: str
    event: FailoverEvent
    note: str
    status: CommandStatus = CommandStatus.PENDING
    result: str = ""


@dataclass(frozen=True, slots=True)
class RelayItem:
    """A message waiting to be relayed to the primary (gateway mode), with its pending recipients."""

    queue_id: str
    sender: str
    recipients: tuple[str, ...]
    sha256: str
    trace_header: bytes
