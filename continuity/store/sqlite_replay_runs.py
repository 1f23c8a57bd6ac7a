"""The replay journal in SQLite: runs, reading the journal (counts, manifest pages, placements), retention.

Every method is one committed transaction (WAL, synchronous=FULL): a claim is on disk
before the first byte goes to the primary, an outcome right after. Message states follow
the journal: a message whose items are all delivered becomes ``replayed``; a held one
becomes ``held`` (the quarantine lists it); one reopened for another delivery is
``queued`` again.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from continuity.core.models import MessageState
from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import Channel
from continuity.core.replay_records import (
    JournalItem,
    MailboxProgress,
    ManifestRow,
    Placement,
    ReplayRun,
    RunKind,
    RunStatus,
)
from continuity.errors import NotFoundError, StorageError
from continuity.store.blobs import BlobStore
from continuity.store.sqlite_db import SqliteDatabase
from continuity.store.sqlite_replay_schema import (
    CHANNEL_MARKS,
    CHANNELS,
    ITEM_COLUMNS,
    ITEM_FROM,
    OPEN_MARKS,
    OPEN_STATES,
    RUN_COLUMNS,
    item_from,
    manifest_row,
    run_from,
)


class SqliteReplayRuns:
    """Runs, reads and pruning of the replay repository (sqlite_replay_planning and sqlite_replay add the rest)."""

    def __init__(self, database: SqliteDatabase, blobs: BlobStore) -> None:
        self._db = database
        self._blobs = blobs

    # -- runs -------------------------------------------------------------------------------

    async def create_run(self, kind: RunKind, compromise: bool, at: float) -> ReplayRun:
        status = RunStatus.AWAITING_CONFIRMATION if compromise else RunStatus.ACTIVE

        def work(connection: sqlite3.Connection) -> ReplayRun:
            cursor = connection.execute(
                "INSERT INTO replay_runs (kind, status, started_at, compromise) VALUES (?, ?, ?, ?)",
                (kind.value, status.value, at, int(compromise)),
            )
            return ReplayRun(int(cursor.lastrowid or 0), kind, status, at, compromise)

        return await self._db.write(work)

    async def latest_run(self, kind: RunKind | None = None) -> ReplayRun | None:
        def work(connection: sqlite3.Connection) -> ReplayRun | None:
            if kind is None:
                row = connection.execute(f"SELECT {RUN_COLUMNS} FROM replay_runs ORDER BY id DESC LIMIT 1").fetchone()
            else:
                row = connection.execute(
                    f"SELECT {RUN_COLUMNS} FROM replay_runs WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind.value,)
                ).fetchone()
            return None if row is None else run_from(row)

        return await self._db.read(work)

    async def get_run(self, run_id: int) -> ReplayRun | None:
        def work(connection: sqlite3.Connection) -> ReplayRun | None:
            row = connection.execute(f"SELECT {RUN_COLUMNS} FROM replay_runs WHERE id = ?", (run_id,)).fetchone()
            return None if row is None else run_from(row)

        return await self._db.read(work)

    async def runs(self, limit: int = 20) -> list[ReplayRun]:
        def work(connection: sqlite3.Connection) -> list[ReplayRun]:
            rows = connection.execute(f"SELECT {RUN_COLUMNS} FROM replay_runs ORDER BY id DESC LIMIT ?", (limit,))
            return [run_from(row) for row in rows]

        return await self._db.read(work)

    async def set_run_status(self, run_id: int, status: RunStatus, detail: str = "") -> None:
        if status is RunStatus.COMPLETED:
            raise StorageError("a run is completed with finish_run, which records its manifest")
        await self._db.write(
            lambda connection: connection.execute(
                "UPDATE replay_runs SET status = ?, detail = ? WHERE id = ? AND status != ?",
                (status.value, detail[:500], run_id, RunStatus.COMPLETED.value),
            )
        )

    async def require_confirmation(self, run_id: int) -> None:
        await self._db.write(
            lambda connection: connection.execute(
                "UPDATE replay_runs SET compromise = 1, confirmed_by = '', confirmed_at = 0, status = ?"
                " WHERE id = ? AND status != ?",
                (RunStatus.AWAITING_CONFIRMATION.value, run_id, RunStatus.COMPLETED.value),
            )
        )

    async def confirm_run(self, run_id: int, actor: str, at: float) -> ReplayRun:
        def work(connection: sqlite3.Connection) -> ReplayRun:
            row = connection.execute(f"SELECT {RUN_COLUMNS} FROM replay_runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"there is no replay run {run_id}")
            status = RunStatus.ACTIVE if run_from(row).status is RunStatus.AWAITING_CONFIRMATION else None
            connection.execute(
                "UPDATE replay_runs SET confirmed_by = ?, confirmed_at = ?, status = COALESCE(?, status) WHERE id = ?",
                (actor, at, status.value if status else None, run_id),
            )
            return run_from(
                connection.execute(f"SELECT {RUN_COLUMNS} FROM replay_runs WHERE id = ?", (run_id,)).fetchone()
            )

        return await self._db.write(work)

    async def finish_run(self, run_id: int, at: float, manifest_path: str, manifest_sha256: str) -> None:
        await self._db.write(
            lambda connection: connection.execute(
                "UPDATE replay_runs SET status = ?, finished_at = ?, manifest_path = ?, manifest_sha256 = ?,"
                " detail = '' WHERE id = ?",
                (RunStatus.COMPLETED.value, at, manifest_path, manifest_sha256, run_id),
            )
        )

    # -- reading ----------------------------------------------------------------------------

    async def open_count(self, run_id: int | None = None) -> int:
        def work(connection: sqlite3.Connection) -> int:
            where = f"state IN ({OPEN_MARKS})" + (" AND run_id = ?" if run_id is not None else "")
            params = (*OPEN_STATES, run_id) if run_id is not None else OPEN_STATES
            return int(connection.execute(f"SELECT COUNT(*) FROM replay_items WHERE {where}", params).fetchone()[0])

        return await self._db.read(work)

    async def next_due(self) -> float | None:
        def work(connection: sqlite3.Connection) -> float | None:
            # One seek per channel into the due index (channel, state, ...): "state = ?" alone scanned it whole.
            per_channel = " UNION ALL ".join(
                "SELECT MIN(next_attempt_at) AS due FROM replay_items WHERE channel = ? AND state = ?" for _ in Channel
            )
            params = [value for channel in Channel for value in (channel.value, ItemState.DEFERRED.value)]
            row = connection.execute(f"SELECT MIN(due) FROM ({per_channel})", params).fetchone()
            return None if row[0] is None else float(row[0])

        return await self._db.read(work)

    async def progress(self, run_id: int | None = None) -> list[MailboxProgress]:
        # A scan of the run's items: on the bulk reader, never in the way of the webmail.
        def work(connection: sqlite3.Connection) -> list[MailboxProgress]:
            where = "WHERE run_id = ?" if run_id is not None else ""
            rows = connection.execute(
                f"SELECT mailbox, state, COUNT(*) FROM replay_items {where} GROUP BY mailbox, state ORDER BY mailbox",
                (run_id,) if run_id is not None else (),
            )
            result: dict[str, dict[ItemState, int]] = {}
            for mailbox, state, count in rows:
                result.setdefault(str(mailbox), {})[ItemState(str(state))] = int(count)
            return [MailboxProgress(mailbox, counts) for mailbox, counts in result.items()]

        return await self._db.read_bulk(work)

    async def items(
        self, run_id: int, states: Sequence[ItemState] = (), limit: int = 1000, offset: int = 0
    ) -> list[JournalItem]:
        def work(connection: sqlite3.Connection) -> list[JournalItem]:
            where = "ri.run_id = ?"
            params: list[object] = [run_id]
            if states:
                where += f" AND ri.state IN ({','.join('?' * len(states))})"
                params += [state.value for state in states]
            rows = connection.execute(
                f"SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE {where} ORDER BY ri.mailbox, ri.id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
            return [item_from(row) for row in rows]

        return await self._db.read(work)

    async def totals(self, run_id: int) -> dict[ItemState, int]:
        def work(connection: sqlite3.Connection) -> dict[ItemState, int]:
            rows = connection.execute(
                "SELECT state, COUNT(*) FROM replay_items WHERE run_id = ? GROUP BY state", (run_id,)
            )
            return {ItemState(str(state)): int(count) for state, count in rows}

        return await self._db.read_bulk(work)

    async def manifest_page(self, run_id: int, after_item_id: int, limit: int) -> list[tuple[int, ManifestRow]]:
        def work(connection: sqlite3.Connection) -> list[tuple[int, ManifestRow]]:
            rows = connection.execute(
                "SELECT ri.id, ri.mailbox, ri.queue_id, m.message_id, m.sha256, ri.state, ri.kind, ri.channel,"
                " ri.placed_folder, ri.folder, ri.flags, ri.placed_flags, ri.attempts, ri.detail, ri.delivered_at,"
                " m.subject, m.sender, m.received_at"
                " FROM replay_items ri JOIN messages m ON m.queue_id = ri.queue_id"
                # By the primary key from the last page ("+" keeps SQLite off the run's index, which
                # would read and sort the whole run for every page).
                " WHERE ri.id > ? AND +ri.run_id = ? ORDER BY ri.id LIMIT ?",
                (after_item_id, run_id, limit),
            )
            return [(int(r[0]), manifest_row(r[1:])) for r in rows]

        return await self._db.read_bulk(work)

    async def placement_mailboxes(self, run_id: int) -> list[str]:
        def work(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute(
                "SELECT DISTINCT mailbox FROM replay_items WHERE run_id = ? AND state = ? AND channel = ?"
                " ORDER BY mailbox",
                (run_id, ItemState.DELIVERED.value, Channel.IMAP.value),
            )
            return [str(row[0]) for row in rows]

        return await self._db.read_bulk(work)

    async def placements(self, run_id: int, mailbox: str) -> list[Placement]:
        def work(connection: sqlite3.Connection) -> list[Placement]:
            rows = connection.execute(
                "SELECT ri.id, ri.mailbox, ri.placed_folder, ri.queue_id, m.sha256 FROM replay_items ri"
                " JOIN messages m ON m.queue_id = ri.queue_id"
                " WHERE ri.run_id = ? AND ri.state = ? AND ri.channel = ? AND ri.mailbox = ?"
                " ORDER BY ri.placed_folder, ri.id",
                (run_id, ItemState.DELIVERED.value, Channel.IMAP.value, mailbox),
            )
            return [Placement(int(r[0]), str(r[1]), str(r[2]), f"{r[3]}; sha256={r[4]}") for r in rows]

        return await self._db.read_bulk(work)

    async def unwarned_deferred(self, first_attempt_before: float) -> list[JournalItem]:
        def work(connection: sqlite3.Connection) -> list[JournalItem]:
            rows = connection.execute(
                # channel IN (...) lets SQLite seek the due index instead of scanning the journal every minute.
                f"SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE ri.channel IN ({CHANNEL_MARKS}) AND ri.state IN (?, ?)"
                " AND ri.warned = 0 AND ri.first_attempt_at > 0 AND ri.first_attempt_at <= ? ORDER BY ri.id LIMIT 1000",
                (*CHANNELS, ItemState.DEFERRED.value, ItemState.DELIVERING.value, first_attempt_before),
            )
            return [item_from(row) for row in rows]

        return await self._db.read(work)

    async def mark_warned(self, item_ids: Sequence[int]) -> None:
        await self._db.write(
            lambda connection: connection.executemany(
                "UPDATE replay_items SET warned = 1 WHERE id = ?", [(item_id,) for item_id in item_ids]
            )
        )

    async def retry_failed(self, run_id: int, at: float) -> int:
        def work(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "UPDATE replay_items SET state = ?, run_id = ?, attempts = 0, first_attempt_at = 0,"
                " next_attempt_at = 0, warned = 0, detail = 'retry ordered by an operator' WHERE state = ?",
                (ItemState.PENDING.value, run_id, ItemState.FAILED.value),
            ).rowcount

        return await self._db.write(work)

    # -- retention --------------------------------------------------------------------------

    async def prune_replayed(self, delivered_before: float, limit: int = 500) -> int:
        def work(connection: sqlite3.Connection) -> tuple[int, list[str]]:
            rows = connection.execute(
                "SELECT m.queue_id, m.sha256 FROM messages m WHERE m.state = ? AND NOT EXISTS"
                " (SELECT 1 FROM replay_items ri WHERE ri.queue_id = m.queue_id"
                "   AND (ri.state != ? OR ri.delivered_at >= ?)) LIMIT ?",
                (MessageState.REPLAYED.value, ItemState.DELIVERED.value, delivered_before, limit),
            ).fetchall()
            orphans: list[str] = []
            for queue_id, sha256 in rows:
                connection.execute("DELETE FROM filter_verdicts WHERE queue_id = ?", (queue_id,))
                connection.execute("DELETE FROM messages WHERE queue_id = ?", (queue_id,))
                shared = connection.execute(
                    "SELECT 1 FROM messages WHERE sha256 = ? UNION ALL SELECT 1 FROM outbound_messages"
                    " WHERE sha256 = ? LIMIT 1",
                    (sha256, sha256),
                ).fetchone()
                if shared is None:
                    orphans.append(str(sha256))
            return len(rows), orphans

        def prune_all() -> int:
            count, orphans = self._db.transact_sync(work)
            for sha256 in orphans:
                try:
                    self._blobs.path_for(sha256).unlink(missing_ok=True)
                except OSError as exc:
                    raise StorageError(f"a pruned message's body could not be removed: {exc}") from exc
            if orphans:
                descriptor = os.open(self._blobs.bodies, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
            return count

        return await self._db.run_in_writer(prune_all)
