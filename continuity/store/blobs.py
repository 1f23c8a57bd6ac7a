"""Content-addressed message bodies on disk.

A body is stored under ``ROOT/ab/abcdef...`` (its sha256). Writing follows the durable
recipe: write to ``ROOT/tmp``, fsync the file, rename into place, fsync the directory.
A batch shares the directory fsyncs. Leftover temporary files from a crash are removed
when the store opens; they were never referenced by a committed row.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from collections.abc import Iterable
from pathlib import Path

from continuity.errors import NotFoundError, StorageError

_FANOUT = [f"{value:02x}" for value in range(256)]


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class BlobStore:
    """Message bodies keyed by sha256, written durably."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._counter = itertools.count()

    def open_sync(self, *, recover: bool) -> None:
        """Create the directory tree; with recover, remove temporary files left by a crash.

        Only the process that owns the data directory (``continuity serve``) recovers;
        a CLI reading the queue beside it must not touch its in-flight files.
        """
        created = not self.root.exists()
        self._tmp.mkdir(parents=True, exist_ok=True)
        for name in _FANOUT:
            (self.root / name).mkdir(exist_ok=True)
        if recover:
            for leftover in self._tmp.iterdir():
                leftover.unlink(missing_ok=True)
        _fsync_directory(self.root)
        if created:
            _fsync_directory(self.root.parent)

    def path_for(self, sha256: str) -> Path:
        """Where the body with this digest lives."""
        return self.root / sha256[:2] / sha256

    def write_many_sync(self, bodies: Iterable[tuple[str, bytes]]) -> None:
        """Durably store every (sha256, content) pair; blocking, run it in a worker thread.

        Raises StorageError (and leaves no temporary file) when the disk refuses.
        """
        directories: set[Path] = set()
        for sha256, content in bodies:
            final = self.path_for(sha256)
            if final in directories or final.exists():
                # Same content already stored (or stored earlier in this batch): its
                # directory is fsynced below or was fsynced when it was first written.
                directories.add(final.parent)
                continue
            self._write_one(final, content)
            directories.add(final.parent)
        try:
            for directory in directories:
                _fsync_directory(directory)
        except OSError as exc:
            raise StorageError(f"cannot fsync blob directory: {exc}") from exc

    def _write_one(self, final: Path, content: bytes) -> None:
        temporary = self._tmp / f"{final.name}.{os.getpid()}.{next(self._counter)}"
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                view = memoryview(content)
                while view:
                    written = os.write(descriptor, view)
                    view = view[written:]
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.rename(temporary, final)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise StorageError(f"cannot write message body {final.name}: {exc}") from exc

    def read_sync(self, sha256: str) -> bytes:
        """Read and verify a body; blocking."""
        try:
            content = self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"message body {sha256} is missing from {self.root}") from None
        except OSError as exc:
            raise StorageError(f"cannot read message body {sha256}: {exc}") from exc
        if hashlib.sha256(content).hexdigest() != sha256:
            raise StorageError(f"message body {sha256} is corrupt (digest mismatch)")
        return content

    async def read(self, sha256: str) -> bytes:
        """Read and verify a body without blocking the event loop."""
        return await asyncio.to_thread(self.read_sync, sha256)
