"""The message queue in SQLite: durable batch commit, listing and lookup."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from continuity.core.models import IncomingMessage, MessageState, QueueEntry, RecipientState
from continuity.errors import StorageError
from continuity.store.blobs import BlobStore, StagedBody
from continuity.store.sqlite_db import SqliteDatabase

_ENTRY_QUERY = """
SELECT m.queue_id, m.message_id, m.sender, m.size, m.state, m.received_at, m.sha256, m.subject,
       m.client_address, m.client_helo,
       (SELECT GROUP_CONCAT(address, char(10)) FROM
            (SELECT address FROM message_recipients r WHERE r.queue_id = m.queue_id ORDER BY position))
FROM messages m
"""


def _entry_from(row: tuple[object, ...]) -> QueueEntry:
    (queue_id, message_id, sender, size, state, received_at, sha256, subject, address, helo, rcpts) = row
    return QueueEntry(
        queue_id=str(queue_id),
        message_id=str(message_id),
        sender=str(sender),
        recipients=tuple(str(rcpts).split("\n")) if rcpts else (),
        size=int(size),  # type: ignore[call-overload]
        state=MessageState(str(state)),
        received_at=float(received_at),  # type: ignore[arg-type]
        sha256=str(sha256),
        subject=str(subject),
        client_address=str(address),
        client_helo=str(helo),
    )


# States whose messages are in no recipient's mailbox when committed.
_IN_NO_MAILBOX = frozenset({MessageState.HELD, MessageState.CONTAINED})


def _insert_rows(connection: sqlite3.Connection, batch: Sequence[IncomingMessage]) -> None:
    connection.executemany(
        "INSERT INTO messages (queue_id, received_at, sender, size, sha256, message_id, subject,"
        " client_address, client_helo, trace_header, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                m.queue_id,
                m.received_at,
                m.sender,
                len(m.content),
                m.sha256,
                m.message_id,
                m.subject,
                m.client_address,
                m.client_helo,
                m.trace_header,
                m.state.value,
            )
            for m in batch
        ],
    )
    connection.executemany(
        "INSERT INTO message_recipients (queue_id, position, address, mailbox, state) VALUES (?, ?, ?, ?, ?)",
        [
            (m.queue_id, position, r.address, r.mailbox, RecipientState.PENDING.value)
            for m in batch
            for position, r in enumerate(m.recipients)
        ],
    )
    # Standalone delivery: a copy in each recipient's standby mailbox (once per mailbox);
    # held (quarantined) messages reach no mailbox until they are released, and recipients
    # outside the appliance's mailboxes (mail the primary relays out, mailbox "") none at all.
    connection.executemany(
        "INSERT OR IGNORE INTO mailbox_messages (mailbox, queue_id, folder, flags, delivered_at)"
        " VALUES (?, ?, 'INBOX', '', ?)",
        [
            (r.mailbox, m.queue_id, m.received_at)
            for m in batch
            if m.state not in _IN_NO_MAILBOX
            for r in m.recipients
            if r.mailbox
        ],
    )


# Bodies up to this size are staged on the event loop (prepare); larger ones in a writer thread.
_STAGE_ON_LOOP_BYTES = 256 * 1024


class SqliteMessageRepository:
    """MessageRepository on SQLite plus a BlobStore."""

    def __init__(
        self,
        database: SqliteDatabase,
        blobs: BlobStore,
        row_hooks: Sequence[Callable[[sqlite3.Connection, Sequence[IncomingMessage]], None]] = (),
    ) -> None:
        self._db = database
        self._blobs = blobs
        # Other components' rows written in the same transaction (e.g. filter verdicts).
        self._row_hooks = tuple(row_hooks)
        # Bodies staged by prepare(), by queue id; an id is added right before the message's
        # submission to the group commit, whose commit() publishes it.
        self._staged: dict[str, StagedBody] = {}

    async def prepare(self, message: IncomingMessage) -> None:
        if len(message.content) <= _STAGE_ON_LOOP_BYTES:
            # A small body is written right here, on the event loop: a hand-over to a
            # writer thread and back took 3-6 ms per message under load, for a few system
            # calls that take tens of microseconds (bench/ingest.py, one connection per
            # message: about a fifth more messages per second this way).
            self._staged[message.queue_id] = self._blobs.stage_sync(message.sha256, message.content)
            return
        staging = self._blobs.start_stage(message.sha256, message.content)
        try:
            staged = await asyncio.wrap_future(staging)
        except asyncio.CancelledError:
            # The session went away: its temporary file is removed once written.
            staging.add_done_callback(self._discard_abandoned)
            raise
        self._staged[message.queue_id] = staged

    def _discard_abandoned(self, staging: Future[StagedBody]) -> None:
        if not staging.cancelled() and staging.exception() is None:
            self._blobs.discard_sync([staging.result()])

    def publish_bodies_sync(self, batch: Sequence[IncomingMessage]) -> None:
        """Make the batch's bodies durable under their final names, staging those not prepared; blocking."""
        ahead = [self._staged.pop(message.queue_id, None) for message in batch]
        staged: list[StagedBody] = []
        try:
            for message, body in zip(batch, ahead, strict=True):
                staged.append(body if body is not None else self._blobs.stage_sync(message.sha256, message.content))
        except StorageError:
            self._blobs.discard_sync([*staged, *(body for body in ahead[len(staged) :] if body is not None)])
            raise
        self._blobs.publish_sync(staged)

    def _insert_all(self, connection: sqlite3.Connection, batch: Sequence[IncomingMessage]) -> None:
        _insert_rows(connection, batch)
        for hook in self._row_hooks:
            hook(connection, batch)

    async def commit(self, batch: Sequence[IncomingMessage]) -> None:
        # Bodies, then rows, in one hand-over to the database's writer thread; the rows'
        # transaction begins only once the bodies are in place, and a failure publishing
        # them raises before it. (Bodies in a blob writer thread and rows in this one, two
        # hand-overs, cost more latency than overlapping two batches' flushes saved.)
        def publish_and_insert() -> None:
            self.publish_bodies_sync(batch)
            self._db.transact_sync(lambda connection: self._insert_all(connection, batch))

        await self._db.run_in_writer(publish_and_insert)

    async def page(self, before: tuple[float, str] | None, limit: int) -> list[QueueEntry]:
        # Keyset paging (newest first): each page costs the same however deep into the queue it is.
        def work(connection: sqlite3.Connection) -> list[QueueEntry]:
            where, params = ("", ()) if before is None else (" WHERE (m.received_at, m.queue_id) < (?, ?)", before)
            rows = connection.execute(
                _ENTRY_QUERY + where + " ORDER BY m.received_at DESC, m.queue_id DESC LIMIT ?", (*params, limit)
            )
            return [_entry_from(row) for row in rows]

        return await self._db.read(work)

    async def list(self, limit: int = 1000, offset: int = 0) -> list[QueueEntry]:
        def work(connection: sqlite3.Connection) -> list[QueueEntry]:
            rows = connection.execute(
                _ENTRY_QUERY + " ORDER BY m.received_at DESC, m.queue_id DESC LIMIT ? OFFSET ?", (limit, offset)
            )
            return [_entry_from(row) for row in rows]

        return await self._db.read(work)

    async def get(self, queue_id: str) -> QueueEntry | None:
        def work(connection: sqlite3.Connection) -> QueueEntry | None:
            row = connection.execute(_ENTRY_QUERY + " WHERE m.queue_id = ?", (queue_id,)).fetchone()
            return None if row is None else _entry_from(row)

        return await self._db.read(work)

    async def trace_header(self, queue_id: str) -> bytes | None:
        """The Received header the appliance added to this message, or None when unknown."""

        def work(connection: sqlite3.Connection) -> bytes | None:
            row = connection.execute("SELECT trace_header FROM messages WHERE queue_id = ?", (queue_id,)).fetchone()
            return None if row is None else bytes(row[0])

        return await self._db.read(work)

    async def count(self) -> int:
        def work(connection: sqlite3.Connection) -> int:
            row = connection.execute(
                "SELECT COUNT(*) FROM messages WHERE state NOT IN (?, ?, ?, ?, ?)",
                (
                    MessageState.REPLAYED.value,
                    MessageState.RELAYED.value,
                    # The feeds' copies and the primary's own outbound mail are never replayed.
                    MessageState.MIRRORED.value,
                    MessageState.OUTGOING.value,
                    MessageState.CONTAINED.value,
                ),
            )
            return int(row.fetchone()[0])

        return await self._db.read(work)
