"""The audit log's hash chain: each entry commits to the one before it.

Every failover transition, quarantine release and security response is an entry
(who, what, why, when, and the evidence). An entry's hash covers its fields and the
previous entry's hash, so changing, removing or reordering any entry breaks every hash
after it; `continuity audit verify` recomputes the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What is being recorded; details is JSON-serialisable evidence (probe results, DNS changes...)."""

    actor: str
    action: str
    reason: str
    details_json: str = "{}"

    @classmethod
    def of(cls, actor: str, action: str, reason: str, details: Mapping[str, object] | None = None) -> AuditRecord:
        """Build a record, serialising details canonically."""
        return cls(actor, action, reason, canonical_json(details or {}))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A stored audit entry."""

    seq: int
    at: float
    record: AuditRecord
    prev_hash: str
    hash: str

    @property
    def details(self) -> object:
        """The evidence, parsed."""
        return json.loads(self.record.details_json)


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """The result of verifying a chain: ok, or the first entry that does not fit and why."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no whitespace, so equal data always hashes equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(seq: int, at: float, record: AuditRecord, prev_hash: str) -> str:
    """The hash that entry seq must carry."""
    payload = canonical_json(
        [seq, repr(at), record.actor, record.action, record.reason, record.details_json, prev_hash]
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def verify_chain(entries: Iterable[AuditEntry], head: tuple[int, str] | None = None) -> ChainVerdict:
    """Recompute every hash in order.

    head is the (seq, hash) of the newest entry as recorded outside the database (the
    anchor file); with it, removing entries from the end or rebuilding the whole chain
    is detected too.
    """
    previous_hash = GENESIS
    expected_seq = 1
    head_seen = False
    for entry in entries:
        if entry.seq != expected_seq:
            return ChainVerdict(False, expected_seq - 1, entry.seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != previous_hash:
            return ChainVerdict(False, expected_seq - 1, entry.seq, "its link to the previous entry is broken")
        if entry_hash(entry.seq, entry.at, entry.record, entry.prev_hash) != entry.hash:
            return ChainVerdict(False, expected_seq - 1, entry.seq, "its content does not match its hash (altered)")
        if head is not None and entry.seq == head[0]:
            if entry.hash != head[1]:
                return ChainVerdict(False, expected_seq - 1, entry.seq, "it differs from the recorded head (rewritten)")
            head_seen = True
        previous_hash = entry.hash
        expected_seq += 1
    count = expected_seq - 1
    if head is not None and head[0] > 0 and not head_seen:
        return ChainVerdict(False, count, count + 1, f"entries {count + 1} to {head[0]} were removed")
    return ChainVerdict(True, count)
