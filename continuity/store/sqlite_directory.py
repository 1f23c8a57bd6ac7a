"""The directory sync's tables in SQLite: links to mailboxes, group membership, cursors, runs."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping

from continuity.directory.core.links import DirectoryLink, SyncRun
from continuity.store.sqlite_db import SqliteDatabase

DIRECTORY_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE directory_links (
    external_id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    mobile TEXT,
    disabled_by_sync INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE INDEX directory_links_by_address ON directory_links (address);

CREATE TABLE directory_group_members (
    group_name TEXT NOT NULL,
    external_id TEXT NOT NULL REFERENCES directory_links (external_id) ON DELETE CASCADE,
    PRIMARY KEY (group_name, external_id)
);

CREATE TABLE directory_cursors (
    source TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE directory_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    mode TEXT NOT NULL,
    outcome TEXT NOT NULL,
    summary TEXT NOT NULL,
    counts TEXT NOT NULL
);
""",
)

_KEEP_RUNS = 100


class SqliteDirectorySyncRepository:
    """DirectorySyncRepository on SQLite."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def links(self) -> dict[str, DirectoryLink]:
        def work(connection: sqlite3.Connection) -> dict[str, DirectoryLink]:
            groups: dict[str, set[str]] = {}
            for name, external_id in connection.execute("SELECT group_name, external_id FROM directory_group_members"):
                groups.setdefault(external_id, set()).add(name)
            rows = connection.execute(
                "SELECT external_id, address, mobile, disabled_by_sync, removed FROM directory_links"
            ).fetchall()
            return {
                str(row[0]): DirectoryLink(
                    str(row[0]),
                    str(row[1]),
                    frozenset(groups.get(str(row[0]), ())),
                    str(row[2]) if row[2] else None,
                    bool(row[3]),
                    bool(row[4]),
                )
                for row in rows
            }

        return await self._db.read(work)

    async def save_links(self, links: Mapping[str, DirectoryLink]) -> None:
        def work(connection: sqlite3.Connection) -> None:
            now = time.time()
            connection.execute("DELETE FROM directory_group_members")
            connection.execute("DELETE FROM directory_links")
            connection.executemany(
                "INSERT INTO directory_links VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (link.external_id, link.address, link.mobile, int(link.disabled_by_sync), int(link.removed), now)
                    for link in links.values()
                ],
            )
            connection.executemany(
                "INSERT INTO directory_group_members VALUES (?, ?)",
                [(group, link.external_id) for link in links.values() for group in sorted(link.groups)],
            )

        await self._db.write(work)

    async def cursor(self, source: str) -> str:
        def work(connection: sqlite3.Connection) -> str:
            row = connection.execute("SELECT cursor FROM directory_cursors WHERE source = ?", (source,)).fetchone()
            return "" if row is None else str(row[0])

        return await self._db.read(work)

    async def set_cursor(self, source: str, cursor: str) -> None:
        def work(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO directory_cursors VALUES (?, ?, ?)"
                " ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                (source, cursor, time.time()),
            )

        await self._db.write(work)

    async def record_run(self, run: SyncRun) -> None:
        def work(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO directory_runs (at, source, mode, outcome, summary, counts) VALUES (?, ?, ?, ?, ?, ?)",
                (run.at, run.source, run.mode, run.outcome, run.summary, json.dumps(run.counts, sort_keys=True)),
            )
            connection.execute(
                "DELETE FROM directory_runs WHERE id <= (SELECT MAX(id) FROM directory_runs) - ?", (_KEEP_RUNS,)
            )

        await self._db.write(work)

    async def runs(self, limit: int = 10) -> list[SyncRun]:
        def work(connection: sqlite3.Connection) -> list[SyncRun]:
            rows = connection.execute(
                "SELECT at, source, mode, outcome, summary, counts FROM directory_runs ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [
                SyncRun(float(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), json.loads(row[5]))
                for row in rows
            ]

        return await self._db.read(work)

    async def groups(self) -> dict[str, list[str]]:
        def work(connection: sqlite3.Connection) -> dict[str, list[str]]:
            result: dict[str, list[str]] = {}
            rows = connection.execute(
                "SELECT m.group_name, l.address FROM directory_group_members m"
                " JOIN directory_links l ON l.external_id = m.external_id ORDER BY m.group_name, l.address"
            )
            for name, address in rows:
                result.setdefault(str(name), []).append(str(address))
            return result

        return await self._db.read(work)
