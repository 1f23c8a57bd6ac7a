"""Reading stored messages for people: the webmail's pages, its index, quarantine previews.

``ContentReader`` is what the webmail, the indexer and the quarantine use. In ``serve``
it is ``WorkerContentReader``: the work runs in the filter worker processes under the
same deadline as judging (filter_processes.py), so a hostile message cannot stall the
serving process; past the deadline the call raises ``UnreadableContentError`` and the
webmail shows the message's source text instead. ``LocalContentReader`` runs the same
functions in a thread of the calling process: for command-line tools and tests, never
for the serving process.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

from continuity.core import mime_view
from continuity.core.message_view import MessageView as InspectedMessage
from continuity.errors import UnreadableContentError
from continuity.services.content_calls import CALLS
from continuity.services.filter_processes import ProcessPipeline
from continuity.store.protocol import BlobRepository
from webmail.security.sanitizer import SanitizedHtml


class ContentReader(Protocol):
    """Parses stored messages for display; every method may raise UnreadableContentError."""

    async def ready(self) -> None:
        """Wait until the reader can work (its worker processes have started, or failed to)."""
        ...

    async def page(self, content: bytes) -> tuple[mime_view.MessageView, int]:
        """The message as the webmail shows it, and the count of remote images its HTML would load."""
        ...

    async def frame(self, content: bytes, allow_remote_images: bool, cid_base: str) -> SanitizedHtml | None:
        """The sanitized HTML body, or None."""
        ...

    async def part(self, content: bytes, index: int) -> bytes | None:
        """The decoded bytes of one part, or None."""
        ...

    async def view(self, content: bytes) -> mime_view.MessageView:
        """The message as the webmail shows it."""
        ...

    async def summary(self, sha256: str, size: int) -> mime_view.MessageSummary:
        """The index summary of the message of size bytes stored under sha256."""
        ...

    async def inspect(self, content: bytes) -> InspectedMessage:
        """The message as the filters see it, for a quarantine preview."""
        ...


class _Calls:
    """The typed methods, over one way of running a named call."""

    async def _run(self, name: str, content: bytes, sha256: str | None, *args: object, size: int = 0) -> object:
        raise NotImplementedError

    async def page(self, content: bytes) -> tuple[mime_view.MessageView, int]:
        return cast(tuple[mime_view.MessageView, int], await self._run("page", content, None))

    async def frame(self, content: bytes, allow_remote_images: bool, cid_base: str) -> SanitizedHtml | None:
        return cast(SanitizedHtml | None, await self._run("frame", content, None, allow_remote_images, cid_base))

    async def part(self, content: bytes, index: int) -> bytes | None:
        return cast(bytes | None, await self._run("part", content, None, index))

    async def view(self, content: bytes) -> mime_view.MessageView:
        return cast(mime_view.MessageView, await self._run("view", content, None))

    async def summary(self, sha256: str, size: int) -> mime_view.MessageSummary:
        return cast(mime_view.MessageSummary, await self._run("summary", b"", sha256, size=size))

    async def inspect(self, content: bytes) -> InspectedMessage:
        return cast(InspectedMessage, await self._run("inspect", content, None))


class WorkerContentReader(_Calls):
    """ContentReader on the worker processes (serve)."""

    def __init__(self, workers: ProcessPipeline) -> None:
        self._workers = workers

    async def ready(self) -> None:
        await self._workers.started()

    async def _run(self, name: str, content: bytes, sha256: str | None, *args: object, size: int = 0) -> object:
        return await self._workers.call(name, content, sha256, *args, size=size)


class LocalContentReader(_Calls):
    """ContentReader in a thread of this process (command-line tools and tests only)."""

    def __init__(self, blobs: BlobRepository) -> None:
        self._blobs = blobs

    async def ready(self) -> None:
        return None

    async def _run(self, name: str, content: bytes, sha256: str | None, *args: object, size: int = 0) -> object:
        if sha256 is not None:
            content = await self._blobs.read(sha256)
        try:
            return await asyncio.to_thread(CALLS[name], content, *args)
        except Exception as exc:  # as the workers report it: the message cannot be read
            raise UnreadableContentError(f"parsing failed: {exc!r}"[:500]) from exc
