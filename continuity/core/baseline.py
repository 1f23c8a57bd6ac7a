"""Per-mailbox sending baselines and the signals they raise (pure: no I/O).

A mailbox's history is its hourly totals over the last weeks (messages, recipients,
never-seen recipients); its baseline is its busiest hour. The last sliding hour is
compared with that baseline: a spike is ``spike_factor`` times the busiest hour, but
never less than a floor (so a quiet mailbox may still send a few dozen messages in an
hour); a hard cap applies whatever the history. A newsletter mailbox that sends to the
same thousands of subscribers every week has a high baseline and known recipients, so
its normal sends raise nothing; a stolen mailbox that suddenly sends to hundreds of
strangers is caught after ``min_new_recipients`` messages at most.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from continuity.core.signals import Severity, Signal, SignalKind

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class SendEvent:
    """One outbound message of a mailbox, as the baseline counts it."""

    at: float
    recipients: int
    new_recipients: int


@dataclass(frozen=True, slots=True)
class HourTotals:
    """Totals of one hour (a stored history row, or the sliding last hour)."""

    messages: int = 0
    recipients: int = 0
    new_recipients: int = 0


@dataclass(frozen=True, slots=True)
class Baseline:
    """A mailbox's history: how many hours it sent in, and its busiest hour by each measure."""

    active_hours: int = 0
    peak_messages: int = 0
    peak_recipients: int = 0
    peak_new_recipients: int = 0
    days: float = 0.0

    @classmethod
    def from_hours(cls, hours: Iterable[HourTotals], days: float) -> Baseline:
        """The baseline of hourly history rows."""
        rows = list(hours)
        return cls(
            active_hours=len(rows),
            peak_messages=max((row.messages for row in rows), default=0),
            peak_recipients=max((row.recipients for row in rows), default=0),
            peak_new_recipients=max((row.new_recipients for row in rows), default=0),
            days=days,
        )


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """Thresholds of the rate, recipient and bounce signals."""

    spike_factor: float = 3.0
    min_messages: int = 30
    min_recipients: int = 100
    max_messages: int = 2000
    max_recipients: int = 10000
    min_new_recipients: int = 20
    new_recipient_share: float = 0.8
    bounces_per_hour: int = 20

    def limit(self, peak: int, floor: int) -> int:
        """The spike limit for a measure: factor times its peak, at least floor."""
        return max(floor, math.ceil(self.spike_factor * peak))


class SlidingHour:
    """The send events and hard bounces of one mailbox within the last hour."""

    def __init__(self, span: float = HOUR) -> None:
        self._span = span
        self._events: deque[SendEvent] = deque()
        self._bounces: deque[float] = deque()

    def _expire(self, now: float) -> None:
        horizon = now - self._span
        while self._events and self._events[0].at <= horizon:
            self._events.popleft()
        while self._bounces and self._bounces[0] <= horizon:
            self._bounces.popleft()

    def add(self, event: SendEvent) -> None:
        """Count one message."""
        self._events.append(event)

    def add_bounces(self, at: float, count: int) -> None:
        """Count hard bounces."""
        self._bounces.extend([at] * count)

    def forget_before(self, at: float) -> None:
        """Drop everything before at (an admin cleared the mailbox then)."""
        self._events = deque(event for event in self._events if event.at >= at)
        self._bounces = deque(moment for moment in self._bounces if moment >= at)

    def totals(self, now: float) -> HourTotals:
        """Totals of the last hour."""
        self._expire(now)
        return HourTotals(
            len(self._events),
            sum(event.recipients for event in self._events),
            sum(event.new_recipients for event in self._events),
        )

    def bounces(self, now: float) -> int:
        """Hard bounces within the last hour."""
        self._expire(now)
        return len(self._bounces)


@dataclass(frozen=True, slots=True)
class Observed:
    """Where a signal comes from: the mailbox, the feed, the message and when."""

    mailbox: str
    source: str
    at: float
    queue_id: str = ""


def _days(baseline: Baseline) -> str:
    return f"{baseline.days:g} days"


def rate_signals(
    observed: Observed,
    baseline: Baseline,
    hour: HourTotals,
    policy: RatePolicy,
    severity: Callable[[SignalKind], Severity],
) -> list[Signal]:
    """Spikes, caps and never-seen recipients of the last hour (which includes the current message)."""

    def signal(kind: SignalKind, summary: str, evidence: list[str]) -> Signal:
        return Signal(
            kind, observed.mailbox, severity(kind), summary, tuple(evidence), observed.at, observed.source,
            observed.queue_id,
        )  # fmt: skip

    found: list[Signal] = []
    if hour.messages > policy.max_messages or hour.recipients > policy.max_recipients:
        found.append(
            signal(
                SignalKind.RATE_CAP,
                "sends more than the hard cap allows in one hour",
                [
                    f"{hour.messages} messages to {hour.recipients} recipients in the last hour",
                    f"caps: {policy.max_messages} messages, {policy.max_recipients} recipients per hour",
                ],
            )
        )
    message_limit = policy.limit(baseline.peak_messages, policy.min_messages)
    if hour.messages > message_limit:
        found.append(
            signal(
                SignalKind.RATE_SPIKE,
                "sends far more messages than it ever did",
                [
                    f"{hour.messages} messages in the last hour",
                    f"busiest hour in the last {_days(baseline)}: {baseline.peak_messages} messages",
                    f"limit {message_limit} ({policy.spike_factor:g} x, at least {policy.min_messages})",
                ],
            )
        )
    recipient_limit = policy.limit(baseline.peak_recipients, policy.min_recipients)
    if hour.recipients > recipient_limit:
        found.append(
            signal(
                SignalKind.RECIPIENT_SPIKE,
                "writes to far more recipients than it ever did",
                [
                    f"{hour.recipients} recipients in the last hour",
                    f"busiest hour in the last {_days(baseline)}: {baseline.peak_recipients} recipients",
                    f"limit {recipient_limit} ({policy.spike_factor:g} x, at least {policy.min_recipients})",
                ],
            )
        )
    new_limit = policy.limit(baseline.peak_new_recipients, policy.min_new_recipients)
    share = hour.new_recipients / hour.recipients if hour.recipients else 0.0
    if hour.new_recipients >= new_limit and share >= policy.new_recipient_share:
        found.append(
            signal(
                SignalKind.NEW_RECIPIENTS,
                "writes mostly to addresses it never wrote to or heard from",
                [
                    f"{hour.new_recipients} of {hour.recipients} recipients in the last hour never seen ({share:.0%})",
                    f"most never-seen recipients in one hour in the last {_days(baseline)}: "
                    f"{baseline.peak_new_recipients}",
                    f"threshold: at least {new_limit} and {policy.new_recipient_share:.0%}",
                ],
            )
        )
    return found


def bounce_signal(
    observed: Observed, bounces: int, policy: RatePolicy, severity: Callable[[SignalKind], Severity]
) -> Signal | None:
    """A burst of hard bounces within the last hour, or None."""
    if bounces < policy.bounces_per_hour:
        return None
    kind = SignalKind.BOUNCE_BURST
    return Signal(
        kind,
        observed.mailbox,
        severity(kind),
        "its mail bounces in bulk (hard bounces)",
        (f"{bounces} hard bounces in the last hour", f"threshold: {policy.bounces_per_hour} per hour"),
        observed.at,
        observed.source,
        observed.queue_id,
    )


class ContactKind(StrEnum):
    """How a mailbox knows an address."""

    # The mailbox sent mail to it.
    SENT = "sent"
    # The mailbox received mail from it.
    RECEIVED = "received"
    # An inbox rule or mailbox forwarding sent mail to it.
    FORWARD = "forward"


@dataclass(frozen=True, slots=True)
class ContactObservation:
    """A mailbox and an address it dealt with."""

    mailbox: str
    address: str
    kind: ContactKind
    at: float
