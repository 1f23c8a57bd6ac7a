"""Building the webmail's services from the settings and the store, and their background tasks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from continuity.adapters.dkim_signer import DkimSigner
from continuity.adapters.smtp_client import SmtpDelivery
from continuity.config.settings import Settings
from continuity.errors import ContinuityError
from continuity.services.content_reader import ContentReader
from continuity.services.outbound import OutboundFilter, OutboundService
from continuity.services.webmail_index import WebmailIndexer
from continuity.store.filters_protocol import VerdictRepository
from continuity.store.protocol import Store
from continuity.store.secret_keys import load_key_ring
from webmail.mail.services import WebmailServices
from webmail.security.devices import DeviceCookies
from webmail.security.sessions import SessionManager

log = logging.getLogger("continuity.webmail")

_SWEEP_INTERVAL = 300.0


def build_webmail_services(
    settings: Settings,
    store: Store,
    reader: ContentReader,
    *,
    outbound_filter: OutboundFilter | None = None,
    verdicts: VerdictRepository | None = None,
) -> WebmailServices:
    """The webmail's services; reader parses stored messages (the worker processes in serve); outbound_filter
    and verdicts come from the filter pipeline when it runs."""
    outbound = OutboundService(
        outbound=store.outbound,
        webmail=store.webmail,
        blobs=store.blobs,
        deliverer=SmtpDelivery(settings.outbound, settings.smtp.hostname),
        signer=DkimSigner(settings.dkim),
        hostname=settings.smtp.hostname,
        message_filter=outbound_filter,
    )
    return WebmailServices(
        settings=settings,
        store=store,
        sessions=SessionManager(store.webmail_auth, settings.webmail),
        indexer=WebmailIndexer(store.webmail, reader),
        reader=reader,
        outbound=outbound,
        devices=DeviceCookies(
            load_key_ring(settings.webmail_key_path).derive(b"webmail device cookies"),
            settings.webmail.device_cookie_days,
            secure=settings.webmail.cookie_secure,
        ),
        verdicts=verdicts,
    )


async def _sweep(services: WebmailServices) -> None:
    window = services.settings.webmail.failure_memory_hours * 3600.0
    while True:
        await asyncio.sleep(_SWEEP_INTERVAL)
        try:
            await services.sessions.sweep()
            await services.store.webmail_auth.prune_failures(time.time() - window)
        except ContinuityError as exc:
            log.warning("webmail session sweep failed: %s", exc)


def webmail_tasks(services: WebmailServices) -> list[tuple[str, Coroutine[Any, Any, None]]]:
    """Background work: the search indexer, the outbound queue, expired sessions."""
    return [
        ("webmail-index", services.indexer.run()),
        ("outbound-queue", services.outbound.run()),
        ("webmail-sweep", _sweep(services)),
    ]
