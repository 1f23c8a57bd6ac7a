"""The filter pipeline in worker processes: every message is parsed and judged outside the serving process.

Parsing mail and scanning its text is CPU work on input an attacker shapes; on the
serving process's event loop (or in a thread, which shares its interpreter lock) one
crafted message would stall every session, the webmail and the health checks, and an
``asyncio.timeout`` cannot interrupt it. ``ProcessPipeline`` has the pipeline's
``evaluate`` and ``evaluate_stored`` and runs them in ``[filters] processes`` worker
processes (filter_worker.py), each with the same pipeline built from the same settings
and its own read connection to the store. SMTP ingest, outbound mail from the webmail
and the replay share one pool.

Each worker is joined to the main process by a socket pair, read and written by the
event loops on both sides: requests stream to the worker with the least outstanding,
and each verdict comes back as soon as it is reached. At most ``_OUTSTANDING`` requests
go to one worker ahead of its answers; the rest wait here.

Deadlines. Every request has ``[filters] deadline`` seconds from when it is handed in,
waiting for a worker included, so every message is answered within about the deadline.
A request still waiting then is unscannable. When a deadline passes in a worker, the worker is killed (SIGKILL) and
replaced. The message whose parse the worker was in (it says so in shared memory,
filter_worker.py) or else the one whose deadline passed is unscannable
(filter_unscannable.py); the others that worker held are sent again, each with a new
deadline (they were not at fault; the new one covers the replacement's start). A message that
loses two workers, or whose parse raises, is unscannable too; nothing is judged in the
main process. A request that finds no worker within its deadline (they cannot start)
is unscannable as well, and the spawning is retried with a growing pause.

Lanes (continuity/core/worker_lanes.py). Large messages go only to half of the workers,
small ones keep off those while large ones wait: a flood of large hostile messages fills
that lane and waits there, while ordinary mail is judged at once by the others.

Learning. Requests made with ``learn=True`` (ingest, outbound) come back with what the
worker's stages learned (thread and account observations); the main process writes
them to the filter memory, whose buffer it flushes before handing in the next message
so a reply arriving right after its original sees it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import itertools
import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any, cast

from continuity.config.settings import Settings
from continuity.core.pipeline import Envelope, Verdict
from continuity.core.worker_lanes import HEAVY_BYTES, joins_heavy_lane, takes_heavy, takes_light
from continuity.errors import StorageError, UnreadableContentError
from continuity.services.content_calls import CALLS
from continuity.services.filter_link import Answer, WorkerLink
from continuity.services.filter_memory import FilterMemory, Lessons
from continuity.services.filter_unscannable import unscannable_result
from continuity.services.filter_worker import run_worker
from continuity.services.filtering import PipelineResult
from continuity.services.verdict_wire import PackedResult, unpack_result

log = logging.getLogger("continuity.filters")

# Requests one worker has at once: enough that it never waits for the next (it judges
# several at a time), few enough to keep the wait for an answer short.
_OUTSTANDING = 32
_IDLE_SECONDS = 60.0  # with idle_stop, the workers stop after this long without work
_JOIN_SECONDS = 5.0  # a stopping worker gets this long to exit before it is killed
_ATTEMPTS = 2  # a message whose worker was lost this many times is unscannable
_RESPAWN_FIRST, _RESPAWN_MAX = 0.5, 30.0
_READY_SECONDS = 120.0  # a starting worker must have built its pipeline by then


class FilterWorkerError(Exception):
    """The worker processes were closed while a message waited for its verdict."""


@dataclass(eq=False, slots=True)
class _Request:
    envelope: Envelope | None  # None for a named call (content_calls.py)
    content: bytes
    digest: str | None  # sent instead of the body: the worker reads it from the store
    learn: bool
    future: asyncio.Future[Any]
    name: str = ""  # the content call's name; empty for judging
    args: tuple[object, ...] = ()
    heavy: bool = False  # large: judged only by the workers of the heavy lane (module docstring)
    attempts: int = 0
    link: WorkerLink[_Request] | None = None
    timer: asyncio.TimerHandle | None = field(default=None)


class ProcessPipeline:
    """The filter pipeline's ``evaluate`` and ``evaluate_stored``, run in worker processes (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        processes: int,
        *,
        memory: FilterMemory | None = None,
        idle_stop: bool = True,
    ) -> None:
        self._settings = settings
        self._policy = settings.filters.policy.policy()  # decides what an unscannable message gets
        self._processes = max(1, processes)
        self._memory = memory
        self._idle_stop = idle_stop
        self._deadline = settings.filters.deadline
        self._links: list[WorkerLink[_Request]] = []
        self._spawning: asyncio.Task[None] | None = None
        self._pause = 0.0
        self._waiting: collections.deque[_Request] = collections.deque()
        self._waiting_heavy: collections.deque[_Request] = collections.deque()
        self._ids = itertools.count()
        self._numbers = itertools.count()
        self._idle: asyncio.TimerHandle | None = None
        self._reaping: set[asyncio.Future[None]] = set()
        self._closed = False
        self.in_workers = 0  # messages the workers judged
        self.unscannable = 0  # messages given the unscannable verdict
        self.replaced = 0  # workers killed or lost and replaced

    def start(self) -> None:
        """Start the workers in the background now (serve does, so that messages rarely wait for them)."""
        self._spawn_missing()

    async def started(self) -> None:
        """Wait until a worker has started (or a start failed); at once while any worker runs."""
        self._spawn_missing()
        if self._spawning is not None and not self._links:
            await asyncio.shield(self._spawning)

    async def evaluate(self, envelope: Envelope, content: bytes, *, learn: bool = True) -> PipelineResult:
        """Judge one message in a worker; learn hands what it taught back to the filter memory."""
        if learn and self._memory is None:
            raise ValueError("this worker pool has no filter memory to learn into; pass learn=False")
        return await self._evaluate(envelope, content, None, learn)

    async def evaluate_stored(self, envelope: Envelope, sha256: str, content: bytes) -> PipelineResult:
        """Judge a stored message (content, stored under sha256): the worker reads the body itself.

        The body does not cross to the worker: on the delivering process, which is the
        replay's bound, copying each body into the worker's socket cost a twentieth of its CPU.
        """
        return await self._evaluate(envelope, content, sha256, False)

    async def call(self, name: str, content: bytes, digest: str | None, *args: object, size: int = 0) -> object:
        """Run the content call name (content_calls.CALLS) on content in a worker; digest lets it read the body.

        size is the body's size when only its digest is sent. Raises UnreadableContentError
        when the deadline passes or the call fails.
        """
        if name not in CALLS:
            raise ValueError(f"no content call named {name!r}")
        loop = asyncio.get_running_loop()
        heavy = max(size, len(content)) > HEAVY_BYTES
        return await self._submit(_Request(None, content, digest, False, loop.create_future(), name, args, heavy))

    async def _evaluate(self, envelope: Envelope, content: bytes, digest: str | None, learn: bool) -> PipelineResult:
        if self._memory is not None and self._memory.pending:
            try:
                await self._memory.flush()
            except StorageError as exc:  # the periodic flush retries; judging goes on
                log.warning("could not write the filter memory before judging: %s", exc)
        loop = asyncio.get_running_loop()
        request = _Request(envelope, content, digest, learn, loop.create_future(), heavy=len(content) > HEAVY_BYTES)
        result: PipelineResult = await self._submit(request)
        return result

    async def _submit(self, request: _Request) -> Any:
        if self._closed:
            raise FilterWorkerError("the filter worker processes are closed")
        self._arm(request)
        self._queue_of(request).append(request)
        self._busy()
        self._spawn_missing()
        self.admit()
        try:
            return await request.future
        finally:
            if request.timer is not None:
                request.timer.cancel()

    # -- handing requests to workers ------------------------------------------------------------

    def _queue_of(self, request: _Request) -> collections.deque[_Request]:
        return self._waiting_heavy if request.heavy else self._waiting

    def admit(self) -> None:
        """Send waiting requests to the workers with room for them (see the lanes in the module docstring)."""
        for waiting, room in ((self._waiting_heavy, self._heavy_room), (self._waiting, self._light_room)):
            while waiting:
                candidates = [link for link in self._links if room(link)]
                if not candidates:
                    break
                request = waiting.popleft()
                if not request.future.done():
                    self._send(min(candidates, key=lambda link: len(link.outstanding)), request)
        idle = not self._waiting and not self._waiting_heavy
        if self._idle_stop and idle and not any(link.outstanding for link in self._links):
            self._busy()
            self._idle = asyncio.get_running_loop().call_later(_IDLE_SECONDS, self._stop_idle)

    def _heavy_room(self, link: WorkerLink[_Request]) -> bool:
        held = [request.heavy for request in link.outstanding.values()]
        return takes_heavy(link.heavy_lane, held, self._processes, _OUTSTANDING)

    def _light_room(self, link: WorkerLink[_Request]) -> bool:
        held = [request.heavy for request in link.outstanding.values()]
        return takes_light(link.heavy_lane, held, self._processes, bool(self._waiting_heavy), _OUTSTANDING)

    def _send(self, link: WorkerLink[_Request], request: _Request) -> None:
        request_id = next(self._ids)
        request.link = link
        link.outstanding[request_id] = request
        body: bytes | str = request.digest if request.digest is not None else request.content
        link.send((request_id, request.name, request.envelope, body, request.learn, request.args))

    def answered(self, link: WorkerLink[_Request], request_id: int, answer: Answer) -> None:
        """A worker's answer to one request (WorkerLink calls this)."""
        request = link.outstanding.pop(request_id, None)
        if request is None or request.future.done():
            return
        request.link = None
        ok, payload, lessons = answer
        if ok:
            self.in_workers += 1
            if lessons is not None and self._memory is not None:
                self._memory.remember(lessons)
            if request.envelope is None:
                request.future.set_result(payload)
            else:
                request.future.set_result(unpack_result(_packed(payload), request.envelope))
        elif request.digest is not None:
            # The worker could not read the stored body: send the bytes this process has.
            request.digest = None
            self._retry(request, f"the worker could not read the stored body: {payload}")
        else:
            self._give_unscannable(request, f"judging failed: {payload}")
        self.admit()

    # -- deadlines, lost workers, unscannable messages --------------------------------------------

    def _arm(self, request: _Request) -> None:
        if request.timer is not None:
            request.timer.cancel()
        loop = asyncio.get_running_loop()
        request.timer = loop.call_later(self._deadline, self._overrun, request)

    def _overrun(self, request: _Request) -> None:
        if request.future.done():
            return
        link = request.link
        if link is None:
            with contextlib.suppress(ValueError):
                self._queue_of(request).remove(request)
            self._give_unscannable(request, f"no filter worker could take it within {self._deadline:g} s")
            return
        culprit = link.outstanding.get(link.parsing(), request)
        log.error(
            "filter worker %s (%s lane, %d held) overran the %g s deadline on %s; killing and replacing it",
            link.name,
            "heavy" if link.heavy_lane else "light",
            len(link.outstanding),
            self._deadline,
            _described(culprit),
        )
        self._lose(link, f"judging it took longer than {self._deadline:g} s", culprit)

    def lost(self, link: WorkerLink[_Request], reason: object) -> None:
        """A worker ended or broke its socket (WorkerLink calls this): what it held is sent again."""
        log.error("filter worker %s failed (%s); replacing it", link.name, reason)
        self._lose(link, f"its filter worker failed: {reason}", None)

    def _lose(self, link: WorkerLink[_Request], reason: str, culprit: _Request | None) -> None:
        if link not in self._links:
            return
        self._links.remove(link)
        link.kill()
        self._reap_later([link.process])
        self.replaced += 1
        held, link.outstanding = list(link.outstanding.values()), {}
        for request in held:
            request.link = None
            if request is culprit:
                self._give_unscannable(request, reason)
            else:
                self._retry(request, reason)
        self._spawn_missing()
        self.admit()

    def _retry(self, request: _Request, reason: str) -> None:
        request.attempts += 1
        if request.attempts >= _ATTEMPTS:
            self._give_unscannable(request, f"{reason} (attempt {request.attempts})")
            return
        self._arm(request)
        self._queue_of(request).appendleft(request)

    def _give_unscannable(self, request: _Request, reason: str) -> None:
        if request.future.done():
            return
        self.unscannable += 1
        if request.envelope is None:
            log.warning("%s failed (%s); the message is shown as source text", _described(request), reason)
            request.future.set_exception(UnreadableContentError(f"the message could not be read: {reason}"))
            return
        verdict: Verdict = self._settings.filters.unscannable
        log.warning("%s is unscannable (%s): %s", _described(request), reason, verdict.value)
        request.future.set_result(unscannable_result(request.envelope, self._policy, verdict, reason))

    # -- the workers' lives -----------------------------------------------------------------------

    def _spawn_missing(self) -> None:
        if self._closed or self._spawning is not None or len(self._links) >= self._processes:
            return
        self._spawning = asyncio.ensure_future(self._spawn())

    async def _spawn(self) -> None:
        try:
            if self._pause:
                await asyncio.sleep(self._pause)
            missing = self._processes - len(self._links)
            if missing > 0:
                log.info("filter pipeline: starting %d worker process(es)", missing)
            # Started together: one start is a few seconds of imports and set-up on a busy machine.
            starting = [asyncio.ensure_future(self._start_one()) for _ in range(max(0, missing))]
            failure: BaseException | None = None
            try:
                for started in asyncio.as_completed(starting):
                    try:
                        self._join(await started)
                    except Exception as exc:
                        failure = exc
            except BaseException:  # closed while starting: no worker outlives the pool
                self._abandon(starting)
                raise
            if failure is not None:
                raise failure
            self._pause = 0.0
        except Exception as exc:  # OS limits, settings that cannot be pickled: retried with a pause
            self._pause = min(_RESPAWN_MAX, max(_RESPAWN_FIRST, self._pause * 2))
            log.error("cannot start a filter worker (%r); trying again in %.1f s", exc, self._pause)
        finally:
            self._spawning = None
        wanted = self._waiting or self._waiting_heavy or not self._idle_stop
        if not self._closed and len(self._links) < self._processes and wanted:
            self._spawn_missing()

    def _abandon(self, starting: Sequence[asyncio.Future[WorkerLink[_Request]]]) -> None:
        for task in starting:
            if not task.done():
                task.cancel()  # _start_one kills what it started
            elif not task.cancelled() and task.exception() is None and task.result() not in self._links:
                task.result().kill()
                self._reap_later([task.result().process])

    def _join(self, link: WorkerLink[_Request]) -> None:
        """A started worker takes the lane that lacks one: light first (ordinary mail), then heavy."""
        if self._closed:
            link.close()
            self._reap_later([link.process])
            return
        link.heavy_lane = joins_heavy_lane([other.heavy_lane for other in self._links], self._processes)
        self._links.append(link)
        log.info("filter worker %s started (%s lane)", link.name, "heavy" if link.heavy_lane else "light")
        self.admit()

    async def _start_one(self) -> WorkerLink[_Request]:
        loop = asyncio.get_running_loop()
        context = _context()
        parsing = context.RawValue(ctypes.c_longlong, -1)
        number = next(self._numbers)
        ours, theirs = socket.socketpair()
        with ours, theirs:  # ours is duplicated into the transport; theirs only the worker keeps
            process = context.Process(
                target=run_worker,
                args=(self._settings, theirs, os.getpid(), parsing),
                name=f"continuity-filter-{number}",
                daemon=True,
            )
            process.start()
            try:
                _, link = await loop.create_connection(
                    lambda: WorkerLink[_Request](self, process, parsing), sock=ours.dup()
                )
            except BaseException:
                process.kill()
                self._reap_later([process])
                raise
        # Only now, with theirs closed here, does a worker that dies show as a closed socket.
        try:
            async with asyncio.timeout(_READY_SECONDS):
                await link.ready
        except BaseException:
            link.kill()
            self._reap_later([process])
            raise
        return link

    def _busy(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _stop_idle(self) -> None:
        links, self._links = self._links, []
        for link in links:
            link.close()
        self._reap_later([link.process for link in links])

    def _reap_later(self, processes: list[BaseProcess]) -> None:
        if processes:
            reaping = asyncio.ensure_future(asyncio.to_thread(_reap, processes))
            self._reaping.add(reaping)
            reaping.add_done_callback(self._reaping.discard)

    async def close(self) -> None:
        """Stop the workers and wait for them to exit; messages still waiting get FilterWorkerError."""
        self._closed = True
        self._busy()
        if self._spawning is not None:
            self._spawning.cancel()
            await asyncio.gather(self._spawning, return_exceptions=True)
        links, self._links = self._links, []
        error = FilterWorkerError("the filter worker processes were closed")
        pending = [request for link in links for request in link.outstanding.values()]
        pending += [*self._waiting, *self._waiting_heavy]
        self._waiting.clear()
        self._waiting_heavy.clear()
        for link in links:
            link.outstanding = {}
            link.close()
        for request in pending:
            if not request.future.done():
                request.future.set_exception(error)
        started = time.monotonic()
        await asyncio.to_thread(_reap, [link.process for link in links])
        await asyncio.gather(*self._reaping)
        log.debug("filter workers stopped in %.1f s", time.monotonic() - started)


def _context() -> multiprocessing.context.ForkServerContext:
    """Workers fork from a fork server that has imported their code once: never from this
    process (it runs threads), and without each worker importing everything again (a second
    or more of CPU per worker with spawn)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["continuity.services.filter_worker"])
    return context


def _described(request: _Request) -> str:
    if request.envelope is None:
        return f"content call {request.name} on a message of {len(request.content)} bytes"
    return f"message from=<{request.envelope.sender}> of {len(request.content)} bytes"


def _packed(payload: object) -> PackedResult:
    return cast(PackedResult, payload)  # the worker sends pack_result(...)


def _reap(processes: list[BaseProcess]) -> None:
    """Wait for stopping workers to exit (they end when their socket closes); kill the ones that do not."""
    for process in processes:
        process.join(_JOIN_SECONDS)
        if process.exitcode is None:
            log.warning("filter worker %s did not exit in %.0f s; killing it", process.name, _JOIN_SECONDS)
            process.kill()
            process.join()


__all__ = ["FilterWorkerError", "Lessons", "ProcessPipeline"]
