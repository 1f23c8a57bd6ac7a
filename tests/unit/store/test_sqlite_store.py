"""The SQLite store on a real database file and a real blob directory."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import pytest

from continuity.core.models import AcceptedRecipient, IncomingMessage, Mailbox, MessageState, UpsertOutcome
from continuity.errors import ConfigError, InvalidInputError, NotFoundError, StorageError
from continuity.services.data_dir_lock import DataDirLock
from continuity.store.group_commit import GroupCommitter
from continuity.store.sqlite import SqliteStore, open_sqlite_store


def _message(queue_id: str, content: bytes, mailbox: str = "alice@example.com") -> IncomingMessage:
    return IncomingMessage(
        queue_id=queue_id,
        sender="s@outside.test",
        recipients=(AcceptedRecipient(mailbox, mailbox),),
        content=content,
        trace_header=b"Received: test\r\n",
        received_at=1_800_000_000.0,
        client_address="192.0.2.1",
        client_helo="c.test",
        message_id=f"<{queue_id}@x>",
        subject="s",
        sha256=hashlib.sha256(content).hexdigest(),
    )


async def test_upsert_outcomes_and_aliases(store: SqliteStore) -> None:
    alice = Mailbox("alice@example.com", "Alice", aliases=("a@example.com",), password_hash="$argon2id$x")
    assert await store.mailboxes.upsert(alice) is UpsertOutcome.CREATED
    assert (
        await store.mailboxes.upsert(Mailbox("alice@example.com", "Alice", aliases=("a@example.com",)))
        is UpsertOutcome.UNCHANGED
    )
    kept = await store.mailboxes.get("alice@example.com")
    assert kept is not None and kept.password_hash == "$argon2id$x", "an upsert without a password keeps it"
    assert (
        await store.mailboxes.upsert(Mailbox("alice@example.com", "Alice E.", aliases=("b@example.com",)))
        is UpsertOutcome.UPDATED
    )
    directory = await store.mailboxes.directory()
    assert set(directory) == {"alice@example.com", "b@example.com"}
    with pytest.raises(InvalidInputError, match=r"already belongs to alice@example\.com"):
        await store.mailboxes.upsert(Mailbox("bob@example.com", "Bob", aliases=("b@example.com",)))
    with pytest.raises(InvalidInputError, match=r"is already an alias of alice@example\.com"):
        await store.mailboxes.upsert(Mailbox("b@example.com", "B"))
    with pytest.raises(InvalidInputError, match="already a mailbox of its own"):
        await store.mailboxes.upsert(Mailbox("carol@example.com", "Carol", aliases=("alice@example.com",)))
    assert await store.mailboxes.get("bob@example.com") is None


async def test_directory_serial_moves_on_every_change(store: SqliteStore) -> None:
    first = await store.mailboxes.directory_serial()
    await store.mailboxes.upsert(Mailbox("alice@example.com", "Alice"))
    second = await store.mailboxes.directory_serial()
    await store.mailboxes.set_enabled("alice@example.com", False)
    third = await store.mailboxes.directory_serial()
    assert first < second < third
    assert (await store.mailboxes.directory())["alice@example.com"].enabled is False
    with pytest.raises(NotFoundError):
        await store.mailboxes.set_enabled("nobody@example.com", True)


async def test_commit_list_get_and_read(store: SqliteStore) -> None:
    batch = [_message(f"0000000000AAAA{n:02d}", f"body {n}\r\n".encode()) for n in range(3)]
    batch.append(_message("0000000000AAAA99", b"body 0\r\n"))  # same content: one blob
    await store.messages.commit(batch)
    entries = await store.messages.list()
    assert [e.queue_id for e in entries] == sorted((m.queue_id for m in batch), reverse=True)
    assert await store.messages.count() == 4
    entry = await store.messages.get("0000000000AAAA01")
    assert entry is not None and entry.state is MessageState.QUEUED and entry.recipients == ("alice@example.com",)
    assert await store.blobs.read(entry.sha256) == b"body 1\r\n"
    assert await store.messages.trace_header("0000000000AAAA01") == b"Received: test\r\n"
    assert await store.messages.get("nope") is None


async def test_failed_batch_leaves_nothing_visible(store: SqliteStore) -> None:
    await store.messages.commit([_message("0000000000BBBB01", b"first\r\n")])
    with pytest.raises(StorageError):
        await store.messages.commit(
            [_message("0000000000BBBB02", b"second\r\n"), _message("0000000000BBBB01", b"dup\r\n")]
        )
    assert [e.queue_id for e in await store.messages.list()] == ["0000000000BBBB01"]


async def test_corrupt_or_missing_blob_is_reported(store: SqliteStore) -> None:
    message = _message("0000000000CCCC01", b"precious\r\n")
    await store.messages.commit([message])
    path = store.blob_store.path_for(message.sha256)
    path.write_bytes(b"tampered\r\n")
    with pytest.raises(StorageError, match="corrupt"):
        await store.blobs.read(message.sha256)
    path.unlink()
    with pytest.raises(NotFoundError):
        await store.blobs.read(message.sha256)


async def test_bodies_read_together_leave_out_the_unreadable_ones(store: SqliteStore) -> None:
    good, tampered, gone = (_message(f"0000000000CCCD0{n}", f"body {n}\r\n".encode()) for n in range(3))
    await store.messages.commit([good, tampered, gone])
    store.blob_store.path_for(tampered.sha256).write_bytes(b"tampered\r\n")
    store.blob_store.path_for(gone.sha256).unlink()
    bodies = await store.blobs.read_many([good.sha256, tampered.sha256, gone.sha256])
    assert bodies == {good.sha256: b"body 0\r\n"}


async def test_recovery_removes_temporary_files_only_when_asked(tmp_path: Path) -> None:
    first = await open_sqlite_store(tmp_path / "db", tmp_path / "blobs", recover=True)
    await first.close()
    leftover = tmp_path / "blobs" / "tmp" / "partial.123.0"
    leftover.write_bytes(b"half a mess")
    reader = await open_sqlite_store(tmp_path / "db", tmp_path / "blobs")
    await reader.close()
    assert leftover.exists(), "a CLI must not touch the server's in-flight files"
    owner = await open_sqlite_store(tmp_path / "db", tmp_path / "blobs", recover=True)
    await owner.close()
    assert not leftover.exists()


async def test_database_uses_wal_and_full_sync(store: SqliteStore, tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "db.sqlite")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
    assert await store.database.read(lambda c: c.execute("PRAGMA query_only").fetchone()[0]) == 1


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    store = await open_sqlite_store(tmp_path / "db", tmp_path / "blobs")
    await store.database.write(lambda c: c.execute("INSERT INTO schema_migrations VALUES ('core', 99, 0)"))
    await store.close()
    with pytest.raises(StorageError, match="newer than this software"):
        await open_sqlite_store(tmp_path / "db", tmp_path / "blobs")


async def test_group_commit_batches_concurrent_submissions() -> None:
    batches: list[list[int]] = []

    async def slow_commit(batch: list[int]) -> None:
        batches.append(list(batch))
        await asyncio.sleep(0.05)

    committer: GroupCommitter[int] = GroupCommitter(slow_commit, max_batch=8)  # type: ignore[arg-type]
    await asyncio.gather(*(committer.submit(n) for n in range(20)))
    assert sorted(n for batch in batches for n in batch) == list(range(20))
    assert max(len(batch) for batch in batches) == 8
    assert committer.commits == len(batches) < 20


async def test_group_commit_failure_reaches_every_waiter() -> None:
    async def failing(batch: list[int]) -> None:
        raise StorageError("disk on fire")

    committer: GroupCommitter[int] = GroupCommitter(failing, max_batch=8)  # type: ignore[arg-type]
    results = await asyncio.gather(*(committer.submit(n) for n in range(5)), return_exceptions=True)
    assert all(isinstance(result, StorageError) for result in results)


async def test_a_submission_made_as_the_committer_finds_its_queue_empty_is_committed() -> None:
    # The replay submits from tasks it creates: one created during a commit takes its first
    # step after the committing worker has found the queue empty but before the worker's
    # task is finished. It must start a new worker rather than wait for the finished one.
    committed: list[int] = []
    late: list[asyncio.Task[None]] = []

    async def commit(batch: list[int]) -> None:
        committed.extend(batch)
        if not late:
            late.append(asyncio.ensure_future(committer.submit(2)))

    committer: GroupCommitter[int] = GroupCommitter(commit, max_batch=8)  # type: ignore[arg-type]
    await committer.submit(1)
    await asyncio.wait_for(late[0], 5)
    assert committed == [1, 2]


def test_data_dir_lock_is_exclusive(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    with pytest.raises(ConfigError, match="Another continuity server"):
        DataDirLock(tmp_path).acquire()
    first.release()
    second = DataDirLock(tmp_path)
    second.acquire()
    second.release()


async def test_prepared_and_unprepared_messages_commit_alike(store: SqliteStore) -> None:
    prepared = _message("0000000000DDDD01", b"written ahead\r\n")
    await store.messages.prepare(prepared)  # small: staged on the event loop
    large_body = b"x" * 400_000 + b"\r\n"
    large = _message("0000000000DDDD04", large_body)
    await store.messages.prepare(large)  # large: staged in a writer thread
    plain = _message("0000000000DDDD02", b"written at commit\r\n")
    await store.messages.commit([prepared, large, plain])
    assert await store.blobs.read(prepared.sha256) == b"written ahead\r\n"
    assert await store.blobs.read(large.sha256) == large_body
    assert await store.blobs.read(plain.sha256) == b"written at commit\r\n"
    assert await store.messages.count() == 3
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
