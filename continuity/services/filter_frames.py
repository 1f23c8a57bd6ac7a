"""Length-prefixed frames between the replay and its filter worker processes, over a socket pair.

Each frame is a 4-byte big-endian length and a pickle. Pickle is safe here: both ends are
this program, on a socket pair the main process created for the worker it started;
nothing else can write to it. ``Outbox`` gathers the frames produced in one turn of the
event loop into one write, so a burst of requests (or of results) costs one system call.
"""

from __future__ import annotations

import asyncio
import pickle
import struct

_LENGTH = struct.Struct("!I")

# The request id of the frame a worker sends once it can judge (its pipeline is built).
READY = -1


class FrameError(Exception):
    """The other end sent something that is not a frame (it is no longer trusted)."""


def encode(value: object) -> bytes:
    """value as one frame."""
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


class FrameReader:
    """Turns the bytes received, in whatever pieces they arrive, back into the values sent."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[object]:
        """The values completed by data (none while a frame is still partial)."""
        self._buffer += data
        values: list[object] = []
        start = 0
        while len(self._buffer) - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer, start)
            end = start + _LENGTH.size + length
            if end > len(self._buffer):
                break
            try:
                values.append(pickle.loads(memoryview(self._buffer)[start + _LENGTH.size : end]))  # noqa: S301 - our own worker
            except Exception as exc:  # any unpickling failure means a broken peer
                raise FrameError(f"an unreadable frame of {length} bytes: {exc!r}") from None
            start = end
        if start:
            del self._buffer[:start]
        return values


class Outbox:
    """Frames written together at the end of the current turn of the event loop."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport
        self._frames: list[bytes] = []

    def send(self, value: object) -> None:
        """Queue value; the write happens once this turn of the loop is over."""
        if not self._frames:
            asyncio.get_running_loop().call_soon(self._flush)
        self._frames.append(encode(value))

    def _flush(self) -> None:
        frames, self._frames = self._frames, []
        if not self._transport.is_closing():
            self._transport.writelines(frames)
