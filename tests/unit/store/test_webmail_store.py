"""The webmail's store on a real SQLite file: folder counts kept by triggers, moves, flags, Trash, drafts, index."""

from __future__ import annotations

import hashlib
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.core.mail_folders import Flag, StandardFolder
from continuity.core.mailbox_rows import build_mailbox
from continuity.core.models import AcceptedRecipient, IncomingMessage
from continuity.core.queue_ids import new_queue_id
from continuity.core.search_query import fts_query
from continuity.services.content_reader import LocalContentReader
from continuity.services.webmail_index import WebmailIndexer
from continuity.store.sqlite import SqliteStore, open_sqlite_store
from continuity.store.sqlite_webmail import LocalMessage

ALICE = "alice@example.com"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs")
    for address in (ALICE, "bob@example.com"):
        await opened.mailboxes.upsert(build_mailbox(address, address, domains=["example.com"]))
    yield opened
    await opened.close()


def _incoming(subject: str, mailbox: str = ALICE) -> IncomingMessage:
    content = f"From: x@remote.test\r\nTo: {mailbox}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n".encode()
    return IncomingMessage(
        queue_id=new_queue_id(),
        sender="x@remote.test",
        recipients=(AcceptedRecipient(mailbox, mailbox),),
        content=content,
        trace_header=b"",
        received_at=time.time(),
        client_address="127.0.0.1",
        client_helo="test",
        message_id="",
        subject=subject,
        sha256=hashlib.sha256(content).hexdigest(),
    )


async def _recount(
    store: SqliteStore,
) -> tuple[dict[tuple[str, str], tuple[int, int]], dict[tuple[str, str], tuple[int, int]]]:
    def work(
        connection: sqlite3.Connection,
    ) -> tuple[dict[tuple[str, str], tuple[int, int]], dict[tuple[str, str], tuple[int, int]]]:
        kept = {
            (str(m), str(f)): (int(t), int(u))
            for m, f, t, u in connection.execute("SELECT mailbox, folder, total, unread FROM webmail_folder_counts")
            if t or u
        }
        counted = {
            (str(m), str(f)): (int(t), int(u))
            for m, f, t, u in connection.execute(
                "SELECT mailbox, folder, COUNT(*), SUM(instr(flags, '\\Seen') = 0) FROM mailbox_messages"
                " WHERE expunged = 0 GROUP BY mailbox, folder"
            )
        }
        return kept, counted

    return await store.database.read(work)


async def test_folder_counts_follow_every_change(store: SqliteStore) -> None:
    await store.messages.commit([_incoming(f"m{n}") for n in range(30)])
    await store.messages.commit([_incoming("for bob", "bob@example.com")])
    await store.webmail.create_folder(ALICE, "Projects")
    rng = random.Random(5)
    rows, _ = await store.webmail.page(ALICE, "INBOX", 0, 100)
    ids = [row.id for row in rows]
    for _ in range(200):
        chosen = rng.sample(ids, rng.randint(1, 4))
        action = rng.choice(["seen", "unseen", "flag", "move", "trash", "empty", "draft"])
        if action in ("seen", "unseen"):
            await store.webmail.set_flag(ALICE, chosen, Flag.SEEN, action == "seen")
        elif action == "flag":
            await store.webmail.set_flag(ALICE, chosen, Flag.FLAGGED, True)
        elif action == "move":
            await store.webmail.move(ALICE, chosen, rng.choice(["INBOX", "Projects", "Junk"]))
        elif action == "trash":
            await store.webmail.move(ALICE, chosen, StandardFolder.TRASH.value)
        elif action == "empty":
            await store.webmail.empty_trash(ALICE)
        else:
            draft = await store.webmail.add_local(LocalMessage(ALICE, "Drafts", "\\Seen \\Draft", ALICE, "d", "", b"x"))
            await store.webmail.add_local(
                LocalMessage(ALICE, "Drafts", "\\Draft", ALICE, "d2", "", b"y"), replaces=draft
            )
    kept, counted = await _recount(store)
    assert kept == counted
    folders = {f.name: (f.total, f.unread) for f in await store.webmail.folders(ALICE)}
    assert folders == {name: counted.get((ALICE, name), (0, 0)) for name in folders}
    await store.webmail.delete_folder(ALICE, "Projects")
    kept, counted = await _recount(store)
    assert kept == counted


async def test_expunged_messages_stay_for_the_replay(store: SqliteStore) -> None:
    await store.messages.commit([_incoming("old news")])
    [row], _ = await store.webmail.page(ALICE, "INBOX", 0, 10)
    await store.webmail.move(ALICE, [row.id], StandardFolder.TRASH.value)
    assert await store.webmail.empty_trash(ALICE) == 1
    assert (await store.webmail.page(ALICE, "Trash", 0, 10))[1] == 0
    stored = await store.webmail.get(ALICE, row.id)
    assert stored is not None and stored.expunged and stored.folder == "Trash"


async def test_index_and_search_stay_within_the_mailbox(store: SqliteStore) -> None:
    await store.messages.commit([_incoming("Invoice 12", ALICE), _incoming("Invoice 13", "bob@example.com")])
    indexer = WebmailIndexer(store.webmail, LocalContentReader(store.blobs))
    assert await store.webmail.index_backlog()
    await indexer.catch_up()
    assert not await store.webmail.index_backlog()
    expression = fts_query("invoice", ALICE)
    assert expression is not None
    found = await store.webmail.search(ALICE, expression, 0, 10)
    assert [row.subject for row in found] == ["Invoice 12"]
    assert found[0].preview == "body of Invoice 12"
