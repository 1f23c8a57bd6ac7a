"""Message bodies made durable per batch: staged ahead, one flush, renamed, the directory fsynced.

The store-level side (prepare, commit, two commits in flight) is in test_sqlite_store.py.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import pytest

from continuity.errors import StorageError
from continuity.store import syncfs
from continuity.store.blobs import BlobStore


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_a_staged_body_has_no_final_name_until_published(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    blobs.open_sync(recover=True)
    try:
        staged = [blobs.stage_sync(_digest(content), content) for content in (b"one\r\n", b"two\r\n")]
        assert all(body.temporary is not None and body.temporary.exists() for body in staged)
        assert not any(blobs.path_for(body.sha256).exists() for body in staged)
        blobs.publish_sync(staged)
        assert [blobs.read_sync(body.sha256) for body in staged] == [b"one\r\n", b"two\r\n"]
        assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
        # Stored already: nothing is written again.
        assert blobs.stage_sync(staged[0].sha256, b"one\r\n").temporary is None
    finally:
        blobs.close_sync()


def test_a_failed_publish_leaves_no_temporary_file_and_no_partial_body(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    blobs.open_sync(recover=True)
    try:
        staged = [blobs.stage_sync(_digest(content), content) for content in (b"kept\r\n", b"lost\r\n")]
        assert staged[1].temporary is not None
        staged[1].temporary.unlink()  # its rename fails
        with pytest.raises(StorageError, match="cannot make message bodies durable"):
            blobs.publish_sync(staged)
        assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
        assert not blobs.path_for(staged[1].sha256).exists()
        # A body renamed before the failure is complete; no row refers to it yet.
        if blobs.path_for(staged[0].sha256).exists():
            assert blobs.read_sync(staged[0].sha256) == b"kept\r\n"
    finally:
        blobs.close_sync()


def test_flush_uses_syncfs_on_linux_and_fsyncs_each_file_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [tmp_path / f"f{n}" for n in range(3)]
    for path in files:
        path.write_bytes(b"x")
    if platform.system() == "Linux":
        assert syncfs.syncfs_available()
    syncfs.flush_files(tmp_path, files)
    synced: list[int] = []
    monkeypatch.setattr(syncfs, "_SYNCFS", None)
    monkeypatch.setattr(os, "fsync", synced.append)
    syncfs.flush_files(tmp_path, files)
    assert len(synced) == 3


def test_a_failing_syncfs_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syncfs, "_SYNCFS", lambda descriptor: -1)
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(OSError, match="syncfs"):
        syncfs.flush_files(tmp_path, [tmp_path / "f"])
