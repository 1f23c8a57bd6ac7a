"""The filter pipeline in worker processes, for bulk evaluation: the replay judges every queued message again.

Filtering is CPU work in Python (parsing, text scans), and the replay's own work
(journal, SMTP or IMAP, the store) already keeps the main process busy; on one process
the two halve each other's rate. ``ProcessPipeline`` has the pipeline's ``evaluate`` and
runs it in ``[replay] filter_processes`` worker processes, each with the same
pipeline built from the same settings and its own read connection to the store (the
thread and account memory, the mailbox directory). Requests that arrive while the
workers are busy go over together in one batch, so a worker evaluates them concurrently
(as the in-process pipeline would) and the cost of the hand-over is shared.

Workers never learn (the replay evaluates with ``learn=False``); what ingest learns
meanwhile reaches them through the store within a flush interval, and they reload the
mailbox directory every few seconds. The pool starts on first use and stops after a
minute without work; a worker whose main process dies (even by SIGKILL) ends within a
second. If a worker cannot start or dies, the message is evaluated in the main process
instead (slower, same result) and the error is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial

from continuity.config.settings import Settings
from continuity.core.message_view import parse_message
from continuity.core.pipeline import Envelope
from continuity.services.filter_setup import FilterService
from continuity.services.filtering import FilterPipeline, PipelineResult
from continuity.store.sqlite import SqliteStore, open_sqlite_store

log = logging.getLogger("continuity.filters")

_BATCH = 32  # most messages handed to a worker at once
_IDLE_SECONDS = 60.0  # the pool stops after this long without work
_REFRESH_SECONDS = 5.0  # workers reload the mailbox directory and cached memory this often
_PARENT_CHECK_SECONDS = 1.0  # a worker whose main process is gone ends within this

_Request = tuple[Envelope, bytes, "asyncio.Future[PipelineResult]"]


class FilterWorkerError(Exception):
    """A worker could not evaluate a message (it is evaluated in the main process instead)."""


class ProcessPipeline:
    """``evaluate`` of the filter pipeline, run in worker processes; see the module docstring."""

    def __init__(self, settings: Settings, local: FilterPipeline, processes: int) -> None:
        self._settings = settings
        self.local = local
        self._processes = max(1, processes)
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[_Request] = []
        self._in_flight = 0
        self._idle: asyncio.TimerHandle | None = None
        self._broken = False
        self.in_workers = 0  # messages the workers judged
        self.in_main = 0  # messages judged in the main process because the workers could not

    async def evaluate(self, envelope: Envelope, content: bytes, *, learn: bool = False) -> PipelineResult:
        """Filter one message in a worker (in the main process when the workers cannot)."""
        if learn:
            raise ValueError("filter worker processes do not learn; use the in-process pipeline")
        if self._broken:
            return await self._locally(envelope, content)
        future: asyncio.Future[PipelineResult] = asyncio.get_running_loop().create_future()
        self._pending.append((envelope, content, future))
        self._dispatch()
        try:
            result = await future
        except FilterWorkerError:
            return await self._locally(envelope, content)
        self.in_workers += 1
        return result

    async def _locally(self, envelope: Envelope, content: bytes) -> PipelineResult:
        self.in_main += 1
        return await self.local.evaluate(envelope, content, learn=False)

    def _dispatch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._broken:
            pending, self._pending = self._pending, []
            self._fail(pending, FilterWorkerError("the worker processes failed earlier"))
            return
        loop = asyncio.get_running_loop()
        while self._pending and self._in_flight < 4 * self._processes:  # queued behind the one being judged
            batch, self._pending = self._pending[:_BATCH], self._pending[_BATCH:]
            work = [(envelope, content) for envelope, content, _ in batch]
            try:
                submitted = self._start_pool().submit(_evaluate_batch, work)
            except (BrokenProcessPool, RuntimeError) as exc:
                self._fail(batch, exc)
                continue
            self._in_flight += 1
            submitted.add_done_callback(partial(self._finished_threadsafe, loop, batch))
        if not self._pending and self._in_flight == 0 and self._pool is not None:
            self._idle = loop.call_later(_IDLE_SECONDS, self._stop_pool)

    def _start_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            log.info("filter pipeline: starting %d worker process(es) for the replay", self._processes)
            self._pool = ProcessPoolExecutor(
                self._processes,
                mp_context=multiprocessing.get_context("spawn"),  # never fork a process that runs threads
                initializer=_start_worker,
                initargs=(self._settings, os.getpid()),
            )
        return self._pool

    def _finished_threadsafe(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Request], done: Future[list[PipelineResult | str]]
    ) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._finished, batch, done)

    def _finished(self, batch: list[_Request], done: Future[list[PipelineResult | str]]) -> None:
        self._in_flight -= 1
        try:
            results = done.result()
        except BaseException as exc:  # a worker died or could not start: its batch goes to the main process
            self._fail(batch, exc)
        else:
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, PipelineResult):
                    future.set_result(result)
                else:
                    future.set_exception(FilterWorkerError(result))
        self._dispatch()

    def _fail(self, batch: list[_Request], exc: BaseException) -> None:
        if not self._broken:
            log.error("filter worker processes failed (%s); the replay filters in the main process from now on", exc)
        self._broken = True
        self._stop_pool()
        for _, _, future in batch:
            if not future.done():
                future.set_exception(FilterWorkerError(str(exc)))

    def _stop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the workers (waits for the ones still evaluating)."""
        if self._idle is not None:
            self._idle.cancel()
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(partial(pool.shutdown, wait=True, cancel_futures=True))


# -- in the worker process -------------------------------------------------------------------


@dataclass
class _Worker:
    loop: asyncio.AbstractEventLoop
    store: SqliteStore
    filters: FilterService
    refreshed: float

    async def evaluate(self, work: list[tuple[Envelope, bytes]]) -> list[PipelineResult | str]:
        if time.monotonic() - self.refreshed > _REFRESH_SECONDS:
            self.refreshed = time.monotonic()
            await self.filters.identities.refresh()
            self.filters.memory.forget_cached()
        outcomes = await asyncio.gather(
            *(self._judge(envelope, content) for envelope, content in work), return_exceptions=True
        )
        return [outcome if isinstance(outcome, PipelineResult) else repr(outcome) for outcome in outcomes]

    async def _judge(self, envelope: Envelope, content: bytes) -> PipelineResult:
        # Parsed here, not in a thread as the main process does: a worker's loop has nothing
        # else to keep responsive, and the hand-over to a thread and back costs a quarter
        # of the evaluation.
        started = time.perf_counter()
        message = parse_message(content)
        return await self.filters.pipeline.evaluate_parsed(envelope, message, learn=False, started=started)


_WORKER: _Worker | None = None


def _start_worker(settings: Settings, parent: int) -> None:
    """Process initializer: the pipeline, built as the main process builds it, on a store connection of its own."""
    global _WORKER
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    logging.basicConfig(level=logging.WARNING, format="filter worker: %(levelname)s %(name)s: %(message)s")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    store = loop.run_until_complete(open_sqlite_store(settings.database_path, settings.blob_path))
    filters = FilterService(settings, store.filter_memory, store.mailboxes)
    loop.run_until_complete(filters.start(background=False))
    _WORKER = _Worker(loop, store, filters, time.monotonic())


def _exit_with(parent: int) -> None:
    """End this worker when the main process is gone.

    A pool's workers hold both ends of their task pipe, so they never see it close: a main
    process killed with SIGKILL (or crashing) would leave them running for ever.
    """
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(0)


def _evaluate_batch(work: list[tuple[Envelope, bytes]]) -> list[PipelineResult | str]:
    """Run in a worker: evaluate a batch concurrently; a failure comes back as its text."""
    if _WORKER is None:
        raise FilterWorkerError("the worker did not start")
    return _WORKER.loop.run_until_complete(_WORKER.evaluate(work))
