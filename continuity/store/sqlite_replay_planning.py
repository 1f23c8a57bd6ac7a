"""The replay journal in SQLite: planning by a cursor, settling messages, reconciling a run's end.

Planning walks the standby copies (``mailbox_messages``) in id order from the run's
cursor (``replay_runs.planned_through``), a window of ``limit`` rows at a time: each batch
costs the same however large the spool, so a run of N copies is planned in O(N). New
copies always get larger ids, so they are found by the same walk. A copy whose message
only becomes replayable behind the cursor (released from quarantine) is found by the
reconciliation at the end of the run, which sends the cursor back to the start.

Settling follows continuity.core.replay_settlement: a message is ``replayed`` only when
each of its standby copies has a delivered item.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence

from continuity.core.models import MessageState
from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import WEBMAIL_HELO, Candidate, ItemKind, PlannedItem, ReceivedShape
from continuity.core.replay_settlement import Reconciliation, reconcile, settled_state
from continuity.store.sqlite_replay_runs import SqliteReplayRuns
from continuity.store.sqlite_replay_schema import encode_folder

_CANDIDATE_COLUMNS = (
    "mm.id, mm.mailbox, mm.queue_id, mm.folder, mm.flags, mm.expunged, m.client_helo, m.client_address, m.sender,"
    " m.message_id, m.subject, m.sha256, m.size, m.received_at,"
    " (SELECT GROUP_CONCAT(address, char(10)) FROM (SELECT address FROM message_recipients r"
    "   WHERE r.queue_id = mm.queue_id AND r.mailbox = mm.mailbox ORDER BY position))"
)
_UNPLANNED = (
    "m.state = ? AND NOT EXISTS (SELECT 1 FROM replay_items ri WHERE ri.queue_id = mm.queue_id"
    " AND ri.mailbox = mm.mailbox)"
)


def _candidate(r: Sequence[object]) -> Candidate:
    return Candidate(
        int(r[0]),  # type: ignore[call-overload]
        str(r[1]),
        str(r[2]),
        str(r[3]),
        str(r[4]),
        bool(r[5]),
        str(r[6]),
        str(r[7]),
        str(r[8]),
        str(r[9]),
        str(r[10]),
        str(r[11]),
        int(r[12]),  # type: ignore[call-overload]
        float(r[13]),  # type: ignore[arg-type]
        tuple(str(r[14]).split("\n")) if r[14] else (),
    )


def settle_messages(connection: sqlite3.Connection, queue_ids: Iterable[str]) -> None:
    """Move each message to the state its items and unplanned copies call for (see replay_settlement)."""
    for queue_id in queue_ids:
        row = connection.execute("SELECT state FROM messages WHERE queue_id = ?", (queue_id,)).fetchone()
        if row is None:
            continue
        current = MessageState(str(row[0]))
        if current not in (MessageState.QUEUED, MessageState.REPLAYED):
            continue
        states = [
            ItemState(str(r[0]))
            for r in connection.execute("SELECT state FROM replay_items WHERE queue_id = ?", (queue_id,))
        ]
        unplanned = int(
            connection.execute(
                "SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.queue_id = ? AND NOT EXISTS"
                " (SELECT 1 FROM replay_items ri WHERE ri.queue_id = mm.queue_id AND ri.mailbox = mm.mailbox)",
                (queue_id,),
            ).fetchone()[0]
        )
        new = settled_state(current, states, unplanned)
        if new is not None:
            connection.execute(
                "UPDATE messages SET state = ? WHERE queue_id = ? AND state = ?", (new.value, queue_id, current.value)
            )


def _window_end(connection: sqlite3.Connection, after_row_id: int, limit: int) -> int:
    """The id of the limit-th standby row after after_row_id (the last one when fewer are left)."""
    row = connection.execute(
        "SELECT MAX(id) FROM (SELECT id FROM mailbox_messages WHERE id > ? ORDER BY id LIMIT ?)", (after_row_id, limit)
    ).fetchone()
    return after_row_id if row[0] is None else int(row[0])


def _candidates_between(
    connection: sqlite3.Connection, after_row_id: int, last: int, *, webmail_only: bool = False
) -> list[Candidate]:
    # CROSS JOIN makes SQLite walk the window of copies by id and look each message up: joined
    # the other way it would start from every queued message, a scan of the spool per batch.
    only = " AND m.client_helo = ?" if webmail_only else ""
    rows = connection.execute(
        f"SELECT {_CANDIDATE_COLUMNS} FROM mailbox_messages mm CROSS JOIN messages m"
        f" ON m.queue_id = mm.queue_id WHERE mm.id > ? AND mm.id <= ? AND {_UNPLANNED}{only} ORDER BY mm.id",
        (after_row_id, last, MessageState.QUEUED.value, *((WEBMAIL_HELO,) if webmail_only else ())),
    )
    return [_candidate(r) for r in rows]


def _window(connection: sqlite3.Connection, after_row_id: int, limit: int) -> tuple[list[Candidate], int]:
    """The candidates among the next limit standby rows after after_row_id, and the last row id looked at."""
    last = _window_end(connection, after_row_id, limit)
    return (_candidates_between(connection, after_row_id, last) if last != after_row_id else []), last


def _insert_received(
    connection: sqlite3.Connection, run_id: int, after_row_id: int, last: int, shape: ReceivedShape, at: float
) -> int:
    """Plan the window's received messages in one statement: their items all have the same shape.

    One statement instead of a row at a time through Python: each step of a query hands the
    interpreter lock back and forth, which beside a busy event loop made planning crawl.
    """
    before = connection.total_changes
    connection.execute(
        "INSERT OR IGNORE INTO replay_items (run_id, queue_id, mailbox, row_id, kind, channel, folder, flags,"
        " state, detail, planned_at)"
        " SELECT ?, mm.queue_id, mm.mailbox, mm.id, ?, ?, ?, ?, ?, '', ? FROM mailbox_messages mm"
        f" CROSS JOIN messages m ON m.queue_id = mm.queue_id WHERE mm.id > ? AND mm.id <= ? AND {_UNPLANNED}"
        " AND m.client_helo != ? ORDER BY mm.id",
        (
            run_id, ItemKind.RECEIVED.value, shape.channel.value, encode_folder(shape.folder), " ".join(shape.flags),
            ItemState.PENDING.value, at, after_row_id, last, MessageState.QUEUED.value, WEBMAIL_HELO,
        ),
    )  # fmt: skip
    return connection.total_changes - before


_ItemRow = tuple[int, str, str, int, str, str, str, str, str, str, float]


def _item_row(run_id: int, item: PlannedItem, state: ItemState, detail: str, at: float) -> _ItemRow:
    return (
        run_id,
        item.queue_id,
        item.mailbox,
        item.row_id,
        item.kind.value,
        item.channel.value,
        encode_folder(item.folder),
        " ".join(item.flags),
        state.value,
        (detail or item.note)[:500],
        at,
    )


def _insert(connection: sqlite3.Connection, run_id: int, rows: Sequence[_ItemRow], planned_through: int | None) -> int:
    """Insert journal items (existing (message, mailbox) pairs are kept) and move the cursor; returns how many."""
    before = connection.total_changes
    connection.executemany(
        "INSERT OR IGNORE INTO replay_items (run_id, queue_id, mailbox, row_id, kind, channel, folder, flags,"
        " state, detail, planned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    added = connection.total_changes - before
    if planned_through is not None:
        connection.execute(
            "UPDATE replay_runs SET planned_through = MAX(planned_through, ?) WHERE id = ?", (planned_through, run_id)
        )
    return added


class SqliteReplayPlanning(SqliteReplayRuns):
    """Planning, settling and reconciling (continuity.store.sqlite_replay adds claims and outcomes)."""

    async def candidates(self, limit: int) -> list[Candidate]:
        def work(connection: sqlite3.Connection) -> list[Candidate]:
            rows = connection.execute(
                f"SELECT {_CANDIDATE_COLUMNS} FROM mailbox_messages mm JOIN messages m ON m.queue_id = mm.queue_id"
                f" WHERE {_UNPLANNED} ORDER BY mm.id LIMIT ?",
                (MessageState.QUEUED.value, limit),
            )
            return [_candidate(r) for r in rows]

        return await self._db.read_bulk(work)

    async def candidates_after(self, after_row_id: int, limit: int) -> tuple[list[Candidate], int]:
        return await self._db.read(lambda connection: _window(connection, after_row_id, limit))

    async def has_unplanned(self) -> bool:
        def work(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT 1 FROM messages m JOIN mailbox_messages mm ON mm.queue_id = m.queue_id"
                f" WHERE {_UNPLANNED} LIMIT 1",
                (MessageState.QUEUED.value,),
            ).fetchone()
            return row is not None

        return await self._db.read_bulk(work)

    async def unplanned_count(self) -> int:
        def work(connection: sqlite3.Connection) -> int:
            return int(
                connection.execute(
                    "SELECT COUNT(*) FROM messages m JOIN mailbox_messages mm ON mm.queue_id = m.queue_id"
                    f" WHERE {_UNPLANNED}",
                    (MessageState.QUEUED.value,),
                ).fetchone()[0]
            )

        return await self._db.read_bulk(work)

    async def rows_after(self, row_id: int) -> int:
        def work(connection: sqlite3.Connection) -> int:
            row = connection.execute("SELECT COUNT(*) FROM mailbox_messages WHERE id > ?", (row_id,)).fetchone()
            return int(row[0])

        return await self._db.read_bulk(work)

    async def add_items(
        self,
        run_id: int,
        items: Sequence[tuple[PlannedItem, ItemState, str]],
        at: float,
        planned_through: int | None = None,
    ) -> int:
        rows = [_item_row(run_id, item, state, detail, at) for item, state, detail in items]
        if not rows and planned_through is None:
            return 0
        return await self._db.write(lambda connection: _insert(connection, run_id, rows, planned_through))

    async def plan_window(
        self,
        run_id: int,
        after_row_id: int,
        limit: int,
        plan: Callable[[Candidate], PlannedItem],
        at: float,
        received: ReceivedShape | None = None,
    ) -> tuple[int, int]:
        def work(connection: sqlite3.Connection) -> tuple[int, int]:
            last = _window_end(connection, after_row_id, limit)
            if last == after_row_id:
                return 0, last
            added = 0
            if received is not None:
                added += _insert_received(connection, run_id, after_row_id, last, received, at)
            candidates = _candidates_between(connection, after_row_id, last, webmail_only=received is not None)
            rows = [_item_row(run_id, plan(candidate), ItemState.PENDING, "", at) for candidate in candidates]
            return added + _insert(connection, run_id, rows, last), last

        return await self._db.write(work)

    async def reconciliation(self) -> Reconciliation:
        def work(connection: sqlite3.Connection) -> list[tuple[MessageState, ItemState | None, int]]:
            rows = connection.execute(
                "SELECT m.state, ri.state, COUNT(*) FROM mailbox_messages mm"
                " JOIN messages m ON m.queue_id = mm.queue_id"
                " LEFT JOIN replay_items ri ON ri.queue_id = mm.queue_id AND ri.mailbox = mm.mailbox"
                " WHERE m.state IN (?, ?, ?) GROUP BY m.state, ri.state",
                (MessageState.QUEUED.value, MessageState.REPLAYED.value, MessageState.HELD.value),
            )
            return [
                (MessageState(str(state)), ItemState(str(item)) if item is not None else None, int(count))
                for state, item, count in rows
            ]

        return reconcile(await self._db.read_bulk(work))

    async def requeue_unsettled(self) -> int:
        def work(connection: sqlite3.Connection) -> int:
            queue_ids = [
                str(row[0])
                for row in connection.execute(
                    "SELECT DISTINCT mm.queue_id FROM mailbox_messages mm JOIN messages m ON m.queue_id = mm.queue_id"
                    " WHERE m.state = ? AND NOT EXISTS (SELECT 1 FROM replay_items ri WHERE ri.queue_id = mm.queue_id"
                    " AND ri.mailbox = mm.mailbox AND ri.state = ?)",
                    (MessageState.REPLAYED.value, ItemState.DELIVERED.value),
                )
            ]
            before = connection.total_changes
            settle_messages(connection, queue_ids)
            return connection.total_changes - before

        return await self._db.write(work)

    async def restart_planning(self, run_id: int) -> None:
        await self._db.write(
            lambda connection: connection.execute("UPDATE replay_runs SET planned_through = 0 WHERE id = ?", (run_id,))
        )
