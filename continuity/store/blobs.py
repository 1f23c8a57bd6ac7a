"""Content-addressed message bodies on disk.

A body is stored as ``ROOT/bodies/<sha256>``. Writing follows the durable recipe: write
to ``ROOT/tmp``, flush the file, rename into place, fsync the directory. A body only
ever appears under its final name complete and flushed, so a reader never sees a
partial one. Leftover temporary files from a crash are removed when the server opens
the store; no committed row ever referenced them.

During SMTP ingest each session's body is written to its temporary file as soon as its
DATA ends (``stage_sync`` on the event loop for a small body, ``start_stage`` in a writer
thread for a large one); the group commit then makes the whole batch durable at once
(``publish_sync``, in the database's writer thread): one flush of the file system for
every staged file (``syncfs``, see continuity.store.syncfs), the renames, one fsync of
the directory. The directory is flat, so one fsync covers every body of a batch (ext4
and XFS index large directories; retention keeps the count to the bodies of recent
weeks).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from continuity.errors import NotFoundError, StorageError
from continuity.store.syncfs import flush_files

# Concurrent writes of large bodies (small ones are staged on the event loop) and of put().
_WRITERS = 8


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_whole(path: Path) -> bytes:
    """The file's bytes in four system calls (open, fstat, read, close).

    Path.read_bytes takes seven or more (a second fstat, lseek, a read to find the end).
    In a reader thread each call hands the interpreter lock to the event loop and back;
    in a replay A/B run its reader threads switched context about a third less often.
    """
    descriptor = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(descriptor).st_size
        content = os.read(descriptor, size) if size else b""
        while len(content) < size:  # a short read (rare for a regular file): read the rest
            more = os.read(descriptor, size - len(content))
            if not more:
                break
            content += more
        return content
    finally:
        os.close(descriptor)


@dataclass(frozen=True, slots=True)
class StagedBody:
    """A body written to a temporary file, neither flushed nor under its final name yet."""

    sha256: str
    # None when the body was stored already (same content, an earlier message).
    temporary: Path | None


class BlobStore:
    """Message bodies keyed by sha256, written durably."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bodies = root / "bodies"
        self._tmp = root / "tmp"
        self._counter = itertools.count()
        self._pool = ThreadPoolExecutor(_WRITERS, thread_name_prefix="blob-writer")

    def open_sync(self, *, recover: bool) -> None:
        """Create the directories; with recover, remove temporary files left by a crash.

        Only the process that owns the data directory (``continuity serve``) recovers;
        a CLI reading the queue beside it must not touch its in-flight files.
        """
        created = not self.root.exists()
        self._tmp.mkdir(parents=True, exist_ok=True)
        self.bodies.mkdir(exist_ok=True)
        if recover:
            for leftover in self._tmp.iterdir():
                leftover.unlink(missing_ok=True)
        _fsync_directory(self.root)
        if created:
            _fsync_directory(self.root.parent)

    def path_for(self, sha256: str) -> Path:
        """Where the body with this digest lives."""
        return self.bodies / sha256

    def write_file_sync(self, sha256: str, content: bytes) -> None:
        """Write, fsync and rename a body into place (its directory is not fsynced); blocking."""
        staged = self.stage_sync(sha256, content)
        if staged.temporary is None:
            return  # complete and fsynced: bodies only appear under their name that way
        try:
            descriptor = os.open(staged.temporary, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            staged.temporary.rename(self.path_for(sha256))
        except OSError as exc:
            staged.temporary.unlink(missing_ok=True)
            raise StorageError(f"cannot write message body {sha256}: {exc}") from exc

    def stage_sync(self, sha256: str, content: bytes) -> StagedBody:
        """Write content to a temporary file without flushing it (see publish_sync); blocking."""
        if self.path_for(sha256).exists():
            return StagedBody(sha256, None)
        temporary = self._tmp / f"{sha256}.{os.getpid()}.{next(self._counter)}"
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                view = memoryview(content)
                while view:
                    written = os.write(descriptor, view)
                    view = view[written:]
            finally:
                os.close(descriptor)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise StorageError(f"cannot write message body {sha256}: {exc}") from exc
        return StagedBody(sha256, temporary)

    def start_stage(self, sha256: str, content: bytes) -> Future[StagedBody]:
        """Begin stage_sync in a writer thread."""
        return self._pool.submit(self.stage_sync, sha256, content)

    def publish_sync(self, staged: Sequence[StagedBody]) -> None:
        """Make staged bodies durable under their final names: one flush, the renames, one directory fsync.

        Blocking. On StorageError no staged file is left behind; a body already renamed
        is complete and flushed (a later message may use it), and no row refers to it yet.
        """
        files = [body.temporary for body in staged if body.temporary is not None]
        try:
            flush_files(self._tmp, files)
            for body in staged:
                if body.temporary is not None:
                    body.temporary.rename(self.path_for(body.sha256))
            # Always, even with nothing renamed here: a body found under its final name may
            # have been renamed by a commit whose directory fsync has not finished.
            _fsync_directory(self.bodies)
        except OSError as exc:
            self.discard_sync(staged)
            raise StorageError(f"cannot make message bodies durable in {self.bodies}: {exc}") from exc

    def discard_sync(self, staged: Sequence[StagedBody]) -> None:
        """Remove the temporary files of staged bodies that will not be published; blocking."""
        for body in staged:
            if body.temporary is not None:
                body.temporary.unlink(missing_ok=True)

    def put_sync(self, sha256: str, content: bytes) -> None:
        """Store content durably under sha256; blocking. StorageError when the disk refuses."""
        self.write_file_sync(sha256, content)
        try:
            _fsync_directory(self.bodies)
        except OSError as exc:
            raise StorageError(f"cannot fsync the body directory {self.bodies}: {exc}") from exc

    async def put(self, sha256: str, content: bytes) -> None:
        """Store content durably under sha256 in a writer thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self.put_sync, sha256, content)

    def missing(self, digests: Iterable[str]) -> list[str]:
        """The digests among digests that have no stored body; blocking."""
        return [digest for digest in digests if not self.path_for(digest).exists()]

    def read_sync(self, sha256: str) -> bytes:
        """Read and verify a body; blocking."""
        try:
            content = _read_whole(self.path_for(sha256))
        except FileNotFoundError:
            raise NotFoundError(f"message body {sha256} is missing from {self.bodies}") from None
        except OSError as exc:
            raise StorageError(f"cannot read message body {sha256}: {exc}") from exc
        if hashlib.sha256(content).hexdigest() != sha256:
            raise StorageError(f"message body {sha256} is corrupt (digest mismatch)")
        return content

    async def read(self, sha256: str) -> bytes:
        """Read and verify a body without blocking the event loop."""
        return await asyncio.to_thread(self.read_sync, sha256)

    def read_many_sync(self, digests: Sequence[str]) -> dict[str, bytes]:
        """Read and verify several bodies; one that is missing or corrupt is left out; blocking."""
        bodies: dict[str, bytes] = {}
        for sha256 in digests:
            try:
                bodies[sha256] = self.read_sync(sha256)
            except (NotFoundError, StorageError):
                continue  # a read of that body alone reports the problem
        return bodies

    async def read_many(self, digests: Sequence[str]) -> dict[str, bytes]:
        """Read several bodies in one hand-over to a thread (for bulk readers such as the replay)."""
        return await asyncio.to_thread(self.read_many_sync, digests)

    def close_sync(self) -> None:
        """Stop the writer threads."""
        self._pool.shutdown(wait=True)
