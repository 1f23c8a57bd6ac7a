"""Writing a run's manifest to disk page by page: durable, with its sha256 computed as it is written.

The journal is read a page at a time on the store's bulk reader; each page is encoded,
hashed and written in a thread, so neither the event loop nor the memory of the process
grows with the run (two million items are about 400 pages). The file appears under its
final name only when complete: it is written as a hidden temporary file, fsynced,
renamed, and the directory fsynced.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

from continuity.core.replay_manifest import (
    ManifestSummary,
    ManifestTally,
    Verification,
    encode_line,
    message_line,
    run_line,
)
from continuity.core.replay_records import ManifestRow, ReplayRun
from continuity.errors import StorageError
from continuity.store.protocol import Store

PAGE = 5000  # journal items read, encoded and written at a time


class _ManifestFile:
    """A temporary file being written, its digest, and the move to its final name (blocking calls)."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.final = directory / name
        self._temporary = directory / f".{name}.tmp"
        self._digest = hashlib.sha256()
        self._descriptor = -1

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._descriptor = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)

    def write(self, lines: Sequence[dict[str, object]]) -> None:
        data = b"".join(encode_line(line) for line in lines)
        self._digest.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._descriptor, view) :]

    def write_rows(self, rows: Sequence[ManifestRow], tally: ManifestTally) -> None:
        for row in rows:
            tally.add(row)
        self.write([message_line(row) for row in rows])

    def finish(self) -> str:
        os.fsync(self._descriptor)
        os.close(self._descriptor)
        self._descriptor = -1
        self._temporary.rename(self.final)
        directory = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return self._digest.hexdigest()

    def abandon(self) -> None:
        if self._descriptor >= 0:
            os.close(self._descriptor)
            self._descriptor = -1
        self._temporary.unlink(missing_ok=True)


def manifest_name(run: ReplayRun, at: float) -> str:
    """The file name of run's manifest."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at))
    return f"replay-{run.id:05d}-{run.kind.value}-{stamp}.jsonl"


async def write_manifest(
    store: Store, directory: Path, run: ReplayRun, verification: Verification, *, method: str, at: float
) -> tuple[Path, str, ManifestSummary]:
    """Write run's manifest durably from the journal; returns its path, its sha256 and its totals."""
    file = _ManifestFile(directory, manifest_name(run, at))
    tally = ManifestTally()
    try:
        await asyncio.to_thread(file.open)
        await asyncio.to_thread(file.write, [run_line(run, method=method)])
        after = 0
        while page := await store.replay.manifest_page(run.id, after, PAGE):
            after = page[-1][0]
            await asyncio.to_thread(file.write_rows, [row for _, row in page], tally)
        await asyncio.to_thread(file.write, tally.closing_lines(verification, at))
        digest = await asyncio.to_thread(file.finish)
    except OSError as exc:
        file.abandon()
        raise StorageError(f"cannot write the replay manifest in {directory}: {exc}") from exc
    except BaseException:
        file.abandon()
        raise
    return file.final, digest, tally.summary()
