"""The replay journal in SQLite: what is planned, claims on disk, outcomes, holds, recovery, retention."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from continuity.core.models import AcceptedRecipient, IncomingMessage, MessageState
from continuity.core.replay_journal import ItemState, JournalError
from continuity.core.replay_plan import Channel, FolderMap, plan_item
from continuity.core.replay_records import ItemUpdate, RunKind, RunStatus
from continuity.store.sqlite import SqliteStore, open_sqlite_store

NOW = 1_800_000_000.0


def _message(queue_id: str, *mailboxes: str, state: MessageState = MessageState.QUEUED) -> IncomingMessage:
    content = f"Subject: {queue_id}\r\n\r\nbody\r\n".encode()
    return IncomingMessage(
        queue_id=queue_id, sender="s@outside.test",
        recipients=tuple(AcceptedRecipient(mailbox, mailbox) for mailbox in mailboxes), content=content,
        trace_header=b"Received: test\r\n", received_at=NOW, client_address="192.0.2.1", client_helo="c.test",
        message_id=f"<{queue_id}@x>", subject=queue_id, sha256=hashlib.sha256(content).hexdigest(), state=state,
    )  # fmt: skip


async def _plan(store: SqliteStore, run_id: int) -> int:
    candidates = await store.replay.candidates(100)
    items = [(plan_item(c, FolderMap(), smtp_for_received=False), ItemState.PENDING, "") for c in candidates]
    return await store.replay.add_items(run_id, items, NOW)


async def test_only_queued_mail_is_planned_once_per_mailbox(store: SqliteStore) -> None:
    await store.messages.commit(
        [
            _message("Q0000000000000A1", "alice@example.com", "bob@example.com"),
            _message("Q0000000000000A2", "alice@example.com", state=MessageState.RELAYED),
            _message("Q0000000000000A3", "alice@example.com", state=MessageState.HELD),
            _message("Q0000000000000A4", "bob@example.com", state=MessageState.RELAY),
        ]
    )
    run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
    assert await _plan(store, run.id) == 2
    assert await _plan(store, run.id) == 0
    assert {(p.mailbox, p.total) for p in await store.replay.progress(run.id)} == {
        ("alice@example.com", 1),
        ("bob@example.com", 1),
    }


async def test_claims_are_durable_and_outcomes_settle_the_message(store: SqliteStore, tmp_path: Path) -> None:
    await store.messages.commit([_message("Q0000000000000B1", "alice@example.com", "bob@example.com")])
    run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
    await _plan(store, run.id)
    assert [m for m, _ in await store.replay.due_mailboxes(Channel.IMAP, NOW, run.id)] == [
        "alice@example.com",
        "bob@example.com",
    ]
    [alice] = await store.replay.claim(Channel.IMAP, "alice@example.com", 10, NOW, run.id)
    assert alice.attempts == 0 and alice.state is ItemState.PENDING  # as it was before the claim
    # On disk before anything is sent: another connection sees it.
    reopened = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs")
    try:
        [seen] = await reopened.replay.items(run.id, states=(ItemState.DELIVERING,))
        assert seen.id == alice.id and seen.attempts == 1
    finally:
        await reopened.close()
    await store.replay.record([ItemUpdate(alice.id, ItemState.DELIVERED, NOW, "appended", 0, 0, "INBOX", "")])
    assert (await store.messages.get("Q0000000000000B1")).state is MessageState.QUEUED  # type: ignore[union-attr]
    with pytest.raises(JournalError):
        await store.replay.record([ItemUpdate(alice.id, ItemState.DELIVERED, NOW)])
    [bob] = await store.replay.claim(Channel.IMAP, "bob@example.com", 10, NOW, run.id)
    await store.replay.record([ItemUpdate(bob.id, ItemState.DELIVERED, NOW, "appended", 0, 0, "INBOX", "")])
    assert (await store.messages.get("Q0000000000000B1")).state is MessageState.REPLAYED  # type: ignore[union-attr]
    assert await store.messages.count() == 0
    assert await store.replay.placement_mailboxes(run.id) == ["alice@example.com", "bob@example.com"]
    for mailbox in ("alice@example.com", "bob@example.com"):
        [placement] = await store.replay.placements(run.id, mailbox)
        assert placement.marker == f"Q0000000000000B1; sha256={alice.sha256}"


async def test_interrupted_claims_are_retried_with_their_attempt_counted(store: SqliteStore) -> None:
    await store.messages.commit([_message("Q0000000000000C1", "alice@example.com")])
    run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
    await _plan(store, run.id)
    await store.replay.claim(Channel.IMAP, None, 10, NOW, run.id)
    assert await store.replay.interrupted(NOW + 5) == 1
    [again] = await store.replay.claim(Channel.IMAP, None, 10, NOW + 5, run.id)
    assert again.state is ItemState.DEFERRED and again.attempts == 1 and "interrupted" in again.detail


async def test_claims_take_due_items_in_journal_order_up_to_the_limit(store: SqliteStore) -> None:
    queue_ids = [f"Q00000000000F{n:03d}" for n in range(8)]
    await store.messages.commit([_message(queue_id, "alice@example.com", "bob@example.com") for queue_id in queue_ids])
    run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
    await _plan(store, run.id)
    first = await store.replay.claim(Channel.IMAP, None, 6, NOW, run.id)
    assert [item.id for item in first] == sorted(item.id for item in first)
    # Deferred: the first two due again at NOW + 10, the third only at NOW + 100.
    await store.replay.record(
        [ItemUpdate(item.id, ItemState.DEFERRED, NOW, "busy", 451, NOW + (10 if n < 2 else 100))
         for n, item in enumerate(first[:3])]
        + [ItemUpdate(item.id, ItemState.DELIVERED, NOW, "ok", 0, 0, "INBOX", "") for item in first[3:]]
    )  # fmt: skip
    later = await store.replay.claim(Channel.IMAP, None, 4, NOW + 10, run.id)
    # The due deferred items come before pending ones planned after them; the one not due stays.
    assert [item.id for item in later] == [first[0].id, first[1].id, first[5].id + 1, first[5].id + 2]
    assert [item.state for item in later[:2]] == [ItemState.DEFERRED, ItemState.DEFERRED]
    bobs = await store.replay.claim(Channel.IMAP, "bob@example.com", 100, NOW + 10, run.id)
    assert bobs and {item.mailbox for item in bobs} == {"bob@example.com"}
    assert [item.id for item in bobs] == sorted(item.id for item in bobs)
    assert await store.replay.claim(Channel.SMTP, None, 100, NOW + 10, run.id) == []
    rest = await store.replay.claim(Channel.IMAP, None, 100, NOW + 100, run.id)
    assert first[2].id in [item.id for item in rest]
    assert await store.replay.claim(Channel.IMAP, None, 100, NOW + 1000, run.id) == []


async def test_hold_release_retry_and_adoption(store: SqliteStore) -> None:
    await store.messages.commit(
        [_message("Q0000000000000D1", "alice@example.com"), _message("Q0000000000000D2", "bob@example.com")]
    )
    run = await store.replay.create_run(RunKind.RESTORATION, True, NOW)
    assert run.status is RunStatus.AWAITING_CONFIRMATION and run.needs_confirmation
    await _plan(store, run.id)
    assert await store.replay.hold("Q0000000000000D1", "malicious", NOW) == 1
    assert [e.queue_id for e in await store.quarantine.list()] == ["Q0000000000000D1"]
    await store.quarantine.release("Q0000000000000D1")
    assert await store.replay.reopen_released(run.id, NOW) == 1
    [released] = await store.replay.items(run.id, states=(ItemState.PENDING,), limit=1)
    assert released.released
    [bob] = await store.replay.claim(Channel.IMAP, "bob@example.com", 10, NOW, run.id)
    await store.replay.record([ItemUpdate(bob.id, ItemState.FAILED, NOW, "554 no such user", 554)])
    confirmed = await store.replay.confirm_run(run.id, "cli:root", NOW)
    assert confirmed.status is RunStatus.ACTIVE and not confirmed.needs_confirmation
    later = await store.replay.create_run(RunKind.STRAGGLERS, False, NOW + 10)
    assert await store.replay.adopt_open(later.id) == 1  # alice's released item
    assert await store.replay.retry_failed(later.id, NOW + 10) == 1
    assert {i.mailbox for i in await store.replay.items(later.id, states=(ItemState.PENDING,))} == {
        "alice@example.com",
        "bob@example.com",
    }


async def test_replayed_messages_are_pruned_after_the_retention(store: SqliteStore) -> None:
    shared = _message("Q0000000000000E1", "alice@example.com")
    twin = dataclasses.replace(shared, queue_id="Q0000000000000E2", message_id="<E2@x>")  # same body
    await store.messages.commit([shared, twin, _message("Q0000000000000E3", "alice@example.com")])
    run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
    await _plan(store, run.id)
    for item in await store.replay.claim(Channel.IMAP, None, 10, NOW, run.id):
        if item.queue_id != "Q0000000000000E3":
            await store.replay.record([ItemUpdate(item.id, ItemState.DELIVERED, NOW, "ok", 0, 0, "INBOX", "")])
    assert await store.replay.prune_replayed(NOW - 1) == 0  # delivered after the cut-off: kept
    assert await store.replay.prune_replayed(NOW + 1, limit=1) == 1
    body = store.blob_store.path_for(shared.sha256)
    assert body.exists()  # the other message still uses it
    assert await store.replay.prune_replayed(NOW + 1) == 1
    assert not body.exists()
    assert await store.messages.get("Q0000000000000E3") is not None


async def test_one_batch_of_outcomes_is_checked_in_order_and_settles_its_messages(store: SqliteStore) -> None:
    await store.messages.commit(
        [
            _message("Q0000000000000G1", "alice@example.com", "bob@example.com"),
            _message("Q0000000000000G2", "carol@example.com"),
        ]
    )
    run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
    await _plan(store, run.id)
    alice, bob, carol = await store.replay.claim(Channel.IMAP, None, 10, NOW, run.id)
    # The same item twice in one batch is checked against its state after the first update.
    await store.replay.record(
        [
            ItemUpdate(alice.id, ItemState.DELIVERED, NOW, "appended", 0, 0, "INBOX", ""),
            ItemUpdate(carol.id, ItemState.DEFERRED, NOW, "busy", 451, NOW + 10),
            ItemUpdate(bob.id, ItemState.DELIVERED, NOW, "appended", 0, 0, "INBOX", ""),
            ItemUpdate(carol.id, ItemState.FAILED, NOW, "gave up", 550, 0),
        ]
    )
    states = {item.id: item.state for item in await store.replay.items(run.id)}
    assert states == {alice.id: ItemState.DELIVERED, bob.id: ItemState.DELIVERED, carol.id: ItemState.FAILED}
    assert (await store.messages.get("Q0000000000000G1")).state is MessageState.REPLAYED  # type: ignore[union-attr]
    assert (await store.messages.get("Q0000000000000G2")).state is MessageState.QUEUED  # type: ignore[union-attr]
    # An illegal transition anywhere in a batch records nothing of it.
    with pytest.raises(JournalError):
        await store.replay.record(
            [
                ItemUpdate(carol.id, ItemState.PENDING, NOW, "", 0, 0),  # failed -> pending is allowed (retry)
                ItemUpdate(alice.id, ItemState.DEFERRED, NOW, "", 451, NOW),  # delivered -> deferred is not
            ]
        )
    assert {item.id: item.state for item in await store.replay.items(run.id)} == states
    # Reopening a delivered item puts its replayed message back in the queue.
    await store.replay.reopen([alice.id], run.id, "not found on the primary", NOW)
    assert (await store.messages.get("Q0000000000000G1")).state is MessageState.QUEUED  # type: ignore[union-attr]
