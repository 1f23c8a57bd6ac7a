"""Notifications on every failover state change: mail to the admin list and an optional webhook.

Mail goes through the standby's own outbound path (continuity.adapters.smtp_client:
the smart host or the recipients' MX), never through the primary, which may be the
thing that is down. Notifications run in the background and never delay a transition;
a failure to notify is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import httpx

from continuity.config.notify import NotifySettings
from continuity.core.delivery import DeliveryReport, DeliveryStatus
from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState
from continuity.services.failover_status import routing_sentence

log = logging.getLogger("continuity.notify")


def _host(url: str) -> str:
    """The host of a webhook URL, which is all the log may say about it."""
    return httpx.URL(url).host or "?"


class _HideWebhookUrls(logging.Filter):
    """Drops httpx's own "HTTP Request: POST <url>" lines when the URL is a webhook's."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.urls:
            return True
        text = record.getMessage()
        return not any(url in text for url in self.urls)


_HIDDEN = _HideWebhookUrls()
logging.getLogger("httpx").addFilter(_HIDDEN)


class MailSender(Protocol):
    """The outbound path (continuity.adapters.smtp_client.SmtpDelivery)."""

    async def deliver(self, sender: str, recipients: list[str], message: bytes) -> DeliveryReport:
        """Deliver once, report per recipient."""
        ...


class Announcement(Protocol):
    """Something to tell the admins: a state change, or a compromise signal (continuity.services.signal_notices)."""

    @property
    def subject(self) -> str:
        """The mail subject."""
        ...

    def payload(self) -> dict[str, object]:
        """The webhook body."""
        ...

    def text(self) -> str:
        """The mail body."""
        ...


@dataclass(frozen=True, slots=True)
class StateChange:
    """What is announced."""

    previous: FailoverState
    event: FailoverEvent
    record: FailoverRecord
    evidence: dict[str, object]
    appliance: str

    @property
    def subject(self) -> str:
        """The mail subject."""
        if self.record.state is self.previous:
            return f"[continuity {self.appliance}] {self.record.state.value}: {self.event.value}"
        return f"[continuity {self.appliance}] {self.previous.value} -> {self.record.state.value}"

    def payload(self) -> dict[str, object]:
        """The webhook body."""
        return {
            "appliance": self.appliance,
            "previous": self.previous.value,
            "state": self.record.state.value,
            "event": self.event.value,
            "since": datetime.fromtimestamp(self.record.since, tz=UTC).isoformat(timespec="seconds"),
            "actor": self.record.actor,
            "reason": self.record.reason,
            "routing": self.record.routing.value,
            "last_error": self.record.last_error,
            "evidence": self.evidence,
        }

    def text(self) -> str:
        """The mail body."""
        payload = self.payload()
        lines = [
            f"The continuity appliance {self.appliance} changed state: {self.previous.value} -> "
            f"{self.record.state.value} ({self.event.value}).",
            "",
            f"When:    {payload['since']}",
            f"Who:     {self.record.actor}",
            f"Why:     {self.record.reason}",
            f"Mail goes to: {routing_sentence(self.record)}.",
        ]
        if self.record.last_error:
            lines.append(f"Last switch error: {self.record.last_error}")
        lines += ["", "Evidence:", json.dumps(self.evidence, indent=2, sort_keys=True, default=str), ""]
        lines.append("Run 'continuity status' on the appliance for the current state.")
        return "\n".join(lines) + "\n"


class Notifier:
    """Sends each state change to the admins and the webhook, in the background."""

    def __init__(self, settings: NotifySettings, mail: MailSender | None, hostname: str) -> None:
        self._settings = settings
        self._mail = mail
        self._hostname = hostname
        self._tasks: set[asyncio.Task[None]] = set()
        if settings.webhook_url is not None:
            url = settings.webhook_url.get_secret_value()
            _HIDDEN.urls.update((url, str(httpx.URL(url))))

    @property
    def sender(self) -> str:
        """The envelope and header sender of notification mail."""
        return self._settings.from_address or f"continuity@{self._hostname}"

    def announce(self, change: Announcement) -> None:
        """Start notifying; returns at once."""
        if self._settings.admin_emails and self._mail is not None:
            self._spawn(self._send_mail(change, self._settings.admin_emails))
        if self._settings.webhook_url is not None:
            self._spawn(self._call_webhook(change))

    def mail(self, change: Announcement, recipients: Sequence[str]) -> None:
        """Start mailing change to recipients only (no webhook); returns at once."""
        if recipients and self._mail is not None:
            self._spawn(self._send_mail(change, recipients))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the notifications in flight (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _send_mail(self, change: Announcement, recipients: Sequence[str]) -> None:
        assert self._mail is not None
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = change.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self._hostname)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(change.text())
        try:
            async with asyncio.timeout(self._settings.timeout):
                report = await self._mail.deliver(self.sender, list(recipients), bytes(message))
        except Exception as exc:
            log.error("notification mail '%s' could not be sent: %s", change.subject, exc)
            return
        for result in report.results:
            if result.status is not DeliveryStatus.DELIVERED:
                log.error(
                    "notification mail to %s %s: %d %s", result.recipient, result.status.value, result.code, result.text
                )

    async def _call_webhook(self, change: Announcement) -> None:
        assert self._settings.webhook_url is not None
        url = self._settings.webhook_url.get_secret_value()
        headers = {"User-Agent": "continuity-notify"}
        if self._settings.webhook_secret is not None:
            headers["Authorization"] = f"Bearer {self._settings.webhook_secret.get_secret_value()}"
        try:
            async with httpx.AsyncClient(timeout=self._settings.timeout) as client:
                response = await client.post(url, json=change.payload(), headers=headers)
        except httpx.HTTPError as exc:
            # The URL is a credential: the log names the host only, and keeps it out of the error's text.
            reason = str(exc).replace(url, "[webhook URL]") or type(exc).__name__
            log.error("the [notify] webhook on %s failed for '%s': %s", _host(url), change.subject, reason)
            return
        if response.status_code >= 300:
            log.error(
                "the [notify] webhook on %s answered %d for '%s'", _host(url), response.status_code, change.subject
            )
