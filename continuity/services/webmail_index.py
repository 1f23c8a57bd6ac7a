"""Keeps the webmail's header summaries and full-text index up to date with delivered mail.

Ingest only stores bodies and rows; this service parses each newly delivered mailbox
row (in the worker processes, through a ContentReader), stores its header summary and adds it to the SQLite FTS5
index. It runs in the background and is also asked to catch up right before a list
or a search, so a user sees a message the moment it is stored; in the background it
takes at most half the time, so a burst of inbound mail is not slowed by its indexing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from continuity.core.mime_view import MessageSummary
from continuity.core.webmail_models import IndexedSummary, PendingIndex
from continuity.errors import ContinuityError, UnreadableContentError
from continuity.services.content_reader import ContentReader
from continuity.store.webmail_protocol import WebmailRepository

log = logging.getLogger("continuity.webmail.index")

_BATCH = 200
_IDLE_POLL = 2.0
# In the background, after each batch the indexer waits as long again as the batch took,
# so a burst of mail is acknowledged at full speed and indexed alongside at half pace.
_BACKGROUND_SHARE = 0.5
# Rows a request indexes itself before answering; a larger backlog is left to the background.
_REQUEST_BUDGET = 1000
# Seconds a page waits for that indexing before it is shown with what is indexed.
_REQUEST_WAIT = 0.5


def _empty(pending: PendingIndex) -> IndexedSummary:
    return IndexedSummary(pending.queue_id, "", "", "", "", "", pending.received_at, pending.size, False, "", "")


def _summary(pending: PendingIndex, summary: MessageSummary | None) -> IndexedSummary:
    if summary is None:
        return _empty(pending)
    addresses = " ".join
    return IndexedSummary(
        queue_id=pending.queue_id,
        from_name=summary.sender.name[:200],
        from_address=summary.sender.address[:320],
        to_addresses=addresses(str(a) for a in summary.to)[:2000],
        cc_addresses=addresses(str(a) for a in summary.cc)[:2000],
        subject=summary.subject[:998],
        sent_at=summary.sent_at if summary.sent_at is not None else pending.received_at,
        size=pending.size,
        has_attachments=summary.has_attachments,
        preview=summary.preview,
        body_text=summary.body_text,
    )


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("indexing for a page failed: %s", task.exception())


class WebmailIndexer:
    """Indexes delivered messages for listing and search."""

    def __init__(self, webmail: WebmailRepository, reader: ContentReader) -> None:
        self._webmail = webmail
        self._reader = reader
        self._catching_up: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    async def _summarize(self, pending: PendingIndex) -> MessageSummary | None:
        """The message's summary, parsed by the reader (it reads the body by digest), or None."""
        try:
            return await self._reader.summary(pending.sha256, pending.size)
        except UnreadableContentError as exc:  # one unparseable message must not stop indexing the rest
            log.warning("cannot parse message %s for the index: %s", pending.queue_id, exc)
            return None
        except ContinuityError as exc:
            log.warning("cannot index message %s: %s", pending.queue_id, exc)
            return None

    async def index_batch(self) -> int:
        """Index the next batch of pending rows; returns how many."""
        async with self._lock:
            pending = await self._webmail.pending_index(_BATCH)
            if not pending:
                return 0
            summaries = await asyncio.gather(*(self._summarize(item) for item in pending))
            await self._webmail.write_index(
                [(item, _summary(item, summary)) for item, summary in zip(pending, summaries, strict=True)]
            )
            return len(pending)

    async def catch_up(self, budget: int = _REQUEST_BUDGET) -> None:
        """Index pending rows, up to about budget of them."""
        done = 0
        while done < budget and await self._webmail.index_backlog():
            count = await self.index_batch()
            if count == 0:
                return
            done += count

    async def catch_up_briefly(self, wait: float = _REQUEST_WAIT) -> None:
        """Index pending rows for a page about to be shown, waiting at most wait seconds.

        What is not indexed by then goes on in the background and shows on the next page:
        a message that takes long to parse (a large or hostile one) must not hold the page.
        Pages shown meanwhile wait on the same catch-up instead of starting another.
        """
        await self._reader.ready()
        if self._catching_up is None or self._catching_up.done():
            self._catching_up = asyncio.ensure_future(self.catch_up())
            self._catching_up.add_done_callback(_log_failure)
        await asyncio.wait({self._catching_up}, timeout=wait)

    def notify(self) -> None:
        """Something was delivered: index soon."""
        self._wake.set()

    async def run(self) -> None:
        """Index in the background until cancelled, yielding to ingest (see _BACKGROUND_SHARE)."""
        while True:
            try:
                while await self._webmail.index_backlog():
                    started = time.monotonic()
                    if await self.index_batch() == 0:
                        break
                    spent = time.monotonic() - started
                    await asyncio.sleep(spent * (1 - _BACKGROUND_SHARE) / _BACKGROUND_SHARE)
            except ContinuityError as exc:
                log.error("indexing failed, retrying: %s", exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _IDLE_POLL)
