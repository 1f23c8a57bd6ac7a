"""The filter pipeline in worker processes, for bulk evaluation: the replay judges every queued message again.

Filtering is CPU work in Python (parsing, text scans), and the replay's own work
(journal, SMTP or IMAP, the store) already keeps the main process busy; on one process
the two halve each other's rate. ``ProcessPipeline`` has the pipeline's ``evaluate`` and
runs it in ``[replay] filter_processes`` worker processes (filter_worker.py), each with
the same pipeline built from the same settings and its own read connection to the store
(the thread and account memory, the mailbox directory).

Each worker is joined to the main process by a socket pair, read and written by the
event loops on both sides: requests stream to the worker with the least outstanding, and
each verdict comes back as soon as it is reached. (A ``ProcessPoolExecutor`` answered
only when a whole batch was judged, through two threads of the main process: the
replay's connections spent two fifths of their time waiting for verdicts while the
worker was idle a third of the time.) At most ``_OUTSTANDING`` requests are sent to one
worker ahead of its answers; the rest wait in the main process.

Workers never learn (the replay evaluates with ``learn=False``); what ingest learns
meanwhile reaches them through the store within a few seconds. The workers start on
first use and stop after a minute without work; a worker whose main process dies (even
by SIGKILL) ends within a second. If a worker cannot start or dies, its messages, and
every message after them, are evaluated in the main process instead (slower, same
result) and the error is logged once.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import multiprocessing
import os
import socket
from multiprocessing.process import BaseProcess
from typing import cast

from continuity.config.settings import Settings
from continuity.core.pipeline import Envelope
from continuity.services.filter_frames import FrameError, FrameReader, Outbox
from continuity.services.filter_worker import run_worker
from continuity.services.filtering import FilterPipeline, PipelineResult
from continuity.services.verdict_wire import PackedResult, unpack_result

log = logging.getLogger("continuity.filters")

# Requests one worker has at once: enough that it never waits for the next (it judges
# _CONCURRENT of them at a time), few enough to keep the wait for an answer short.
_OUTSTANDING = 32
_IDLE_SECONDS = 60.0  # the workers stop after this long without work
_JOIN_SECONDS = 5.0  # a stopping worker gets this long to exit before it is killed

# The envelope, what the worker is sent of the body (the bytes, or the digest it reads them
# by) and the answer.
_Request = tuple[Envelope, bytes | str, "asyncio.Future[PipelineResult]"]


class FilterWorkerError(Exception):
    """A worker could not evaluate a message (it is evaluated in the main process instead)."""


class _Link(asyncio.Protocol):
    """The main process's end of one worker's socket."""

    def __init__(self, owner: ProcessPipeline, process: BaseProcess) -> None:
        self._owner = owner
        self.process = process
        self._frames = FrameReader()
        self.outstanding: dict[int, tuple[asyncio.Future[PipelineResult], Envelope]] = {}
        self.outbox: Outbox | None = None
        self.transport: asyncio.Transport | None = None
        self.closing = False  # closed by the main process (idle, close()), not lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.outbox = Outbox(self.transport)

    def data_received(self, data: bytes) -> None:
        try:
            answers = self._frames.feed(data)
        except FrameError as exc:
            self._owner.lost(self, exc)
            return
        for answer in answers:
            request_id, ok, payload = cast(tuple[int, bool, object], answer)
            waiting = self.outstanding.pop(request_id, None)
            if waiting is None or waiting[0].done():
                continue
            future, envelope = waiting
            if ok:
                future.set_result(unpack_result(cast(PackedResult, payload), envelope))
            else:
                future.set_exception(FilterWorkerError(str(payload)))
        self._owner.admit()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            code = self.process.exitcode
            reason = exc or (f"it ended with exit code {code}" if code is not None else "it closed its socket")
            self._owner.lost(self, reason)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class ProcessPipeline:
    """The filter pipeline's ``evaluate`` and ``evaluate_stored``, run in worker processes (module docstring)."""

    def __init__(self, settings: Settings, local: FilterPipeline, processes: int) -> None:
        self._settings = settings
        self.local = local
        self._processes = max(1, processes)
        self._links: list[_Link] = []
        self._starting: asyncio.Task[None] | None = None
        self._waiting: collections.deque[_Request] = collections.deque()
        self._ids = itertools.count()
        self._idle: asyncio.TimerHandle | None = None
        self._reaping: set[asyncio.Future[None]] = set()
        self._broken = False
        self.in_workers = 0  # messages the workers judged
        self.in_main = 0  # messages judged in the main process because the workers could not

    async def evaluate(self, envelope: Envelope, content: bytes, *, learn: bool = False) -> PipelineResult:
        """Filter one message in a worker (in the main process when the workers cannot)."""
        if learn:
            raise ValueError("filter worker processes do not learn; use the in-process pipeline")
        return await self._evaluate(envelope, content, content)

    async def evaluate_stored(self, envelope: Envelope, sha256: str, content: bytes) -> PipelineResult:
        """Filter a stored message (content, stored under sha256): the worker reads the body itself.

        The body does not cross to the worker: on the delivering process, which is the
        replay's bound, copying each body into the worker's socket cost a twentieth of its CPU.
        """
        return await self._evaluate(envelope, sha256, content)

    async def _evaluate(self, envelope: Envelope, sent: bytes | str, content: bytes) -> PipelineResult:
        if not self._broken:
            future: asyncio.Future[PipelineResult] = asyncio.get_running_loop().create_future()
            self._waiting.append((envelope, sent, future))
            self._busy()
            try:
                if not self._links:
                    await self._start()
                self.admit()
                result = await future
            except FilterWorkerError:
                pass
            else:
                self.in_workers += 1
                return result
        self.in_main += 1
        return await self.local.evaluate(envelope, content, learn=False)

    def admit(self) -> None:
        """Send waiting requests to the workers with room for them."""
        while self._waiting and self._links:
            link = min(self._links, key=lambda candidate: len(candidate.outstanding))
            if len(link.outstanding) >= _OUTSTANDING:
                break
            envelope, sent, future = self._waiting.popleft()
            if future.done():
                continue
            assert link.outbox is not None
            request_id = next(self._ids)
            link.outstanding[request_id] = (future, envelope)
            link.outbox.send((request_id, envelope, sent))
        if not self._waiting and not any(link.outstanding for link in self._links):
            self._busy()
            self._idle = asyncio.get_running_loop().call_later(_IDLE_SECONDS, self._stop_workers)

    def _busy(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    async def _start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._spawn())
        try:
            await asyncio.shield(self._starting)
        finally:
            if self._starting is not None and self._starting.done():
                self._starting = None

    async def _spawn(self) -> None:
        log.info("filter pipeline: starting %d worker process(es) for the replay", self._processes)
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        links: list[_Link] = []
        started: list[BaseProcess] = []
        try:
            for number in range(self._processes):
                ours, theirs = socket.socketpair()
                with ours, theirs:  # ours is duplicated into the transport; theirs only the worker keeps
                    process = context.Process(
                        target=run_worker,
                        args=(self._settings, theirs, os.getpid()),
                        name=f"continuity-filter-{number}",
                        daemon=True,
                    )
                    process.start()
                    started.append(process)
                    _, link = await loop.create_connection(lambda: _Link(self, process), sock=ours.dup())  # noqa: B023
                links.append(link)
        except Exception as exc:  # OS limits, settings that cannot be pickled: the main process judges
            for link in links:
                link.close()
            if started:
                await asyncio.to_thread(_reap, started)
            self._give_up(FilterWorkerError(f"cannot start a worker: {exc!r}"))
            return
        self._links = links

    def lost(self, link: _Link, reason: object) -> None:
        """A worker ended or broke its socket: from now on the main process judges."""
        self._give_up(FilterWorkerError(f"worker {link.process.name} failed: {reason}"))

    def _give_up(self, error: FilterWorkerError) -> None:
        if not self._broken:
            log.error("filter worker processes failed (%s); the replay filters in the main process from now on", error)
        self._broken = True
        self._stop_workers()
        waiting, self._waiting = self._waiting, collections.deque()
        for _, _, future in waiting:
            if not future.done():
                future.set_exception(error)

    def _stop_workers(self) -> None:
        processes = self._detach("the worker was stopped")
        if processes:
            reaping = asyncio.ensure_future(asyncio.to_thread(_reap, processes))
            self._reaping.add(reaping)
            reaping.add_done_callback(self._reaping.discard)

    def _detach(self, why: str) -> list[BaseProcess]:
        """Close every worker's socket (so it exits); what it still owed is judged in the main process."""
        self._busy()
        links, self._links = self._links, []
        for link in links:
            link.close()
            for future, _ in link.outstanding.values():
                if not future.done():
                    future.set_exception(FilterWorkerError(why))
            link.outstanding.clear()
        return [link.process for link in links]

    async def close(self) -> None:
        """Stop the workers and wait for them to exit."""
        processes = self._detach("the filter workers were closed")
        await asyncio.to_thread(_reap, processes)
        await asyncio.gather(*self._reaping)


def _reap(processes: list[BaseProcess]) -> None:
    """Wait for stopping workers to exit (they end when their socket closes); kill the ones that do not."""
    for process in processes:
        process.join(_JOIN_SECONDS)
        if process.exitcode is None:
            log.warning("filter worker %s did not exit in %.0f s; killing it", process.name, _JOIN_SECONDS)
            process.kill()
            process.join()
