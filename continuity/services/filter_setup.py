"""Building the one filter pipeline from the settings, and the background work it needs.

:class:`FilterService` owns the pipeline, its worker threads, the DNS cache, the filter
memory writer and the identity cache (the protected organisation's names and
addresses, refreshed when mailboxes change). services/app.py starts one and hands
``service.pipeline`` to ingest; webmail and replay use the same object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from continuity.adapters.dns_cache import CachingResolver
from continuity.config.filters import BecSettings
from continuity.config.settings import Settings
from continuity.config.types import parse_host_port
from continuity.filters.attachment_text import TextLimits
from continuity.filters.attachments import ArchiveLimits, AttachmentStage
from continuity.filters.auth import AuthStage
from continuity.filters.bec import BecStage, DocumentSettings, Identities, builtin_freemail, normalize_name
from continuity.filters.bec_wording import BecWordingStage
from continuity.filters.clamd import ClamdStage
from continuity.filters.compromise import CompromiseStage
from continuity.filters.domains import DomainFeed
from continuity.filters.hijack import HijackStage
from continuity.filters.rspamd import RspamdStage
from continuity.filters.urls import UrlStage
from continuity.services.filter_memory import FilterMemory
from continuity.services.filtering import FilterPipeline, StageConfig
from continuity.store.filters_protocol import FilterMemoryRepository
from continuity.store.protocol import MailboxRepository

log = logging.getLogger("continuity.filters")

_IDENTITY_REFRESH = 30.0
_PRUNE_INTERVAL = 3600.0


def _document_settings(bec: BecSettings) -> DocumentSettings | None:
    """How the BEC stage reads attachments, or None when [filters.bec.attachment_text] is off."""
    text = bec.attachment_text
    if not text.enabled:
        return None
    limits = TextLimits(
        text.max_bytes,
        text.max_pages,
        text.max_chars,
        text.max_member_bytes,
        text.max_ratio,
        text.seconds,
        text.max_page_objects,
    )
    return DocumentSettings(limits, text.max_documents, bec.near_duplicate_similarity, bec.near_duplicate_days)


class IdentityCache:
    """The protected domains and the display names and addresses of provisioned mailboxes."""

    def __init__(self, domains: frozenset[str], mailboxes: MailboxRepository | None) -> None:
        self._mailboxes = mailboxes
        self._serial = -1
        self.current = Identities(domains=domains)

    def __call__(self) -> Identities:
        return self.current

    async def refresh(self) -> None:
        """Reload from the mailboxes when they changed."""
        if self._mailboxes is None:
            return
        serial = await self._mailboxes.directory_serial()
        if serial == self._serial:
            return
        names: dict[str, str] = {}
        addresses: set[str] = set()
        for mailbox in await self._mailboxes.list():
            addresses.add(mailbox.address.lower())
            addresses.update(alias.lower() for alias in mailbox.aliases)
            name = normalize_name(mailbox.display_name)
            if len(name) >= 4:
                names[name] = mailbox.address.lower()
        self.current = Identities(self.current.domains, names, frozenset(addresses))
        self._serial = serial


class FilterService:
    """The pipeline and everything that keeps it running."""

    def __init__(
        self,
        settings: Settings,
        memory_repository: FilterMemoryRepository,
        mailboxes: MailboxRepository | None = None,
        *,
        sequential: bool = False,
    ) -> None:
        config = settings.filters
        domains = frozenset(settings.domains)
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="filter")
        self.resolver = CachingResolver(
            [parse_host_port(server) for server in config.resolver],
            timeout=config.dns_timeout,
            cache_size=config.dns_cache_size,
        )
        self.memory = FilterMemory(memory_repository)
        self.identities = IdentityCache(domains, mailboxes)
        self._retention = config.hijack.retention_days * 86400.0
        self._rspamd: RspamdStage | None = None
        stages: list[StageConfig] = []
        if config.auth.enabled:
            authserv_id = config.auth.authserv_id or settings.smtp.hostname
            stages.append(
                StageConfig(
                    AuthStage(self.resolver, authserv_id, domains, self.executor),
                    config.auth.timeout,
                    config.auth.fail_open,
                )
            )
        if config.attachments.enabled:
            limits = ArchiveLimits(
                config.attachments.max_archive_bytes,
                config.attachments.max_archive_ratio,
                config.attachments.max_archive_entries,
                config.attachments.max_nesting,
            )
            stages.append(
                StageConfig(
                    AttachmentStage(limits, self.executor), config.attachments.timeout, config.attachments.fail_open
                )
            )
        if config.urls.enabled:
            stages.append(
                StageConfig(UrlStage(DomainFeed(config.urls.blocklists)), config.urls.timeout, config.urls.fail_open)
            )
        if config.hijack.enabled:
            stages.append(
                StageConfig(HijackStage(self.memory, domains), config.hijack.timeout, config.hijack.fail_open)
            )
        if config.bec.enabled:
            freemail = DomainFeed(config.bec.freemail_lists, builtin=builtin_freemail())
            partners = frozenset(domain.lower() for domain in config.bec.correspondent_domains)
            stages.append(
                StageConfig(
                    BecStage(
                        self.memory, self.identities, freemail, partners, self.executor, _document_settings(config.bec)
                    ),
                    config.bec.timeout,
                    config.bec.fail_open,
                )
            )
        if config.bec_wording.enabled:
            freemail = DomainFeed(config.bec.freemail_lists, builtin=builtin_freemail())
            partners = frozenset(domain.lower() for domain in config.bec.correspondent_domains)
            stages.append(
                StageConfig(
                    BecWordingStage(self.memory, domains, freemail, partners),
                    config.bec_wording.timeout,
                    config.bec_wording.fail_open,
                )
            )
        if config.compromise.enabled:
            stages.append(
                StageConfig(
                    CompromiseStage(self.memory, self.memory, domains, self.executor),
                    config.compromise.timeout,
                    config.compromise.fail_open,
                )
            )
        if config.clamd.enabled and config.clamd.address:
            stages.append(StageConfig(ClamdStage(config.clamd.address), config.clamd.timeout, config.clamd.fail_open))
        if config.rspamd.enabled and config.rspamd.url:
            password = config.rspamd.password.get_secret_value() if config.rspamd.password is not None else ""
            self._rspamd = RspamdStage(config.rspamd.url, password, config.rspamd.timeout)
            stages.append(StageConfig(self._rspamd, config.rspamd.timeout, config.rspamd.fail_open))
        self.pipeline = FilterPipeline(stages, config.policy.policy(), executor=self.executor, sequential=sequential)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, *, background: bool = True) -> None:
        """Load identities; with background, start the memory flush and refresh tasks."""
        await self.identities.refresh()
        if background:
            self.memory.start()
            self._tasks.append(asyncio.create_task(self._maintain(), name="filter-maintenance"))
        log.info("filter pipeline: stages %s", ", ".join(self.pipeline.stage_names) or "(none)")

    async def _maintain(self) -> None:
        last_prune = 0.0
        while True:
            await asyncio.sleep(_IDENTITY_REFRESH)
            try:
                await self.identities.refresh()
                if time.monotonic() - last_prune > _PRUNE_INTERVAL:
                    last_prune = time.monotonic()
                    await self.memory.prune(time.time() - self._retention)
            except Exception as exc:  # keep maintaining; the next round retries
                log.warning("filter maintenance failed: %s", exc)

    async def stop(self) -> None:
        """Stop background tasks, flush the memory, close connections and threads."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.memory.stop()
        if self._rspamd is not None:
            await self._rspamd.close()
        await asyncio.to_thread(self.executor.shutdown, wait=True)
