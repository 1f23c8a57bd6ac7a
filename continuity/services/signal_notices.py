"""What the admins and the user are told about a compromise signal (mail text and webhook body).

Both are announcements for continuity.services.notifier.Notifier: the admin notice goes
to the admin and reseller lists and to the webhook; the user notice only to the user's
alternate (outside) address, since their own mailbox may be in an attacker's hands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from continuity.core.signals import Response, SignalKind, StoredSignal

_RUNBOOK = "docs/compromise-runbook.md"


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class SignalNotice:
    """A signal as the admins and the webhook see it."""

    stored: StoredSignal
    appliance: str

    @property
    def subject(self) -> str:
        """The mail subject."""
        signal = self.stored.signal
        about = signal.mailbox or "the primary"
        return f"[continuity {self.appliance}] {signal.severity.value.upper()} {signal.kind.value}: {about}"

    def payload(self) -> dict[str, object]:
        """The webhook body."""
        signal = self.stored.signal
        return {
            "appliance": self.appliance,
            "type": "signal",
            "id": self.stored.id,
            "kind": signal.kind.value,
            "mailbox": signal.mailbox,
            "severity": signal.severity.value,
            "summary": signal.summary,
            "evidence": list(signal.evidence),
            "source": signal.source,
            "queue_id": signal.queue_id,
            "at": _when(signal.at),
            "responses": [response.value for response in self.stored.responses],
        }

    def text(self) -> str:
        """The mail body."""
        signal = self.stored.signal
        responses = set(self.stored.responses)
        about = f"the mailbox {signal.mailbox}" if signal.mailbox else "the primary mail server itself"
        lines = [
            f"The continuity appliance {self.appliance} noticed a sign that {about} is compromised:",
            "",
            f"  {signal.summary}",
            "",
            f"Kind:      {signal.kind.value} ({signal.severity.value})",
            f"When:      {_when(signal.at)}",
            f"Seen by:   {signal.source}" + (f" (message {signal.queue_id})" if signal.queue_id else ""),
            "",
            "Evidence:",
            *[f"  - {line}" for line in signal.evidence],
            "",
        ]
        if Response.CONTAIN in responses:
            lines += [
                "The mailbox is now CONTAINED: the mail the primary relays for it is held for review,",
                "not sent. Review it with 'continuity signals held', release or delete each message, and",
                f"clear the mailbox with 'continuity signals clear {signal.mailbox} --reason ...' when it is clean.",
                "",
            ]
        if Response.RECOMMEND_FAILOVER in responses:
            lines += [
                "RECOMMENDED: treat the primary as compromised and switch mail to the standby:",
                "  continuity failover --reason compromise --note 'signals: primary compromised'",
                "",
            ]
        if Response.FAILOVER in responses:
            lines += ["A COMPROMISED failover was ordered by the signal policy ([signals] primary_action).", ""]
        if signal.kind is not SignalKind.PRIMARY_COMPROMISE:
            lines.append(f"All signals of the mailbox: continuity signals list --mailbox {signal.mailbox}")
        lines.append(f"What to check on Exchange and how to clean up: {_RUNBOOK} in the appliance's documentation.")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class UserNotice:
    """What the user hears, at their alternate address."""

    stored: StoredSignal
    appliance: str
    organisation_contact: str

    @property
    def subject(self) -> str:
        """The mail subject."""
        return f"Security notice about your mailbox {self.stored.signal.mailbox}"

    def payload(self) -> dict[str, object]:
        """Not sent to any webhook; the same fields as the admin notice, minus the evidence."""
        signal = self.stored.signal
        return {"type": "user-notice", "mailbox": signal.mailbox, "kind": signal.kind.value, "at": _when(signal.at)}

    def text(self) -> str:
        """The mail body."""
        signal = self.stored.signal
        contained = Response.CONTAIN in self.stored.responses
        lines = [
            "Hello,",
            "",
            f"this is an automatic notice about your mailbox {signal.mailbox}. Our mail system noticed",
            f"activity that may not be yours: {signal.summary}.",
            "",
        ]
        if contained:
            lines += [
                "To protect you and the people you write to, mail sent from your mailbox is held for",
                "review until your IT team has checked it.",
                "",
            ]
        lines += [
            "If you did not do this, please contact your IT team now and change your password from a",
            "device you trust. Do not reply to this message.",
        ]
        if self.organisation_contact:
            lines += ["", f"Your IT team: {self.organisation_contact}"]
        return "\n".join(lines) + "\n"
