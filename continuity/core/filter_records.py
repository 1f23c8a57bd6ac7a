"""What the filter pipeline stores: verdicts per message, and its memory of threads and correspondents.

The thread memory feeds the reply-chain hijack stage (who took part in a conversation,
which link domains it used, how each sender's mail looked); the account memory feeds
the BEC stage (which bank accounts a correspondent has used before, and fingerprints of the
documents it sent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from continuity.core.pipeline import Decision, Direction, Finding, StageResult, StageStatus, Verdict


@dataclass(frozen=True, slots=True)
class StageSummary:
    """One stage's run, as stored."""

    stage: str
    status: StageStatus
    fired: bool
    seconds: float
    error: str = ""


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    """A message's verdict, score, findings and which stages ran and fired."""

    verdict: Verdict
    score: float
    direction: Direction
    evaluated_at: float
    findings: tuple[Finding, ...]
    stages: tuple[StageSummary, ...]
    reasons: tuple[str, ...] = ()

    @classmethod
    def of(cls, decision: Decision, results: tuple[StageResult, ...], direction: Direction, at: float) -> StoredVerdict:
        """Build the stored form of an evaluation."""
        return cls(
            verdict=decision.verdict,
            score=decision.score,
            direction=direction,
            evaluated_at=at,
            findings=tuple(finding for result in results for finding in result.findings),
            stages=tuple(
                StageSummary(result.stage, result.status, result.fired, round(result.seconds, 6), result.error)
                for result in results
            ),
            reasons=tuple(reason.message for reason in decision.deciding),
        )

    @property
    def fired(self) -> tuple[str, ...]:
        """Names of the stages that found something."""
        return tuple(stage.stage for stage in self.stages if stage.fired)

    def findings_json(self) -> str:
        """The findings as JSON (for storage)."""
        return json.dumps([[f.code, f.score, f.message, list(f.evidence)] for f in self.findings], ensure_ascii=False)

    def stages_json(self) -> str:
        """The stage summaries and reasons as JSON (for storage)."""
        return json.dumps(
            {
                "stages": [[s.stage, s.status.value, s.fired, s.seconds, s.error] for s in self.stages],
                "reasons": list(self.reasons),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(
        cls, verdict: str, score: float, direction: str, at: float, findings: str, stages: str
    ) -> StoredVerdict:
        """Rebuild from the stored columns."""
        stage_data = json.loads(stages)
        return cls(
            verdict=Verdict(verdict),
            score=score,
            direction=Direction(direction),
            evaluated_at=at,
            findings=tuple(Finding(str(c), float(s), str(m), tuple(e)) for c, s, m, e in json.loads(findings)),
            stages=tuple(
                StageSummary(str(n), StageStatus(st), bool(f), float(sec), str(err))
                for n, st, f, sec, err in stage_data["stages"]
            ),
            reasons=tuple(stage_data.get("reasons", ())),
        )


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """How a sender's mail looks: signing domain, sending network, mail program."""

    dkim_domain: str
    network: str
    mailer: str


@dataclass(frozen=True, slots=True)
class ThreadObservation:
    """One message as the thread memory records it."""

    message_id: str
    sender: str
    participants: frozenset[str]
    link_domains: frozenset[str]
    fingerprint: Fingerprint
    seen_at: float
    direction: Direction


@dataclass(frozen=True, slots=True)
class ThreadHistory:
    """What is remembered about the earlier messages of a thread."""

    messages: int = 0
    participants: frozenset[str] = frozenset()
    link_domains: frozenset[str] = frozenset()
    senders: frozenset[str] = frozenset()
    fingerprints: dict[str, frozenset[Fingerprint]] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        """True when at least one earlier message of the thread was seen."""
        return self.messages > 0


@dataclass(frozen=True, slots=True)
class AccountObservation:
    """Bank accounts a correspondent used in a message."""

    correspondent: str
    accounts: frozenset[str]
    seen_at: float


@dataclass(frozen=True, slots=True)
class DocumentObservation:
    """A document a correspondent sent: its MinHash sketch and the payment details in it (not the document)."""

    correspondent: str
    message_id: str
    filename: str
    sketch: tuple[int, ...]
    accounts: frozenset[str]
    seen_at: float
