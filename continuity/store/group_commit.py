"""Group commit: many concurrent SMTP sessions share one durable commit.

Each session submits its message and waits. A committer task takes everything waiting
(up to a maximum), makes it durable in one call (one flush for the bodies, one WAL
fsync), and wakes every waiter with the outcome. While a commit runs, new submissions
queue up for the next one, so the batch grows with the load and no message ever skips
the flush.

With ``in_flight`` above one, that many batches may be committing at once, or waiting
in the store's queue right behind the one committing (the store serialises what must
be serial, its one writer connection).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from continuity.errors import StorageError

T = TypeVar("T")

log = logging.getLogger(__name__)


def _consume_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class GroupCommitter(Generic[T]):
    """Batches submissions into calls of ``commit(batch)``."""

    def __init__(self, commit: Callable[[Sequence[T]], Awaitable[None]], max_batch: int, in_flight: int = 1) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._in_flight = in_flight
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self.commits = 0
        self.committed_items = 0

    async def submit(self, item: T) -> None:
        """Return once item is durable; raise StorageError when it could not be made durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A session that disconnects mid-commit no longer awaits its future; mark the
        # outcome as retrieved so a failed commit does not log "never retrieved".
        future.add_done_callback(_consume_outcome)
        self._waiting.append((item, future))
        if len(self._workers) < self._in_flight:
            worker = asyncio.create_task(self._run(), name="group-commit")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        await asyncio.shield(future)

    async def _run(self) -> None:
        try:
            await self._commit_waiting()
        finally:
            # Leave the set of workers the moment the queue is found empty, not in the task's
            # done callback, which runs a step later: a submission made in between would see
            # this worker still counted, start none, and wait for ever.
            task = asyncio.current_task()
            if task is not None:
                self._workers.discard(task)

    async def _commit_waiting(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                await self._commit([item for item, _ in batch])
            except Exception as exc:
                if not isinstance(exc, StorageError):
                    log.exception("group commit of %d messages failed unexpectedly", len(batch))
                    exc = StorageError(f"commit failed: {exc}")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                self.commits += 1
                self.committed_items += len(batch)
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def drain(self) -> None:
        """Wait until every submission so far has been committed or failed."""
        while self._workers:
            await asyncio.shield(next(iter(self._workers)))
