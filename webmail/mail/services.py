"""What the webmail's handlers use: the store, the settings, the indexer, the outbound queue, banners."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

from continuity.config.settings import Settings
from continuity.core.audit import AuditRecord
from continuity.core.failover import FailoverState
from continuity.core.pipeline import Verdict
from continuity.services.content_reader import ContentReader
from continuity.services.outbound import OutboundService
from continuity.services.webmail_index import WebmailIndexer
from continuity.store.filters_protocol import VerdictRepository
from continuity.store.protocol import Store
from webmail.security.devices import DeviceCookies
from webmail.security.sessions import SessionManager


@dataclass(frozen=True, slots=True)
class SecurityBanner:
    """What the filter pipeline found in a message, for the message view."""

    level: str  # "warning" or "danger"
    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FailoverBanner:
    """Shown on every page while the standby serves mail."""

    text: str


_SERVING = {
    FailoverState.FAILING_OVER: "is being moved to the continuity service",
    FailoverState.FAILED_OVER: "is served by the continuity service",
    FailoverState.COMPROMISED: "is served by the continuity service",
    FailoverState.RESTORING: "is served by the continuity service while it is copied back",
    FailoverState.FAILING_BACK: "is being switched back to the main mail server",
}


@dataclass
class WebmailServices:
    """Shared by every webmail handler."""

    settings: Settings
    store: Store
    sessions: SessionManager
    indexer: WebmailIndexer
    outbound: OutboundService
    devices: DeviceCookies
    reader: ContentReader  # parses stored messages for display (in the worker processes under serve)
    verdicts: VerdictRepository | None = None
    # Signs the URLs of inline images (see webmail.mail.message_routes.inline_token); new per process.
    inline_secret: bytes = field(default_factory=lambda: os.urandom(32))

    async def failover_banner(self) -> FailoverBanner | None:
        """The banner sentence while the appliance is failed over, else None."""
        record = await self.store.failover.load()
        phrase = _SERVING.get(record.state)
        if phrase is None:
            return None
        since = datetime.fromtimestamp(record.since, tz=UTC).strftime("%H:%M UTC on %d %b") if record.since else "now"
        reason = record.reason.rstrip(".") or "the main mail server is unavailable"
        if record.state is FailoverState.COMPROMISED:
            reason = "the main mail server is being cleaned up after a security incident"
        return FailoverBanner(f"Your mail {phrase} since {since} because {reason}.")

    async def security_banner(self, queue_id: str) -> SecurityBanner | None:
        """What the filter found in a message, when it found anything."""
        if self.verdicts is None:
            return None
        stored = await self.verdicts.get(queue_id)
        if stored is None or (stored.verdict is Verdict.ACCEPT and not stored.findings):
            return None
        danger = stored.verdict in (Verdict.QUARANTINE, Verdict.REJECT, Verdict.TEMPFAIL)
        # The reasons only repeat the deciding findings; they matter when there are none (a failed stage).
        lines = tuple(dict.fromkeys(f.message for f in stored.findings)) or tuple(dict.fromkeys(stored.reasons))
        title = "This message looks dangerous" if danger else "Be careful with this message"
        return SecurityBanner("danger" if danger else "warning", title, lines)

    async def audit(self, mailbox: str, action: str, reason: str, client: str) -> None:
        """Record an account change (password, second factor) in the hash-chained audit log."""
        await self.store.audit.append(AuditRecord.of(f"webmail:{mailbox}", action, reason, {"client": client}))
