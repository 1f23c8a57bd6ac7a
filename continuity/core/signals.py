"""Compromise signals, mailbox states and the response policy (pure: no I/O).

A signal is one thing the appliance noticed about a mailbox (or about the primary as a
whole), with its evidence: a sending spike, mail forwarded by an inbox rule, a hijacked
reply, an alert from a SIEM. The policy turns a signal into responses: notify the user
and the admins, contain the mailbox (the relay holds its outbound mail for review), and
for signals that implicate the primary itself, recommend or perform a COMPROMISED
failover. Carrying the responses out is continuity.services.signal_responses' job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class SignalKind(StrEnum):
    """What was noticed."""

    # Messages per hour far above the mailbox's own busiest hour.
    RATE_SPIKE = "rate_spike"
    # Recipients per hour far above the mailbox's own busiest hour.
    RECIPIENT_SPIKE = "recipient_spike"
    # Over a hard cap of messages or recipients per hour, whatever the history.
    RATE_CAP = "rate_cap"
    # Most recipients of the last hour were never seen before by this mailbox.
    NEW_RECIPIENTS = "new_recipients"
    # Many hard bounces for this mailbox's mail within an hour.
    BOUNCE_BURST = "bounce_burst"
    # An inbox rule (or mailbox forwarding) sends mail to an external address not seen before.
    RULE_FORWARD = "rule_forward"
    # Outbound mail the filter pipeline judged malicious (a hijacked reply, a bank-detail change).
    MALICIOUS_OUTBOUND = "malicious_outbound"
    # Mail relayed for the mailbox is not in its Sent Items on the primary.
    SENT_ITEMS_MISSING = "sent_items_missing"
    # Inbound mail left the Inbox within seconds (a hidden rule moved or deleted it).
    INBOX_VANISHED = "inbox_vanished"
    # An alert posted by a SIEM or Microsoft Defender.
    EXTERNAL_ALERT = "external_alert"
    # Signals implicate the primary server itself, not one mailbox.
    PRIMARY_COMPROMISE = "primary_compromise"


class Severity(StrEnum):
    """How bad a signal is, weakest first."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Strength, for comparisons."""
        return _RANK[self]


_RANK = {severity: rank for rank, severity in enumerate(Severity)}

DEFAULT_SEVERITY: Mapping[SignalKind, Severity] = {
    SignalKind.RATE_SPIKE: Severity.HIGH,
    SignalKind.RECIPIENT_SPIKE: Severity.HIGH,
    SignalKind.RATE_CAP: Severity.HIGH,
    SignalKind.NEW_RECIPIENTS: Severity.HIGH,
    SignalKind.BOUNCE_BURST: Severity.HIGH,
    SignalKind.RULE_FORWARD: Severity.HIGH,
    SignalKind.MALICIOUS_OUTBOUND: Severity.HIGH,
    SignalKind.SENT_ITEMS_MISSING: Severity.MEDIUM,
    SignalKind.INBOX_VANISHED: Severity.MEDIUM,
    SignalKind.EXTERNAL_ALERT: Severity.HIGH,
    SignalKind.PRIMARY_COMPROMISE: Severity.CRITICAL,
}


class PrimaryAction(StrEnum):
    """What to do when signals implicate the primary itself."""

    OFF = "off"
    # Record the signal and tell the admins which command to run.
    RECOMMEND = "recommend"
    # Order a COMPROMISED failover through the failover controller.
    FAILOVER = "failover"


class Response(StrEnum):
    """Something done about a signal."""

    NOTIFY_USER = "notify_user"
    NOTIFY_ADMINS = "notify_admins"
    CONTAIN = "contain"
    RECOMMEND_FAILOVER = "recommend_failover"
    FAILOVER = "failover"


class MailboxStatus(StrEnum):
    """Where a mailbox stands."""

    NORMAL = "normal"
    # Signals were raised; nothing is held.
    FLAGGED = "flagged"
    # The relay holds the mailbox's outbound mail for review until an admin clears it.
    CONTAINED = "contained"


@dataclass(frozen=True, slots=True)
class Signal:
    """One thing noticed, with its evidence.

    mailbox is "" for a signal about the primary as a whole. key distinguishes signals of
    one kind that are separate findings (each new forward target is one); a signal whose
    kind and key are already open for the mailbox is not raised again until it is cleared.
    """

    kind: SignalKind
    mailbox: str
    severity: Severity
    summary: str
    evidence: tuple[str, ...]
    at: float
    source: str
    queue_id: str = ""
    key: str = ""

    @property
    def dedupe(self) -> str:
        """The identity of the finding for de-duplication."""
        return f"{self.kind.value}:{self.key}"


@dataclass(frozen=True, slots=True)
class StoredSignal:
    """A recorded signal and the responses taken."""

    id: int
    signal: Signal
    responses: tuple[Response, ...]
    cleared_at: float | None = None


@dataclass(frozen=True, slots=True)
class MailboxState:
    """A mailbox's standing and when an admin last cleared it."""

    mailbox: str
    status: MailboxStatus = MailboxStatus.NORMAL
    since: float = 0.0
    reason: str = ""
    cleared_at: float = 0.0
    cleared_by: str = ""

    @property
    def contained(self) -> bool:
        """True while the relay holds the mailbox's mail."""
        return self.status is MailboxStatus.CONTAINED


@dataclass(frozen=True, slots=True)
class ResponsePolicy:
    """The operator's rules for responding to signals."""

    notify_at: Severity = Severity.MEDIUM
    contain_at: Severity = Severity.HIGH
    notify_user: bool = True
    notify_admins: bool = True
    primary_action: PrimaryAction = PrimaryAction.RECOMMEND
    severities: Mapping[SignalKind, Severity] = field(default_factory=dict)

    def severity(self, kind: SignalKind) -> Severity:
        """The configured severity of a kind (the default unless overridden)."""
        return self.severities.get(kind, DEFAULT_SEVERITY[kind])


def responses_for(signal: Signal, state: MailboxState | None, policy: ResponsePolicy) -> tuple[Response, ...]:
    """The responses a signal calls for, given the mailbox's current state.

    A mailbox already contained is not contained again and its user is not told again;
    the admins hear about every new finding that reaches the notification threshold.
    """
    if signal.kind is SignalKind.PRIMARY_COMPROMISE:
        chosen: list[Response] = [Response.NOTIFY_ADMINS] if policy.notify_admins else []
        if policy.primary_action is PrimaryAction.RECOMMEND:
            chosen.append(Response.RECOMMEND_FAILOVER)
        elif policy.primary_action is PrimaryAction.FAILOVER:
            chosen.append(Response.FAILOVER)
        return tuple(chosen)
    contained = state is not None and state.contained
    chosen = []
    if signal.severity.rank >= policy.notify_at.rank:
        if policy.notify_admins:
            chosen.append(Response.NOTIFY_ADMINS)
        if policy.notify_user and signal.mailbox and not contained:
            chosen.append(Response.NOTIFY_USER)
    if signal.mailbox and not contained and signal.severity.rank >= policy.contain_at.rank:
        chosen.append(Response.CONTAIN)
    return tuple(chosen)


def implicated_mailboxes(signals: Iterable[Signal], now: float, window: float, threshold: Severity) -> frozenset[str]:
    """Mailboxes with a signal at or above threshold within the last window seconds."""
    return frozenset(
        signal.mailbox
        for signal in signals
        if signal.mailbox and signal.at >= now - window and signal.severity.rank >= threshold.rank
    )
