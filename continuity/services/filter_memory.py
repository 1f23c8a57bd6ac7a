"""Batched writes to the filter memory (threads, correspondents' accounts and documents), and its cached reads.

Every accepted message teaches the memory something; writing each on its own would
add a database transaction per message beside the ingest group commit. Observations
are buffered and written in one transaction every flush interval; a read that could
depend on buffered observations flushes first, so a reply arriving right after its
original still sees it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from continuity.core.filter_records import AccountObservation, DocumentObservation, ThreadHistory, ThreadObservation
from continuity.errors import StorageError
from continuity.store.filters_protocol import FilterMemoryRepository

log = logging.getLogger("continuity.filters")

_KNOWN_DOMAINS_TTL = 60.0

# What judging one message taught the memory: thread, account and document observations.
Lessons = tuple[tuple[ThreadObservation, ...], tuple[AccountObservation, ...], tuple[DocumentObservation, ...]]


class FilterMemory:
    """Buffered writer and cached reader of the filter memory repository."""

    def __init__(self, repository: FilterMemoryRepository, flush_interval: float = 0.5) -> None:
        self._repository = repository
        self._interval = flush_interval
        self._threads: list[ThreadObservation] = []
        self._accounts: list[AccountObservation] = []
        self._documents: list[DocumentObservation] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._known: tuple[float, frozenset[str]] = (0.0, frozenset())

    def start(self) -> None:
        """Start the periodic flush."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="filter-memory-flush")

    async def stop(self) -> None:
        """Flush what is buffered and stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except StorageError as exc:
                log.warning("could not write the filter memory (will retry): %s", exc)

    def remember_thread(self, observation: ThreadObservation) -> None:
        """Buffer one message for the thread memory."""
        self._threads.append(observation)

    def remember_accounts(self, observation: AccountObservation) -> None:
        """Buffer a correspondent's accounts."""
        self._accounts.append(observation)

    def remember_document(self, observation: DocumentObservation) -> None:
        """Buffer the fingerprint of a document a correspondent sent."""
        self._documents.append(observation)

    @property
    def pending(self) -> bool:
        """True while observations wait to be written."""
        return bool(self._threads or self._accounts or self._documents)

    def take_buffered(self) -> Lessons:
        """What is buffered, removed from the buffer (a filter worker hands it to the main process)."""
        lessons = (tuple(self._threads), tuple(self._accounts), tuple(self._documents))
        self._threads, self._accounts, self._documents = [], [], []
        return lessons

    def remember(self, lessons: Lessons) -> None:
        """Buffer what a filter worker learned."""
        threads, accounts, documents = lessons
        self._threads.extend(threads)
        self._accounts.extend(accounts)
        self._documents.extend(documents)

    async def flush(self) -> None:
        """Write everything buffered (one transaction per kind)."""
        async with self._lock:
            threads, self._threads = self._threads, []
            accounts, self._accounts = self._accounts, []
            documents, self._documents = self._documents, []
            try:
                if threads:
                    await self._repository.observe_threads(threads)
                    threads = []
                if accounts:
                    await self._repository.add_accounts(accounts)
                    accounts = []
                if documents:
                    await self._repository.add_documents(documents)
            except StorageError:
                self._threads[:0] = threads
                self._accounts[:0] = accounts
                self._documents[:0] = documents
                raise

    async def thread(self, message_ids: tuple[str, ...]) -> ThreadHistory:
        """What is known about these messages (buffered observations included)."""
        if self._threads:
            await self.flush()
        return await self._repository.thread(message_ids)

    async def accounts(self, correspondent: str) -> frozenset[str]:
        """Accounts this correspondent used before (buffered ones included)."""
        if self._accounts:
            await self.flush()
        return await self._repository.accounts(correspondent)

    async def documents(
        self, correspondent: str, message_ids: tuple[str, ...], since: float
    ) -> tuple[DocumentObservation, ...]:
        """Recent documents from this correspondent or in these messages (buffered ones included)."""
        if self._documents:
            await self.flush()
        return await self._repository.documents(correspondent, message_ids, since)

    async def known_domains(self) -> frozenset[str]:
        """Frequent sender domains, refreshed at most once a minute."""
        at, domains = self._known
        now = time.monotonic()
        if now - at > _KNOWN_DOMAINS_TTL or not at:
            domains = await self._repository.known_domains()
            self._known = (now, domains)
        return domains

    def forget_cached(self) -> None:
        """Drop the cached frequent-sender domains: the next read gets them fresh."""
        self._known = (0.0, frozenset())

    async def prune(self, before: float) -> int:
        """Forget old thread records."""
        return await self._repository.prune(before)
