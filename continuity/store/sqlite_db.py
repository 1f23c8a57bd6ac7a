"""A SQLite database used from asyncio: one writer thread, two reader threads, migrations.

SQLite runs in WAL mode with ``synchronous=FULL``: a commit returns only after the WAL
is fsynced, which is what "250 means durable" needs. All calls run in dedicated
threads so the event loop never blocks on disk.

The two readers keep short reads apart from long ones: the serving reader answers
``/healthz``, the webmail and the CLI; the bulk reader takes the scans whose cost grows
with the spool (a replay's counts per mailbox, its end-of-run reconciliation, the
manifest's pages), so a replay of millions of messages never makes a web request wait.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from continuity.errors import StorageError

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 15_000


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA foreign_keys = ON")
    if read_only:
        connection.execute("PRAGMA query_only = ON")
    else:
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageError(f"SQLite database {path} cannot use WAL mode (got {mode})")
        connection.execute("PRAGMA synchronous = FULL")
    return connection


class SqliteDatabase:
    """Connections and threads for one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        self._bulk_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-bulk-reader")
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._bulk: sqlite3.Connection | None = None

    def open_sync(self, migrations: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Open both connections and apply pending migrations; blocking."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _connect(self.path, read_only=False)
            for component, scripts in migrations:
                self._migrate(self._writer, component, scripts)
            self._reader = _connect(self.path, read_only=True)
            self._bulk = _connect(self.path, read_only=True)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {self.path}: {exc}") from exc

    @staticmethod
    def _migrate(connection: sqlite3.Connection, component: str, scripts: Sequence[str]) -> None:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " component TEXT NOT NULL, version INTEGER NOT NULL, applied_at REAL NOT NULL,"
            " PRIMARY KEY (component, version))"
        )
        row = connection.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?", (component,)
        ).fetchone()
        current = int(row[0])
        if current > len(scripts):
            raise StorageError(
                f"database {component} schema is version {current}, newer than this software "
                f"({len(scripts)}); upgrade the appliance"
            )
        for version, script in enumerate(scripts[current:], start=current + 1):
            connection.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_statements(script):
                    connection.execute(statement)
                connection.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (component, version, time.time()))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def _writer_connection(self) -> sqlite3.Connection:
        if self._writer is None:
            raise StorageError("the database is not open")
        return self._writer

    def _reader_connection(self) -> sqlite3.Connection:
        if self._reader is None:
            raise StorageError("the database is not open")
        return self._reader

    def transact_sync(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run work in one IMMEDIATE transaction on the writer connection; blocking.

        Must be called from the writer thread (see :meth:`write`), or before the loop runs.
        """
        connection = self._writer_connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"database write failed: {exc}") from exc
        return result

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run work in a write transaction on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_pool, self.transact_sync, work)

    async def run_in_writer(self, work: Callable[[], T]) -> T:
        """Run arbitrary blocking work on the writer thread (it may call transact_sync)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_pool, work)

    def query_sync(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only query on the reader connection; blocking."""
        try:
            return work(self._reader_connection())
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    def _bulk_sync(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._bulk is None:
            raise StorageError("the database is not open")
        try:
            return work(self._bulk)
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    async def read_bulk(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only query whose cost grows with the spool on the bulk reader's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._bulk_pool, self._bulk_sync, work)

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only query on the reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool, self.query_sync, work)

    def close_sync(self) -> None:
        """Close connections and stop the threads."""
        for pool in (self._writer_pool, self._reader_pool, self._bulk_pool):
            pool.shutdown(wait=True)
        for connection in (self._writer, self._reader, self._bulk):
            if connection is not None:
                connection.close()
        self._writer = self._reader = self._bulk = None


def _split_statements(script: str) -> list[str]:
    """Split a migration script into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
