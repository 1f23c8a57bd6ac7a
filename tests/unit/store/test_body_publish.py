"""Message bodies made durable per batch: staged ahead, one flush, renamed, the directory fsynced."""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.core.models import AcceptedRecipient, IncomingMessage
from continuity.errors import StorageError
from continuity.store import syncfs
from continuity.store.blobs import BlobStore
from continuity.store.group_commit import GroupCommitter
from continuity.store.sqlite import SqliteStore, open_sqlite_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs", recover=True)
    try:
        yield opened
    finally:
        await opened.close()


def _message(queue_id: str, content: bytes) -> IncomingMessage:
    return IncomingMessage(
        queue_id=queue_id,
        sender="s@outside.test",
        recipients=(AcceptedRecipient("alice@example.com", "alice@example.com"),),
        content=content,
        trace_header=b"Received: test\r\n",
        received_at=1_800_000_000.0,
        client_address="192.0.2.1",
        client_helo="c.test",
        message_id=f"<{queue_id}@x>",
        subject="s",
        sha256=hashlib.sha256(content).hexdigest(),
    )


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


async def test_prepared_and_unprepared_messages_commit_alike(store: SqliteStore) -> None:
    prepared = _message("0000000000DDDD01", b"written ahead\r\n")
    await store.messages.prepare(prepared)
    plain = _message("0000000000DDDD02", b"written at commit\r\n")
    await store.messages.commit([prepared, plain])
    assert await store.blobs.read(prepared.sha256) == b"written ahead\r\n"
    assert await store.blobs.read(plain.sha256) == b"written at commit\r\n"
    assert await store.messages.count() == 2
    assert list((store.blob_store.root / "tmp").iterdir()) == []


async def test_a_session_gone_while_staging_leaves_no_temporary_file(store: SqliteStore) -> None:
    message = _message("0000000000DDDD03", b"x" * 8_000_000)
    staging = asyncio.create_task(store.messages.prepare(message))
    await asyncio.sleep(0)
    staging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await staging
    await asyncio.to_thread(store.blob_store.close_sync)  # the writer threads are done
    assert list((store.blob_store.root / "tmp").iterdir()) == []
    assert not store.blob_store.path_for(message.sha256).exists()


async def test_two_batches_commit_at_once_and_drain_waits_for_both() -> None:
    running = 0
    most = 0
    committed: list[int] = []

    async def commit(batch: list[int]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        committed.extend(batch)
        running -= 1

    committer: GroupCommitter[int] = GroupCommitter(commit, max_batch=4, in_flight=2)  # type: ignore[arg-type]
    submissions = [asyncio.create_task(committer.submit(n)) for n in range(12)]
    await asyncio.sleep(0)
    await committer.drain()
    assert sorted(committed) == list(range(12))
    assert most == 2
    await asyncio.gather(*submissions)
