"""The replay journal in SQLite: claims, outcomes, reopening and holds.

Runs and reads are in sqlite_replay_runs, planning and settling in sqlite_replay_planning.
Every method is one committed transaction (WAL, synchronous=FULL): a claim is on disk
before the first byte goes to the primary, an outcome right after. Message states follow
the journal: a message whose standby copies all have delivered items becomes
``replayed``; a held one becomes ``held`` (the quarantine lists it); one reopened for
another delivery is ``queued`` again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from continuity.core.models import MessageState
from continuity.core.replay_journal import ItemState, check_transition
from continuity.core.replay_plan import Channel
from continuity.core.replay_records import (
    ItemUpdate,
    JournalItem,
)
from continuity.store.sqlite_replay_planning import SqliteReplayPlanning, settle_messages
from continuity.store.sqlite_replay_schema import (
    CHANNEL_MARKS,
    CHANNELS,
    ITEM_COLUMNS,
    ITEM_FROM,
    OPEN_MARKS,
    OPEN_STATES,
    item_from,
)

_DUE = "(ri.state = 'pending' OR (ri.state = 'deferred' AND ri.next_attempt_at <= ?))"


def _due_ids(
    connection: sqlite3.Connection, run_id: int, channel: Channel, mailbox: str | None, now: float, limit: int
) -> list[int]:
    """The ids of the first limit items due now (pending, or deferred and due), in journal order.

    One query per state, so each walks the (run_id, state) index in id order and stops at
    limit: a single query with "pending OR deferred and due" read and sorted every open
    item of the run on each claim, which made a run of N items cost N squared.
    """
    extra = " AND mailbox = ?" if mailbox else ""
    params = [mailbox] if mailbox else []
    pending = connection.execute(
        f"SELECT id FROM replay_items WHERE run_id = ? AND state = ? AND channel = ?{extra} ORDER BY id LIMIT ?",
        (run_id, ItemState.PENDING.value, channel.value, *params, limit),
    ).fetchall()
    deferred = connection.execute(
        f"SELECT id FROM replay_items WHERE run_id = ? AND state = ? AND channel = ?{extra}"
        " AND next_attempt_at <= ? ORDER BY id LIMIT ?",
        (run_id, ItemState.DEFERRED.value, channel.value, *params, now, limit),
    ).fetchall()
    return sorted(int(row[0]) for row in [*pending, *deferred])[:limit]


class SqliteReplayRepository(SqliteReplayPlanning):
    """ReplayRepository on SQLite."""

    # -- planning (candidates and new items: sqlite_replay_planning) ------------------------

    async def reopen_released(self, run_id: int, at: float) -> int:
        def work(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "UPDATE replay_items SET state = ?, released = 1, run_id = ?, next_attempt_at = 0,"
                " detail = 'released from quarantine by an operator'"
                # From the held items (seeks into the due index), not from every queued message.
                " WHERE id IN (SELECT ri.id FROM replay_items ri CROSS JOIN messages m ON m.queue_id = ri.queue_id"
                f" WHERE ri.channel IN ({CHANNEL_MARKS}) AND ri.state = ? AND m.state = ?)",
                (ItemState.PENDING.value, run_id, *CHANNELS, ItemState.HELD.value, MessageState.QUEUED.value),
            ).rowcount

        return await self._db.write(work)

    async def changed_after_delivery(self, limit: int) -> list[JournalItem]:
        def work(connection: sqlite3.Connection) -> list[JournalItem]:
            # From the copies the webmail changed (a small partial index), not from every delivered item.
            rows = connection.execute(
                f"SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE ri.id IN (SELECT changed.id FROM mailbox_messages c"
                " CROSS JOIN replay_items changed ON changed.queue_id = c.queue_id AND changed.mailbox = c.mailbox"
                " WHERE c.changed_at > 0 AND changed.state = ? AND changed.channel = ?"
                " AND c.changed_at > changed.delivered_at) ORDER BY ri.id LIMIT ?",
                (ItemState.DELIVERED.value, Channel.IMAP.value, limit),
            )
            return [item_from(row) for row in rows]

        return await self._db.read(work)

    async def reopen(self, item_ids: Sequence[int], run_id: int, detail: str, at: float) -> int:
        def work(connection: sqlite3.Connection) -> int:
            touched: set[str] = set()
            count = 0
            for item_id in item_ids:
                row = connection.execute("SELECT state, queue_id FROM replay_items WHERE id = ?", (item_id,)).fetchone()
                if row is None:
                    continue
                check_transition(ItemState(str(row[0])), ItemState.PENDING)
                connection.execute(
                    "UPDATE replay_items SET state = ?, run_id = ?, next_attempt_at = 0, detail = ? WHERE id = ?",
                    (ItemState.PENDING.value, run_id, detail[:500], item_id),
                )
                touched.add(str(row[1]))
                count += 1
            settle_messages(connection, touched)
            return count

        return await self._db.write(work)

    async def adopt_open(self, run_id: int) -> int:
        def work(connection: sqlite3.Connection) -> int:
            return connection.execute(
                f"UPDATE replay_items SET run_id = ? WHERE run_id != ? AND state IN ({OPEN_MARKS})",
                (run_id, run_id, *OPEN_STATES),
            ).rowcount

        return await self._db.write(work)

    # -- delivery ---------------------------------------------------------------------------

    async def interrupted(self, at: float) -> int:
        def work(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "UPDATE replay_items SET state = ?, next_attempt_at = ?,"
                " detail = 'interrupted during delivery; checking the primary for a copy first' WHERE state = ?",
                (ItemState.DEFERRED.value, at, ItemState.DELIVERING.value),
            ).rowcount

        return await self._db.write(work)

    async def due_mailboxes(self, channel: Channel, now: float, run_id: int) -> list[tuple[str, int]]:
        def work(connection: sqlite3.Connection) -> list[tuple[str, int]]:
            rows = connection.execute(
                f"SELECT ri.mailbox, COUNT(*) FROM replay_items ri WHERE ri.run_id = ? AND ri.channel = ? AND {_DUE}"
                " GROUP BY ri.mailbox ORDER BY MIN(ri.id)",
                (run_id, channel.value, now),
            )
            return [(str(row[0]), int(row[1])) for row in rows]

        return await self._db.read(work)

    async def claim(
        self, channel: Channel, mailbox: str | None, limit: int, now: float, run_id: int
    ) -> list[JournalItem]:
        def work(connection: sqlite3.Connection) -> list[JournalItem]:
            ids = _due_ids(connection, run_id, channel, mailbox, now, limit)
            if not ids:
                return []
            rows = connection.execute(
                f"SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE ri.id IN ({','.join('?' * len(ids))}) ORDER BY ri.id", ids
            ).fetchall()
            items = [item_from(row) for row in rows]
            connection.executemany(
                "UPDATE replay_items SET state = ?, attempts = attempts + 1,"
                " first_attempt_at = CASE WHEN first_attempt_at = 0 THEN ? ELSE first_attempt_at END WHERE id = ?",
                [(ItemState.DELIVERING.value, now, item.id) for item in items],
            )
            return items

        return await self._db.write(work)

    async def record(self, updates: Sequence[ItemUpdate]) -> None:
        def work(connection: sqlite3.Connection) -> None:
            touched: set[str] = set()
            for update in updates:
                row = connection.execute(
                    "SELECT state, queue_id FROM replay_items WHERE id = ?", (update.item_id,)
                ).fetchone()
                if row is None:
                    continue  # the message was deleted meanwhile (a draft replaced, a quarantine delete)
                check_transition(ItemState(str(row[0])), update.state)
                delivered = update.state is ItemState.DELIVERED
                connection.execute(
                    "UPDATE replay_items SET state = ?, detail = ?, code = ?, next_attempt_at = ?,"
                    " delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END,"
                    " placed_folder = CASE WHEN ? THEN ? ELSE placed_folder END,"
                    " placed_flags = CASE WHEN ? THEN ? ELSE placed_flags END WHERE id = ?",
                    (
                        update.state.value,
                        update.detail[:500],
                        update.code,
                        update.next_attempt_at,
                        delivered,
                        update.at,
                        delivered,
                        update.placed_folder,
                        delivered,
                        update.placed_flags,
                        update.item_id,
                    ),
                )
                touched.add(str(row[1]))
            settle_messages(connection, touched)

        if updates:
            await self._db.write(work)

    async def hold(self, queue_id: str, detail: str, at: float) -> int:
        def work(connection: sqlite3.Connection) -> int:
            connection.execute(
                "UPDATE messages SET state = ? WHERE queue_id = ? AND state = ?",
                (MessageState.HELD.value, queue_id, MessageState.QUEUED.value),
            )
            return connection.execute(
                f"UPDATE replay_items SET state = ?, detail = ? WHERE queue_id = ? AND state IN ({OPEN_MARKS})",
                (ItemState.HELD.value, detail[:500], queue_id, *OPEN_STATES),
            ).rowcount

        return await self._db.write(work)
