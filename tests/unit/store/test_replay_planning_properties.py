"""Properties of the replay's planner and settlement rule over random spools and batch sizes (real SQLite store).

Planning goes in windows of a random size while deliveries of a random size happen
between the windows (delivery catching up with planning, as in a large run). After every
step: no message is ``replayed`` unless each of its standby copies has a delivered item.
At the end: every copy of every queued message is delivered exactly once, nothing else
is planned, and the reconciliation accounts for every copy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuity.core.models import AcceptedRecipient, IncomingMessage, MessageState
from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import Candidate, Channel, FolderMap, PlannedItem, plan_item, received_shape
from continuity.core.replay_records import ItemUpdate, RunKind
from continuity.core.replay_settlement import reconcile, settled_state
from continuity.store.sqlite import SqliteStore, open_sqlite_store
from tests.support.replay import premature_settlements

NOW = 1_800_000_000.0
MAILBOXES = [f"user{n}@example.com" for n in range(8)]

spools = st.lists(
    st.tuples(st.sets(st.sampled_from(MAILBOXES), min_size=1, max_size=6), st.booleans()), min_size=1, max_size=25
)


def _message(number: int, mailboxes: set[str], queued: bool) -> IncomingMessage:
    content = f"Subject: m{number}\r\n\r\nbody {number}\r\n".encode()
    return IncomingMessage(
        queue_id=f"Q{number:015d}", sender="s@outside.test",
        recipients=tuple(AcceptedRecipient(m, m) for m in sorted(mailboxes)), content=content,
        trace_header=b"Received: test\r\n", received_at=NOW + number, client_address="192.0.2.1",
        client_helo="c.test", message_id=f"<m{number}@x>", subject=f"m{number}",
        sha256=hashlib.sha256(content).hexdigest(),
        state=MessageState.QUEUED if queued else MessageState.RELAYED,
    )  # fmt: skip


async def _deliver(store: SqliteStore, run_id: int, limit: int) -> int:
    items = await store.replay.claim(Channel.SMTP, None, limit, NOW, run_id)
    await store.replay.record([ItemUpdate(i.id, ItemState.DELIVERED, NOW, "250 ok") for i in items])
    return len(items)


async def _scenario(
    directory: Path, spool: list[tuple[set[str], bool]], batch: int, deliveries: list[int], split: int
) -> None:
    database = directory / "db.sqlite"
    store = await open_sqlite_store(database, directory / "blobs", recover=True)
    try:
        messages = [_message(n, mailboxes, queued) for n, (mailboxes, queued) in enumerate(spool)]
        # Part of the spool arrives before the run starts, the rest while it is planned.
        await store.messages.commit(messages[:split])
        run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
        cursor, step, late = 0, 0, messages[split:]
        while True:
            candidates, last = await store.replay.candidates_after(cursor, batch)
            if last == cursor:
                if late:
                    await store.messages.commit(late)
                    late = []
                    continue
                break
            items = [(plan_item(c, FolderMap(), smtp_for_received=True), ItemState.PENDING, "") for c in candidates]
            await store.replay.add_items(run.id, items, NOW, planned_through=last)
            cursor = last
            await _deliver(store, run.id, deliveries[step % len(deliveries)])
            step += 1
            assert premature_settlements(database) == []
        while await _deliver(store, run.id, 7):
            assert premature_settlements(database) == []
        expected = {(m.queue_id, r.mailbox) for m in messages if m.state is MessageState.QUEUED for r in m.recipients}
        delivered = [
            (i.queue_id, i.mailbox) for i in await store.replay.items(run.id, states=(ItemState.DELIVERED,), limit=9999)
        ]
        assert sorted(delivered) == sorted(expected)  # each copy once, nothing relayed
        assert sum(p.total for p in await store.replay.progress(run.id)) == len(expected)
        for message in messages:
            entry = await store.messages.get(message.queue_id)
            assert entry is not None
            want = MessageState.REPLAYED if message.state is MessageState.QUEUED else MessageState.RELAYED
            assert entry.state is want
        reconciled = await store.replay.reconciliation()
        assert reconciled.complete and reconciled.delivered == reconciled.copies == len(expected)
    finally:
        await store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spool=spools,
    batch=st.integers(min_value=1, max_value=9),
    deliveries=st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=5),
    split=st.integers(min_value=0, max_value=25),
)
def test_every_copy_is_delivered_once_and_nothing_settles_early(
    spool: list[tuple[set[str], bool]], batch: int, deliveries: list[int], split: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_scenario(Path(directory), spool, batch, deliveries, min(split, len(spool))))


item_states = st.lists(st.sampled_from(list(ItemState)), max_size=6)


@given(states=item_states, unplanned=st.integers(min_value=0, max_value=3))
def test_settlement_rule(states: list[ItemState], unplanned: int) -> None:
    all_delivered = bool(states) and all(s is ItemState.DELIVERED for s in states)
    queued = settled_state(MessageState.QUEUED, states, unplanned)
    assert (queued is MessageState.REPLAYED) == (all_delivered and unplanned == 0)
    replayed = settled_state(MessageState.REPLAYED, states, unplanned)
    still_work = unplanned > 0 or any(
        s in (ItemState.PENDING, ItemState.DELIVERING, ItemState.DEFERRED) for s in states
    )
    assert (replayed is MessageState.QUEUED) == still_work
    assert settled_state(MessageState.HELD, states, unplanned) is None


@given(
    counts=st.lists(
        st.tuples(
            st.sampled_from([MessageState.QUEUED, MessageState.REPLAYED, MessageState.HELD]),
            st.one_of(st.none(), st.sampled_from(list(ItemState))),
            st.integers(min_value=1, max_value=50),
        ),
        max_size=8,
    )
)
def test_reconciliation_counts_every_copy_once(counts: list[tuple[MessageState, ItemState | None, int]]) -> None:
    reconciled = reconcile(counts)
    total = sum(count for _, _, count in counts)
    assert reconciled.copies == total
    assert reconciled.delivered + reconciled.held + reconciled.failed + reconciled.unaccounted == total
    open_or_unplanned = sum(
        c
        for m, i, c in counts
        if m is not MessageState.HELD and i not in (ItemState.DELIVERED, ItemState.FAILED, ItemState.HELD)
    )
    assert reconciled.unaccounted == open_or_unplanned
    assert reconciled.complete == (
        open_or_unplanned == 0
        and not any(m is MessageState.REPLAYED and i is not ItemState.DELIVERED for m, i, _ in counts)
    )


def _journal(database: Path) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(database)
    try:
        return connection.execute(
            "SELECT queue_id, mailbox, row_id, kind, channel, folder, flags, state, detail FROM replay_items"
            " ORDER BY queue_id, mailbox"
        ).fetchall()
    finally:
        connection.close()


def _plan_smtp(candidate: Candidate) -> PlannedItem:
    return plan_item(candidate, FolderMap(), smtp_for_received=True)


async def _plan_both_ways(directory: Path, spool: list[tuple[bool, str, str]], batch: int) -> None:
    journals = []
    for bulk in (False, True):
        database = directory / f"{bulk}.sqlite"
        store = await open_sqlite_store(database, directory / f"{bulk}-blobs", recover=True)
        try:
            messages = []
            for number, (webmail, _, _) in enumerate(spool):
                message = _message(number, {MAILBOXES[number % len(MAILBOXES)]}, True)
                messages.append(dataclasses.replace(message, client_helo="webmail" if webmail else "c.test"))
            await store.messages.commit(messages)
            placed = [(folder, flags, f"Q{n:015d}") for n, (_, folder, flags) in enumerate(spool)]
            await store.database.write(
                lambda c, rows=placed: c.executemany(  # type: ignore[misc]
                    "UPDATE mailbox_messages SET folder = ?, flags = ? WHERE queue_id = ?", rows
                )
            )
            run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
            shape = received_shape(FolderMap(), smtp_for_received=True) if bulk else None
            cursor = 0
            while True:
                _, last = await store.replay.plan_window(run.id, cursor, batch, _plan_smtp, NOW, shape)
                if last == cursor:
                    break
                cursor = last
        finally:
            await store.close()
        journals.append(_journal(database))
    assert journals[0] == journals[1] and len(journals[0]) == len(spool)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spool=st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(["INBOX", "Sent", "Drafts", "Trash", "Projects/Q1"]),
            st.sampled_from(["", "\\Seen", "\\Seen \\Flagged", "bad(flag"]),
        ),
        min_size=1,
        max_size=20,
    ),
    batch=st.integers(min_value=1, max_value=8),
)
def test_bulk_planning_of_received_mail_equals_planning_each_row(
    spool: list[tuple[bool, str, str]], batch: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_plan_both_ways(Path(directory), spool, batch))
