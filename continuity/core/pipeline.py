"""The security filter pipeline's vocabulary and merge rules (pure: no I/O).

A stage inspects one message and returns data: findings (each with a code, a score and
a sentence a user may read), and header fields to add. It never acts. The pipeline runs
every stage (see continuity.services.filtering), then merges what they found into one
:class:`Verdict` under the operator's :class:`VerdictPolicy`:

- a finding whose code (or stage) the policy maps to a verdict imposes that verdict;
- the sum of all scores reaches the tag, quarantine or reject threshold;
- a stage that failed or timed out imposes TEMPFAIL when it is fail-closed, nothing
  when it is fail-open (the failure is still recorded);

and the strongest wins: reject > tempfail > quarantine > tag > accept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from continuity.core.message_view import MessageView


class Verdict(StrEnum):
    """What happens to a message, weakest first."""

    ACCEPT = "accept"
    TAG = "tag"
    QUARANTINE = "quarantine"
    TEMPFAIL = "tempfail"
    REJECT = "reject"

    @property
    def rank(self) -> int:
        """Strength: the merge keeps the verdict with the highest rank."""
        return _RANK[self]


_RANK = {verdict: rank for rank, verdict in enumerate(Verdict)}


def strongest(verdicts: Iterable[Verdict]) -> Verdict:
    """The strongest of verdicts (ACCEPT for none)."""
    return max(verdicts, key=lambda verdict: verdict.rank, default=Verdict.ACCEPT)


class Direction(StrEnum):
    """Which way the message travels when it is filtered."""

    INBOUND = "inbound"  # received over SMTP
    OUTBOUND = "outbound"  # sent by a user from webmail
    REPLAY = "replay"  # replayed into the primary after restoration


class StageStatus(StrEnum):
    """How a stage's run ended."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What is known about a message besides its content."""

    sender: str
    recipients: tuple[str, ...]
    direction: Direction = Direction.INBOUND
    client_address: str = ""
    client_helo: str = ""
    # The mailbox that sent it (outbound mail from webmail); empty for inbound mail.
    authenticated_user: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a stage noticed.

    code is "<stage>.<rule>" (e.g. "bec.bank_change"); message is a sentence fit to
    show a user ("asks to change bank details"); evidence holds the specifics (the new
    IBAN, the link domain, the virus name).
    """

    code: str
    score: float
    message: str
    evidence: tuple[str, ...] = ()

    @property
    def stage(self) -> str:
        """The stage part of the code."""
        return self.code.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class StageReport:
    """What a stage returns: findings and header fields to add (name, value)."""

    findings: tuple[Finding, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


class Stage(Protocol):
    """A filter stage: inspects, never acts.

    inspect runs on the event loop; a stage that parses or computes much moves that work
    to a thread itself. It may raise: the pipeline records the error and applies the
    stage's fail-open / fail-closed setting.
    """

    @property
    def name(self) -> str:
        """The stage's name, the first part of its finding codes."""
        ...

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        """Look at one message."""
        ...


@dataclass(frozen=True, slots=True)
class StageResult:
    """One stage's run as the pipeline recorded it."""

    stage: str
    status: StageStatus
    findings: tuple[Finding, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    error: str = ""
    fail_open: bool = True

    @property
    def fired(self) -> bool:
        """True when the stage found something."""
        return bool(self.findings)

    @property
    def failed(self) -> bool:
        """True when the stage could not give an answer."""
        return self.status in (StageStatus.ERROR, StageStatus.TIMEOUT)

    @property
    def score(self) -> float:
        """The sum of the stage's finding scores."""
        return sum(finding.score for finding in self.findings)


@dataclass(frozen=True, slots=True)
class VerdictPolicy:
    """The operator's rules for turning findings into a verdict.

    actions maps a finding code ("attachments.executable") or a whole stage
    ("clamd") to a verdict; the exact code wins over the stage. Score thresholds of 0
    are disabled.
    """

    tag_score: float = 4.0
    quarantine_score: float = 8.0
    reject_score: float = 0.0
    actions: Mapping[str, Verdict] = field(default_factory=dict)

    def action_for(self, finding: Finding) -> Verdict | None:
        """The verdict the policy maps this finding to, if any."""
        exact = self.actions.get(finding.code)
        return exact if exact is not None else self.actions.get(finding.stage)

    def verdict_for_score(self, score: float) -> Verdict:
        """The verdict the total score reaches."""
        for threshold, verdict in (
            (self.reject_score, Verdict.REJECT),
            (self.quarantine_score, Verdict.QUARANTINE),
            (self.tag_score, Verdict.TAG),
        ):
            if threshold > 0 and score >= threshold:
                return verdict
        return Verdict.ACCEPT


@dataclass(frozen=True, slots=True)
class Reason:
    """Why the verdict is what it is: the verdict one cause imposed, and the cause."""

    verdict: Verdict
    cause: str  # a finding code, "score", or "stage:<name>" for a failed fail-closed stage
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The merged outcome of all stages."""

    verdict: Verdict
    score: float
    reasons: tuple[Reason, ...]

    @property
    def deciding(self) -> tuple[Reason, ...]:
        """The reasons that impose the final verdict."""
        return tuple(reason for reason in self.reasons if reason.verdict is self.verdict)


def merge(results: Sequence[StageResult], policy: VerdictPolicy) -> Decision:
    """Merge stage results into one decision (strongest verdict wins)."""
    reasons: list[Reason] = []
    score = 0.0
    for result in results:
        if result.failed:
            if not result.fail_open:
                reasons.append(
                    Reason(Verdict.TEMPFAIL, f"stage:{result.stage}", f"the {result.stage} check is unavailable")
                )
            continue
        for finding in result.findings:
            score += finding.score
            action = policy.action_for(finding)
            if action is not None and action is not Verdict.ACCEPT:
                reasons.append(Reason(action, finding.code, finding.message))
    score = round(score, 3) if math.isfinite(score) else 0.0
    by_score = policy.verdict_for_score(score)
    if by_score is not Verdict.ACCEPT:
        top = sorted(
            (finding for result in results if not result.failed for finding in result.findings),
            key=lambda finding: -finding.score,
        )
        summary = "; ".join(dict.fromkeys(finding.message for finding in top[:3]))
        reasons.append(Reason(by_score, "score", summary or f"score {score}"))
    return Decision(strongest(reason.verdict for reason in reasons), score, tuple(reasons))
