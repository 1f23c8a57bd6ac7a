"""The failover status as the CLI and the admin API show it: state, why, probes, queue depth, history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from continuity.core.failover import Action, FailoverRecord, pending_actions
from continuity.core.failover_records import TransitionEntry
from continuity.core.probes import ProbeResult
from continuity.store.protocol import Store


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def since_text(record: FailoverRecord) -> str:
    """Since when the state holds: a time, or "install" before the first transition (the stored record has none)."""
    if record.version == 0 or not record.since:
        return "install (no transition yet)"
    return _iso(record.since)


def routing_sentence(record: FailoverRecord) -> str:
    """Where mail goes, in words that do not claim a switch still in progress (or partly done).

    ``record.routing`` is the side of the last completed switch; while the state still needs
    a switch (FAILING_OVER, FAILING_BACK, a compromise not yet switched) the sentence says so,
    and the last error says what part of it is done.
    """
    actions = pending_actions(record)
    if Action.SWITCH_TO_STANDBY in actions:
        return f"the {record.routing.value} (the last completed switch); the switch to the standby is not complete"
    if Action.SWITCH_TO_PRIMARY in actions:
        return f"the {record.routing.value} (the last completed switch); the switch back to the primary is not complete"
    return f"the {record.routing.value}"


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Everything `continuity status` prints."""

    record: FailoverRecord
    probes: tuple[ProbeResult, ...]
    queue_depth: int
    history: tuple[TransitionEntry, ...]

    def as_json(self) -> dict[str, object]:
        """A JSON-serialisable form (also the body of GET /api/v1/status)."""
        record = self.record
        return {
            "state": record.state.value,
            "since": _iso(record.since) if record.since else None,
            "reason": record.reason,
            "actor": record.actor,
            "routing": record.routing.value,
            "automatic": record.automatic,
            "paused_from": record.paused_from.value if record.paused_from else None,
            "last_error": record.last_error or None,
            "queue_depth": self.queue_depth,
            "probes": [{**probe.evidence(), "at": _iso(probe.at)} for probe in self.probes],
            "history": [
                {
                    "seq": entry.seq,
                    "at": _iso(entry.at),
                    "from": entry.previous.value,
                    "to": entry.state.value,
                    "event": entry.event.value,
                    "actor": entry.actor,
                    "reason": entry.reason,
                    "evidence": json.loads(entry.evidence_json),
                }
                for entry in self.history
            ],
        }


async def collect_status(store: Store, history: int = 10) -> StatusReport:
    """Read the status from the store (works in any process)."""
    return StatusReport(
        record=await store.failover.load(),
        probes=tuple(await store.failover.latest_probes()),
        queue_depth=await store.messages.count(),
        history=tuple(await store.failover.history(history)),
    )
