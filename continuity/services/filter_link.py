"""The main process's end of one filter worker's socket (filter_processes.py owns the workers).

Frames in are the worker's answers ``(request id, ok, payload, lessons)``: the packed
verdict and what the stages learned, or an error text. Frames out are requests, written
together at the end of each turn of the event loop (filter_frames.Outbox). The worker
publishes in shared memory the request id whose message it is parsing (-1 otherwise),
so that the owner can tell which message held a worker past its deadline.
"""

from __future__ import annotations

import asyncio
import ctypes
from multiprocessing.process import BaseProcess
from typing import Generic, Protocol, TypeVar, cast

from continuity.services.filter_frames import READY, FrameError, FrameReader, Outbox
from continuity.services.filter_memory import Lessons

RequestT = TypeVar("RequestT")

# ok, then the packed verdict (or the error text), then what the stages learned (or None).
Answer = tuple[bool, object, Lessons | None]


class LinkOwner(Protocol[RequestT]):
    """What a link reports to: each answer, and the loss of its worker."""

    def answered(self, link: WorkerLink[RequestT], request_id: int, answer: Answer) -> None:
        """One request is answered."""
        ...

    def lost(self, link: WorkerLink[RequestT], reason: object) -> None:
        """The worker ended or broke its socket."""
        ...


class WorkerLink(asyncio.Protocol, Generic[RequestT]):
    """One worker: its process, its socket, the requests it holds."""

    def __init__(self, owner: LinkOwner[RequestT], process: BaseProcess, parsing: ctypes.c_longlong) -> None:
        self._owner = owner
        self.process = process
        self._parsing = parsing
        self._frames = FrameReader()
        self.outstanding: dict[int, RequestT] = {}
        self.heavy_lane = False  # takes large messages (the owner's lanes)
        self._outbox: Outbox | None = None
        self._transport: asyncio.Transport | None = None
        self._closing = False  # closed or killed by the owner, not lost
        # Done when the worker said it can judge (its pipeline is built), or failed before.
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def name(self) -> str:
        """The worker process's name."""
        return self.process.name

    def parsing(self) -> int:
        """The request id whose message the worker is parsing now, or -1."""
        return int(self._parsing.value)

    def send(self, request: object) -> None:
        """Queue one request frame."""
        assert self._outbox is not None
        self._outbox.send(request)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._outbox = Outbox(self._transport)

    def data_received(self, data: bytes) -> None:
        try:
            answers = self._frames.feed(data)
        except FrameError as exc:
            self._owner.lost(self, exc)
            return
        for frame in answers:
            request_id, ok, payload, lessons = cast(tuple[int, bool, object, "Lessons | None"], frame)
            if request_id == READY:
                if not self.ready.done():
                    self.ready.set_result(None)
                continue
            self._owner.answered(self, request_id, (ok, payload, lessons))

    def connection_lost(self, exc: Exception | None) -> None:
        code = self.process.exitcode
        reason = exc or (f"it ended with exit code {code}" if code is not None else "it closed its socket")
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"the worker ended before it was ready: {reason}"))
        elif not self._closing:
            self._owner.lost(self, reason)

    def close(self) -> None:
        """Close the socket: the worker exits when it sees that."""
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def kill(self) -> None:
        """Kill the worker now (it may be stuck in a parse) and close the socket."""
        self._closing = True
        if self.process.exitcode is None:
            self.process.kill()
        if self._transport is not None:
            self._transport.abort()
