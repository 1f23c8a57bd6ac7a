"""Builds the feeds and the compromise signals from the settings (used by services/app.py).

:func:`build_signals` comes first (ingest tells it about every committed message);
:func:`start_feeds` then starts the relay listener (with the journal address on it), the
relay worker, the mailbox window and, when configured, the IMAP checks.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from continuity.adapters.dkim_signer import DkimSigner
from continuity.adapters.imap_auth import login_from_settings
from continuity.adapters.imap_search import ImapAccess
from continuity.adapters.smtp_client import SmtpDelivery
from continuity.adapters.smtp_relay import RelayAuthenticator, RelayHandler, RelayListener
from continuity.config.settings import Settings
from continuity.config.types import HostPort
from continuity.core.auth_failures import AuthFailureLimiter
from continuity.core.client_limits import ClientLimiter, ClientLimitPolicy
from continuity.core.models import MessageState
from continuity.services.directory import DirectoryCache
from continuity.services.gateway import tls_context
from continuity.services.ingest import IngestService
from continuity.services.journal_feed import JournalFeed
from continuity.services.mailbox_checks import MailboxChecks, Readiness
from continuity.services.mirror_window import MirrorWindow
from continuity.services.notifier import Notifier
from continuity.services.relay_feed import RelayFeed
from continuity.services.relay_worker import RelayWorker
from continuity.services.signal_responses import Responder
from continuity.services.signals import SignalService
from continuity.store.protocol import Store

log = logging.getLogger("continuity.feeds")


@dataclass
class FeedServices:
    """The feeds and signals of a running appliance."""

    signals: SignalService | None = None
    notifier: Notifier | None = None
    relay: RelayListener | None = None
    relay_address: HostPort | None = None
    worker: RelayWorker | None = None
    checks: MailboxChecks | None = None
    window: MirrorWindow | None = None
    tasks: list[tuple[str, Coroutine[Any, Any, None]]] = field(default_factory=list)

    async def stop_listening(self, grace: float) -> None:
        """Stop the relay listener, letting transactions in flight finish."""
        if self.relay is not None:
            await self.relay.stop(grace)

    async def close(self) -> None:
        """Write what the signals buffered and finish notifications in flight."""
        if self.signals is not None:
            await self.signals.stop()
        if self.notifier is not None:
            await self.notifier.drain()


def build_signals(settings: Settings, store: Store, directory: DirectoryCache) -> tuple[SignalService | None, Notifier]:
    """The signal service (None when [signals] enabled = false) and the notifier it speaks through."""
    config = settings.signals
    admins = list(dict.fromkeys([*settings.notify.admin_emails, *config.notify_emails]))
    notify = settings.notify.model_copy(update={"admin_emails": admins})
    notifier = Notifier(notify, SmtpDelivery(settings.outbound, settings.smtp.hostname), settings.smtp.hostname)
    if not config.enabled:
        return None, notifier
    responder = Responder(
        store,
        notifier,
        config.response_policy(),
        settings.smtp.hostname,
        contact=admins[0] if admins else "",
    )
    service = SignalService(
        store,
        responder,
        config.rate_policy(),
        domains=frozenset(settings.domains),
        directory=lambda: directory.entries,
        history_days=config.history_days,
        exempt=frozenset(config.exempt_mailboxes),
        primary_mailboxes=config.primary_mailboxes,
        primary_window=config.primary_window,
    )
    return service, notifier


def _imap_access(settings: Settings) -> ImapAccess | None:
    replay = settings.replay
    login = login_from_settings(replay)
    if not settings.primary.configured or login is None:
        log.error("[signals] imap_checks needs [primary] host and the [replay] login; IMAP checks are off")
        return None
    return ImapAccess(
        host=settings.primary.host,
        port=settings.primary.imap_port,
        login=login,
        tls=tls_context(replay.tls_verify, str(replay.ca_file) if replay.ca_file else None),
        timeout=settings.signals.imap_timeout,
    )


async def start_feeds(
    settings: Settings,
    store: Store,
    ingest: IngestService,
    directory: DirectoryCache,
    signals: SignalService | None,
    notifier: Notifier,
    primary_compromised: Callable[[], bool],
    tls: ssl.SSLContext | None,
) -> FeedServices:
    """Start the relay listener and build the background work (returned in .tasks, not yet started)."""
    feeds = settings.feeds
    services = FeedServices(signals=signals, notifier=notifier)
    services.window = MirrorWindow(
        store, feeds.window_days, settings.signals.history_days, feeds.prune_interval, clock=time.time
    )
    services.tasks.append(("mailbox-window", services.window.run()))
    if signals is not None and settings.signals.imap_checks:
        access = _imap_access(settings)
        if access is not None:
            checks = MailboxChecks(
                signals,
                access,
                sample_rate=settings.signals.imap_sample_rate,
                sent_delay=settings.signals.sent_check_delay,
                inbox_delay=settings.signals.inbox_check_delay,
                sent_folders=settings.signals.sent_folders,
                concurrency=settings.signals.imap_concurrency,
                domains=frozenset(settings.domains),
                ready=_reached_primary(store),
            )
            signals.on_sent = checks.sample_sent
            signals.on_inbound = checks.sample_inbound
            services.checks = checks
            services.tasks.append(("imap-checks", checks.run()))
    address = feeds.relay_address
    if address is None:
        if signals is not None:
            signals.start()
        return services

    def mailbox_of(address: str) -> str | None:
        entry = directory.entries.get(address.lower())
        return entry.mailbox if entry is not None else None

    def mailbox_for(address: str) -> str:
        return mailbox_of(address) or address.lower()

    def internal(address: str) -> bool:
        return address.rpartition("@")[2].lower() in settings.domains

    worker = RelayWorker(
        store.feeds,
        store.blobs,
        _next_hop(settings),
        DkimSigner(settings.dkim),
        settings.smtp.hostname,
        signals,
        bouncer=SmtpDelivery(settings.outbound, settings.smtp.hostname),
    )
    relay = RelayFeed(ingest, signals, primary_compromised, worker.wake, mailbox_for)
    journal = JournalFeed(ingest, signals, mailbox_of, internal) if feeds.journal_address else None
    limits = settings.smtp.content_limits
    limiter = ClientLimiter(ClientLimitPolicy.build(feeds.relay_max_sessions, 0, []), time.monotonic)
    authenticator = None
    if feeds.relay_username and feeds.relay_password is not None:
        failures = AuthFailureLimiter(feeds.relay_auth_max_failures, feeds.relay_auth_lockout, time.monotonic)
        authenticator = RelayAuthenticator(feeds.relay_username, feeds.relay_password.get_secret_value(), failures)
    auth_offered = authenticator is not None and (tls is not None or not feeds.relay_auth_require_tls)
    handler = RelayHandler(
        relay,
        journal,
        feeds.journal_address,
        feeds.relay_networks,
        limiter,
        settings.smtp.max_recipients,
        limits,
        auth_offered,
    )
    listener = RelayListener(
        settings.smtp.model_copy(update={"listen": str(address)}),
        handler,
        limiter,
        limits,
        tls,
        authenticator,
        feeds.relay_auth_require_tls,
    )
    try:
        bound = await listener.start()
    except OSError as exc:
        raise OSError(f"cannot listen for relay SMTP on {address}: {exc}") from None
    if signals is not None:
        signals.start()
    services.relay = listener
    services.relay_address = HostPort(*bound)
    services.worker = worker
    services.tasks.append(("relay-worker", worker.run()))
    log.info(
        "relay listener on %s for %s%s; relaying via %s%s",
        services.relay_address,
        ", ".join(feeds.relay_networks) or "no network",
        " and AUTH" if authenticator is not None else "",
        feeds.relay_next_hop or settings.outbound.smart_host or "each domain's MX",
        f"; journal reports to {feeds.journal_address}" if journal is not None else "",
    )
    return services


def _reached_primary(store: Store) -> Readiness:
    """Whether an inbound message is on the primary: journaled copies are; gateway mail once relayed."""

    async def ready(queue_id: str) -> bool | None:
        entry = await store.messages.get(queue_id)
        if entry is None:
            return None
        if entry.state in (MessageState.RELAYED, MessageState.MIRRORED):
            return True
        return False if entry.state is MessageState.RELAY else None

    return ready


def _next_hop(settings: Settings) -> SmtpDelivery:
    hop = settings.feeds.next_hop_address
    if hop is None:
        return SmtpDelivery(settings.outbound, settings.smtp.hostname)
    outbound = settings.outbound.model_copy(update={"smart_host": str(hop), "username": "", "password": None})
    return SmtpDelivery(outbound, settings.smtp.hostname)


def start_tasks(services: FeedServices) -> list[asyncio.Task[None]]:
    """Start the background coroutines."""
    return [asyncio.create_task(work, name=name) for name, work in services.tasks]
