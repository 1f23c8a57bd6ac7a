"""The replay gate reads the bodies of the next messages together and keeps them for their deliveries."""

from __future__ import annotations

import hashlib

import pytest

from continuity.core.models import AcceptedRecipient, IncomingMessage
from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import Channel, FolderMap, plan_item
from continuity.core.replay_records import JournalItem, RunKind
from continuity.errors import NotFoundError
from continuity.services.replay_gate import READ_AHEAD, ReplayGate
from continuity.store.sqlite import SqliteStore

NOW = 1_800_000_000.0


def _message(number: int) -> IncomingMessage:
    content = f"Subject: message {number}\r\n\r\nbody {number}\r\n".encode()
    return IncomingMessage(
        queue_id=f"Q0000000000{number:05d}", sender="s@outside.test",
        recipients=(AcceptedRecipient("a@example.com", "a@example.com"),), content=content, trace_header=b"",
        received_at=NOW + number, client_address="192.0.2.1", client_helo="c.test",
        message_id=f"<{number}@x>", subject=f"message {number}", sha256=hashlib.sha256(content).hexdigest(),
    )  # fmt: skip


async def _claimed(store: SqliteStore, count: int) -> list[JournalItem]:
    await store.messages.commit([_message(number) for number in range(count)])
    run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
    candidates = await store.replay.candidates(count)
    planned = [(plan_item(c, FolderMap(), smtp_for_received=False), ItemState.PENDING, "") for c in candidates]
    await store.replay.add_items(run.id, planned, NOW)
    return await store.replay.claim(Channel.IMAP, None, count, NOW, run.id)


async def test_bodies_of_the_next_messages_are_read_together(store: SqliteStore) -> None:
    items = await _claimed(store, READ_AHEAD + 5)
    gate = ReplayGate(store, None)
    await gate.read_ahead(items)
    # Proof that they were read into memory: their files are gone, the gate still has them.
    for item in items:
        store.blob_store.path_for(item.sha256).unlink()
    for item in items[:READ_AHEAD]:
        assert (await gate.body(item)).endswith(f"body {int(item.queue_id[-5:])}\r\n".encode())
    with pytest.raises(NotFoundError):
        await gate.body(items[READ_AHEAD])  # beyond the read-ahead: read alone, and missing


async def test_a_missing_body_is_left_out_and_reported_when_it_is_needed(store: SqliteStore) -> None:
    items = await _claimed(store, 3)
    store.blob_store.path_for(items[1].sha256).unlink()
    gate = ReplayGate(store, None)
    await gate.read_ahead(items)
    assert await gate.body(items[0]) and await gate.body(items[2])
    with pytest.raises(NotFoundError, match="missing"):
        await gate.body(items[1])
