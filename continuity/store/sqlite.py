"""The embedded default store: SQLite (WAL) for rows, content-addressed files for bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from continuity.store.blobs import BlobStore
from continuity.store.secret_keys import load_key_ring
from continuity.store.sqlite_audit import AUDIT_MIGRATIONS, SqliteAuditRepository
from continuity.store.sqlite_db import SqliteDatabase
from continuity.store.sqlite_directory import DIRECTORY_MIGRATIONS, SqliteDirectorySyncRepository
from continuity.store.sqlite_failover import FAILOVER_MIGRATIONS, SqliteFailoverRepository
from continuity.store.sqlite_feeds import FEED_MIGRATIONS, SqliteFeedRepository, insert_feed_rows
from continuity.store.sqlite_filters import (
    FILTER_MIGRATIONS,
    SqliteFilterMemoryRepository,
    SqliteQuarantineRepository,
    SqliteVerdictRepository,
    insert_verdict_rows,
)
from continuity.store.sqlite_mailboxes import SqliteMailboxRepository
from continuity.store.sqlite_messages import SqliteMessageRepository
from continuity.store.sqlite_outbound import OUTBOUND_MIGRATIONS, SqliteOutboundRepository
from continuity.store.sqlite_replay import SqliteReplayRepository
from continuity.store.sqlite_replay_schema import REPLAY_MIGRATIONS
from continuity.store.sqlite_schema import CORE_MIGRATIONS
from continuity.store.sqlite_signals import SIGNAL_MIGRATIONS, SqliteSignalRepository
from continuity.store.sqlite_webmail import SqliteWebmailRepository
from continuity.store.sqlite_webmail_auth import SqliteWebmailAuthRepository
from continuity.store.sqlite_webmail_schema import WEBMAIL_MIGRATIONS

# Every component's migrations, applied in this order when the store opens.
MIGRATIONS: Sequence[tuple[str, Sequence[str]]] = (
    ("core", CORE_MIGRATIONS),
    ("audit", AUDIT_MIGRATIONS),
    ("failover", FAILOVER_MIGRATIONS),
    ("webmail", WEBMAIL_MIGRATIONS),
    ("outbound", OUTBOUND_MIGRATIONS),
    ("filters", FILTER_MIGRATIONS),
    ("signals", SIGNAL_MIGRATIONS),
    ("feeds", FEED_MIGRATIONS),
    ("replay", REPLAY_MIGRATIONS),
    ("directory", DIRECTORY_MIGRATIONS),
)


class SqliteStore:
    """Store implementation on one SQLite file and one blob directory."""

    def __init__(self, database_path: Path, blob_root: Path, key_path: Path | None = None) -> None:
        self.database = SqliteDatabase(database_path)
        # The webmail's key file (TOTP secrets); None in processes that never read them (filter workers).
        self.key_path = key_path
        self.blob_store = BlobStore(blob_root)
        self._mailboxes = SqliteMailboxRepository(self.database)
        self._messages = SqliteMessageRepository(
            self.database, self.blob_store, (insert_verdict_rows, insert_feed_rows)
        )
        self._audit = SqliteAuditRepository(self.database, database_path.with_name(database_path.name + ".audit-head"))
        self._failover = SqliteFailoverRepository(self.database)
        self._webmail = SqliteWebmailRepository(self.database, self.blob_store)
        self._webmail_auth = SqliteWebmailAuthRepository(self.database)
        self._outbound = SqliteOutboundRepository(self.database)
        self._verdicts = SqliteVerdictRepository(self.database)
        self._filter_memory = SqliteFilterMemoryRepository(self.database)
        self._quarantine = SqliteQuarantineRepository(self.database, self.blob_store)
        self._feeds = SqliteFeedRepository(self.database, self.blob_store)
        self._signals = SqliteSignalRepository(self.database)
        self._replay = SqliteReplayRepository(self.database, self.blob_store)
        self._directory_sync = SqliteDirectorySyncRepository(self.database)

    @property
    def mailboxes(self) -> SqliteMailboxRepository:
        return self._mailboxes

    @property
    def messages(self) -> SqliteMessageRepository:
        return self._messages

    @property
    def blobs(self) -> BlobStore:
        return self.blob_store

    @property
    def audit(self) -> SqliteAuditRepository:
        return self._audit

    @property
    def failover(self) -> SqliteFailoverRepository:
        return self._failover

    @property
    def webmail(self) -> SqliteWebmailRepository:
        return self._webmail

    @property
    def webmail_auth(self) -> SqliteWebmailAuthRepository:
        return self._webmail_auth

    @property
    def outbound(self) -> SqliteOutboundRepository:
        return self._outbound

    @property
    def verdicts(self) -> SqliteVerdictRepository:
        return self._verdicts

    @property
    def filter_memory(self) -> SqliteFilterMemoryRepository:
        return self._filter_memory

    @property
    def quarantine(self) -> SqliteQuarantineRepository:
        return self._quarantine

    @property
    def replay(self) -> SqliteReplayRepository:
        return self._replay

    @property
    def feeds(self) -> SqliteFeedRepository:
        return self._feeds

    @property
    def signals(self) -> SqliteSignalRepository:
        return self._signals

    @property
    def directory_sync(self) -> SqliteDirectorySyncRepository:
        return self._directory_sync

    def open_sync(self, *, recover: bool) -> None:
        """Create or migrate the database and the blob tree; blocking."""
        self.blob_store.open_sync(recover=recover)
        self.database.open_sync(MIGRATIONS)
        if self.key_path is not None:
            try:
                self._webmail_auth.protect_totp_sync(load_key_ring(self.key_path))
            except BaseException:
                self.database.close_sync()
                raise

    async def close(self) -> None:
        await asyncio.to_thread(self.database.close_sync)
        await asyncio.to_thread(self.blob_store.close_sync)


async def open_sqlite_store(
    database_path: Path, blob_root: Path, *, recover: bool = False, key_path: Path | None = None
) -> SqliteStore:
    """Open (creating or migrating as needed) the SQLite store; key_path is the webmail's key file."""
    store = SqliteStore(database_path, blob_root, key_path)
    await asyncio.to_thread(store.open_sync, recover=recover)
    return store
