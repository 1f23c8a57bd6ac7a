"""The dispatcher's list of mailboxes with due IMAP items: read once, kept, read again when empty or stale."""

from __future__ import annotations

import hashlib

from continuity.core.models import AcceptedRecipient, IncomingMessage, MessageState
from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import Channel, FolderMap, plan_item
from continuity.core.replay_records import RunKind
from continuity.services.replay_dispatch import DueMailboxes
from continuity.store.sqlite import SqliteStore

NOW = 1_800_000_000.0


def _message(queue_id: str, mailbox: str) -> IncomingMessage:
    content = f"Subject: {queue_id}\r\n\r\nbody\r\n".encode()
    return IncomingMessage(
        queue_id=queue_id, sender="s@outside.test", recipients=(AcceptedRecipient(mailbox, mailbox),),
        content=content, trace_header=b"", received_at=NOW, client_address="192.0.2.1", client_helo="c.test",
        message_id=f"<{queue_id}@x>", subject=queue_id, sha256=hashlib.sha256(content).hexdigest(),
        state=MessageState.QUEUED,
    )  # fmt: skip


async def _queue_and_plan(store: SqliteStore, run_id: int, *messages: IncomingMessage) -> None:
    await store.messages.commit(list(messages))
    candidates = await store.replay.candidates(100)
    items = [(plan_item(c, FolderMap(), smtp_for_received=False), ItemState.PENDING, "") for c in candidates]
    await store.replay.add_items(run_id, items, NOW)


async def test_the_list_is_kept_until_empty_or_stale(store: SqliteStore) -> None:
    run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
    await _queue_and_plan(
        store, run.id, _message("Q0000000000000D1", "alice@x.test"), _message("Q0000000000000D2", "bob@x.test")
    )
    clock = [NOW]
    due = DueMailboxes(store, run.id, lambda: clock[0])
    assert await due.current() == ["alice@x.test", "bob@x.test"]

    # Mail for a third mailbox planned now is not seen while the list is fresh and not empty.
    await _queue_and_plan(store, run.id, _message("Q0000000000000D3", "carol@x.test"))
    due.exhausted("alice@x.test")
    clock[0] += 1
    assert await due.current() == ["bob@x.test"]

    # Stale: read again from the journal, where every mailbox still has its item due.
    clock[0] += 5
    assert await due.current() == ["alice@x.test", "bob@x.test", "carol@x.test"]

    # Emptied: read again at once; claimed items are no longer due.
    for mailbox in ("alice@x.test", "bob@x.test"):
        assert len(await store.replay.claim(Channel.IMAP, mailbox, 10, clock[0], run.id)) == 1
    for mailbox in ("alice@x.test", "bob@x.test", "carol@x.test"):
        due.exhausted(mailbox)
    assert await due.current() == ["carol@x.test"]
    due.exhausted("unknown@x.test")  # not listed: nothing happens
    assert await due.current() == ["carol@x.test"]
