"""A filter worker process: parses and judges the messages it is sent and streams back each verdict.

Started by ``ProcessPipeline`` (filter_processes.py) with one end of a socket pair. The
worker builds the filter pipeline from the same settings as the main process, on a
store connection of its own, then reads requests ``(id, envelope, body, learn)`` (the
body's bytes, or its digest: the worker reads it from the store) and answers
``(id, True, verdict, lessons)`` (the PipelineResult as tuples, verdict_wire.py, and
with learn what the stages learned) or ``(id, False, error text, None)`` as soon as
each message is judged, at most ``_CONCURRENT`` at a time in the order they came.

While it parses a message it writes that request's id into shared memory, so the main
process, which kills a worker that overruns the deadline, knows which message did it.
Its address space is limited (``[filters] worker_memory``), so a message that inflates
ends this worker, not the machine. It ends when the socket closes (the main process
closed it or died) and, should it be stuck in a long evaluation then, within a second
of its parent's death.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import resource
import signal
import socket
import threading
import time
from typing import cast

from continuity.config.settings import Settings
from continuity.core.message_view import parse_message
from continuity.core.pipeline import Envelope
from continuity.event_loops import new_event_loop
from continuity.services.content_calls import CALLS
from continuity.services.filter_frames import READY, FrameError, FrameReader, Outbox
from continuity.services.filter_setup import FilterService
from continuity.services.filtering import PipelineResult
from continuity.services.verdict_wire import pack_result
from continuity.store.blobs import BlobStore
from continuity.store.sqlite import open_sqlite_store

log = logging.getLogger("continuity.filters")

# Messages judged at once: enough to overlap the stages that wait (clamd, rspamd, DNS),
# few enough that each is answered soon after it arrives.
_CONCURRENT = 8
_REFRESH_SECONDS = 5.0  # the mailbox directory and cached memory are reloaded this often
_PARENT_CHECK_SECONDS = 1.0


class _Judge(asyncio.Protocol):
    """The worker's end of the socket: requests in, verdicts out."""

    def __init__(self, filters: FilterService | None, blobs: BlobStore, parsing: ctypes.c_longlong) -> None:
        self._filters = filters
        self._blobs = blobs
        self._parsing = parsing
        self._frames = FrameReader()
        self._slots = asyncio.Semaphore(_CONCURRENT)
        self._refreshed = time.monotonic()
        self._refreshing: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._outbox: Outbox | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._outbox = Outbox(cast(asyncio.Transport, transport))  # uvloop's is not a subclass
        self._outbox.send((READY, True, "ready", None))  # the pipeline is built: send work

    def data_received(self, data: bytes) -> None:
        try:
            requests = self._frames.feed(data)
        except FrameError as exc:
            log.error("filter worker: %s; ending", exc)
            self._finish()
            return
        for request in requests:
            request_id, name, envelope, content, learn, args = cast(
                tuple[int, str, Envelope | None, bytes | str, bool, tuple[object, ...]], request
            )
            if envelope is None:
                task = asyncio.ensure_future(self._call(request_id, name, content, args))
            else:
                task = asyncio.ensure_future(self._answer(request_id, envelope, content, learn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def _finish(self) -> None:
        for task in self._tasks:
            task.cancel()
        if not self.closed.done():
            self.closed.set_result(None)

    async def _answer(self, request_id: int, envelope: Envelope, content: bytes | str, learn: bool) -> None:
        assert self._outbox is not None
        filters = self._filters
        if filters is None:
            self._outbox.send((request_id, False, "the filters are off: this worker does not judge", None))
            return
        async with self._slots:
            try:
                await self._refresh(filters)
                if isinstance(content, str):
                    # Read here, on the loop: a thread hand-over costs more than this read from the page cache.
                    content = self._blobs.read_sync(content)
                result = await self._judge(filters, request_id, envelope, content, learn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the main process decides what happens to this one
                self._outbox.send((request_id, False, repr(exc)[:500], None))
                return
            # Taken right after the pipeline returned (no await in between), so it is this message's.
            lessons = filters.memory.take_buffered() if learn else None
        self._outbox.send((request_id, True, pack_result(result), lessons))

    async def _call(self, request_id: int, name: str, content: bytes | str, args: tuple[object, ...]) -> None:
        """A content call (content_calls.py): synchronous, so the whole call counts as parsing."""
        assert self._outbox is not None
        async with self._slots:
            try:
                if isinstance(content, str):
                    content = self._blobs.read_sync(content)
                self._parsing.value = request_id
                try:
                    result = CALLS[name](content, *args)
                finally:
                    self._parsing.value = -1
            except Exception as exc:  # the main process decides what happens to this one
                self._outbox.send((request_id, False, repr(exc)[:500], None))
                return
        self._outbox.send((request_id, True, result, None))

    async def _judge(
        self, filters: FilterService, request_id: int, envelope: Envelope, content: bytes, learn: bool
    ) -> PipelineResult:
        # Parsed here, not in a thread: this loop has nothing else to keep responsive, and
        # a hand-over to a thread and back costs a quarter of the evaluation.
        started = time.perf_counter()
        self._parsing.value = request_id
        try:
            message = parse_message(content)
        finally:
            self._parsing.value = -1
        return await filters.pipeline.evaluate_parsed(envelope, message, learn=learn, started=started)

    async def _refresh(self, filters: FilterService) -> None:
        """What ingest learned and the directory's changes reach the worker within _REFRESH_SECONDS."""
        if self._refreshing is None and time.monotonic() - self._refreshed > _REFRESH_SECONDS:
            self._refreshing = asyncio.ensure_future(self._reload(filters))
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)

    async def _reload(self, filters: FilterService) -> None:
        try:
            await filters.identities.refresh()
            filters.memory.forget_cached()
        finally:
            self._refreshed = time.monotonic()
            self._refreshing = None


def run_worker(settings: Settings, connection: socket.socket, parent: int, parsing: ctypes.c_longlong) -> None:
    """The worker process's main function (the target of its multiprocessing.Process)."""
    # Ctrl-C and a service stop signal the whole process group; the worker ends when the main
    # process closes its socket (or dies), so that the main process stops it in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if settings.filters.worker_memory:
        limit = settings.filters.worker_memory * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    logging.basicConfig(level=logging.WARNING, format="filter worker: %(levelname)s %(name)s: %(message)s")
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(settings, connection, parsing))
    finally:
        loop.close()


async def _serve(settings: Settings, connection: socket.socket, parsing: ctypes.c_longlong) -> None:
    store = await open_sqlite_store(settings.database_path, settings.blob_path)
    try:
        # With the filters off the worker only renders (content_calls.py); asked to judge, it answers an error.
        filters = FilterService(settings, store.filter_memory, store.mailboxes) if settings.filters.enabled else None
        if filters is not None:
            await filters.start(background=False)
        try:
            loop = asyncio.get_running_loop()
            _, judge = await loop.create_connection(lambda: _Judge(filters, store.blob_store, parsing), sock=connection)
            await judge.closed
        finally:
            if filters is not None:
                await filters.stop()
    finally:
        await store.close()


def _exit_with(parent: int) -> None:
    """End this worker when the main process is gone, even in the middle of an evaluation.

    The worker's parent is the fork server, not the main process, so the main process is
    watched by its pid (os.kill with signal 0 asks whether it still exists).
    """
    while True:
        time.sleep(_PARENT_CHECK_SECONDS)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # the pid was reused by another user's process: ours is gone
            os._exit(0)
