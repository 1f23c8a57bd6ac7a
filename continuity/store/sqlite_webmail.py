"""The webmail's view of standby mailboxes in SQLite: folders, lists, flags, moves, search, index.

Every change of folder or flags is one committed UPDATE of ``mailbox_messages`` (with
``changed_at``), so the replay sees the state the user left. Mail the user writes (sent
copies and drafts) becomes a ``messages`` row with ``client_helo = 'webmail'`` and no
recipient rows, its body in the blob store, and a ``mailbox_messages`` row in Sent or
Drafts.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from continuity.core.mail_folders import STANDARD_NAMES, Flag, StandardFolder, with_flag
from continuity.core.models import MessageState
from continuity.core.queue_ids import new_queue_id
from continuity.core.webmail_models import FolderCount, IndexedSummary, ListedMessage, PendingIndex, StoredMessage
from continuity.errors import InvalidInputError, NotFoundError
from continuity.store.blobs import BlobStore
from continuity.store.sqlite_db import SqliteDatabase
from continuity.store.sqlite_webmail_index import has_backlog, pending_rows, store_index

LOCAL_HELO = "webmail"

_LIST_COLUMNS = """
mm.id, mm.queue_id, mm.folder, mm.flags, mm.delivered_at,
COALESCE(wi.from_name, ''), COALESCE(wi.from_address, m.sender), COALESCE(wi.to_addresses, ''),
COALESCE(wi.subject, m.subject), COALESCE(wi.sent_at, m.received_at), m.size,
COALESCE(wi.has_attachments, 0), COALESCE(wi.preview, '')
"""
_LIST_FROM = """
FROM mailbox_messages mm
JOIN messages m ON m.queue_id = mm.queue_id
LEFT JOIN webmail_index wi ON wi.queue_id = mm.queue_id
"""


def _listed(row: tuple[object, ...]) -> ListedMessage:
    (id_, queue_id, folder, flags, delivered, from_name, from_address, to, subject, sent_at, size, att, preview) = row
    return ListedMessage(
        id=int(id_),  # type: ignore[call-overload]
        queue_id=str(queue_id),
        folder=str(folder),
        flags=str(flags),
        delivered_at=float(delivered),  # type: ignore[arg-type]
        from_name=str(from_name),
        from_address=str(from_address),
        to_addresses=str(to),
        subject=str(subject),
        sent_at=float(sent_at),  # type: ignore[arg-type]
        size=int(size),  # type: ignore[call-overload]
        has_attachments=bool(att),
        preview=str(preview),
    )


@dataclass(frozen=True, slots=True)
class LocalMessage:
    """A message written in the webmail, to be filed in one of the writer's folders."""

    mailbox: str
    folder: str
    flags: str
    sender: str
    subject: str
    message_id: str
    content: bytes


class SqliteWebmailRepository:
    """Folders, flags and search of standby mailboxes."""

    def __init__(self, database: SqliteDatabase, blobs: BlobStore) -> None:
        self._db = database
        self._blobs = blobs

    async def folders(self, mailbox: str) -> list[FolderCount]:
        """Standard folders first, then the user's, with totals and unread counts."""

        def work(connection: sqlite3.Connection) -> list[FolderCount]:
            counts = {
                str(folder): (int(total), int(unread or 0))
                for folder, total, unread in connection.execute(
                    "SELECT folder, total, unread FROM webmail_folder_counts WHERE mailbox = ?", (mailbox,)
                )
            }
            user = [
                str(row[0])
                for row in connection.execute(
                    "SELECT name FROM webmail_folders WHERE mailbox = ? ORDER BY name COLLATE NOCASE", (mailbox,)
                )
            ]
            result = [
                FolderCount(f.value, f.label, *counts.get(f.value, (0, 0)), standard=True) for f in StandardFolder
            ]
            result += [FolderCount(name, name, *counts.get(name, (0, 0)), standard=False) for name in user]
            return result

        return await self._db.read(work)

    async def folder_exists(self, mailbox: str, folder: str) -> bool:
        """True for a standard folder or one the user created."""
        if folder in STANDARD_NAMES:
            return True

        def work(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT 1 FROM webmail_folders WHERE mailbox = ? AND name = ?", (mailbox, folder)
            ).fetchone()
            return row is not None

        return await self._db.read(work)

    async def create_folder(self, mailbox: str, name: str) -> None:
        """Create a user folder; InvalidInputError when it exists."""

        def work(connection: sqlite3.Connection) -> None:
            if connection.execute(
                "SELECT 1 FROM webmail_folders WHERE mailbox = ? AND name = ?", (mailbox, name)
            ).fetchone():
                raise InvalidInputError(f"a folder named '{name}' already exists")
            connection.execute(
                "INSERT INTO webmail_folders (mailbox, name, created_at) VALUES (?, ?, ?)", (mailbox, name, time.time())
            )

        await self._db.write(work)

    async def delete_folder(self, mailbox: str, name: str) -> int:
        """Delete a user folder, moving its messages to Trash; returns how many moved."""

        def work(connection: sqlite3.Connection) -> int:
            if connection.execute(
                "DELETE FROM webmail_folders WHERE mailbox = ? AND name = ?", (mailbox, name)
            ).rowcount:
                return connection.execute(
                    "UPDATE mailbox_messages SET folder = ?, changed_at = ? WHERE mailbox = ? AND folder = ?",
                    (StandardFolder.TRASH.value, time.time(), mailbox, name),
                ).rowcount
            raise NotFoundError(f"there is no folder named '{name}'")

        return await self._db.write(work)

    async def page(self, mailbox: str, folder: str, offset: int, limit: int) -> tuple[list[ListedMessage], int]:
        """One page of a folder, newest first, and the folder's total."""

        def work(connection: sqlite3.Connection) -> tuple[list[ListedMessage], int]:
            counted = connection.execute(
                "SELECT total FROM webmail_folder_counts WHERE mailbox = ? AND folder = ?", (mailbox, folder)
            ).fetchone()
            total = counted[0] if counted else 0
            rows = connection.execute(
                f"SELECT {_LIST_COLUMNS} {_LIST_FROM} WHERE mm.id IN (SELECT id FROM mailbox_messages"
                " WHERE mailbox = ? AND folder = ? AND expunged = 0 ORDER BY id DESC LIMIT ? OFFSET ?)"
                " ORDER BY mm.id DESC",
                (mailbox, folder, limit, offset),
            )
            return [_listed(row) for row in rows], int(total)

        return await self._db.read(work)

    async def search(self, mailbox: str, expression: str, offset: int, limit: int) -> list[ListedMessage]:
        """Messages of mailbox matching an FTS5 expression (see core.search_query), newest first."""

        def work(connection: sqlite3.Connection) -> list[ListedMessage]:
            # CROSS JOIN keeps the full-text index as the outer loop: it yields hits newest first,
            # so the LIMIT stops the scan early even when a term matches most of the mailbox.
            rows = connection.execute(
                f"SELECT {_LIST_COLUMNS} FROM webmail_fts CROSS JOIN mailbox_messages mm ON mm.id = webmail_fts.rowid"
                " JOIN messages m ON m.queue_id = mm.queue_id LEFT JOIN webmail_index wi ON wi.queue_id = mm.queue_id"
                " WHERE webmail_fts MATCH ? AND mm.mailbox = ? AND mm.expunged = 0"
                " ORDER BY webmail_fts.rowid DESC LIMIT ? OFFSET ?",
                (expression, mailbox, limit, offset),
            )
            return [_listed(row) for row in rows]

        return await self._db.read(work)

    async def get(self, mailbox: str | None, message_id: int) -> StoredMessage | None:
        """One message of mailbox (expunged ones too; of any mailbox when mailbox is None), or None."""

        def work(connection: sqlite3.Connection) -> StoredMessage | None:
            row = connection.execute(
                "SELECT mm.id, mm.mailbox, mm.queue_id, mm.folder, mm.flags, m.sha256, m.size, mm.expunged"
                " FROM mailbox_messages mm JOIN messages m ON m.queue_id = mm.queue_id"
                " WHERE mm.id = ? AND mm.mailbox = COALESCE(?, mm.mailbox)",
                (message_id, mailbox),
            ).fetchone()
            if row is None:
                return None
            return StoredMessage(
                int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), int(row[6]), bool(row[7])
            )

        return await self._db.read(work)

    async def listed(self, mailbox: str, message_id: int) -> ListedMessage | None:
        """The list row of one message, or None."""

        def work(connection: sqlite3.Connection) -> ListedMessage | None:
            row = connection.execute(
                f"SELECT {_LIST_COLUMNS} {_LIST_FROM} WHERE mm.id = ? AND mm.mailbox = ?", (message_id, mailbox)
            ).fetchone()
            return None if row is None else _listed(row)

        return await self._db.read(work)

    async def set_flag(self, mailbox: str, ids: Sequence[int], flag: Flag, present: bool) -> int:
        """Set or clear flag on messages of mailbox; returns how many changed."""

        def work(connection: sqlite3.Connection) -> int:
            changed = 0
            now = time.time()
            for message_id in ids:
                row = connection.execute(
                    "SELECT flags FROM mailbox_messages WHERE id = ? AND mailbox = ?", (message_id, mailbox)
                ).fetchone()
                if row is None:
                    continue
                new = with_flag(str(row[0]), flag, present)
                if new != row[0]:
                    connection.execute(
                        "UPDATE mailbox_messages SET flags = ?, changed_at = ? WHERE id = ?", (new, now, message_id)
                    )
                    changed += 1
            return changed

        return await self._db.write(work)

    async def move(self, mailbox: str, ids: Sequence[int], folder: str) -> int:
        """Move messages of mailbox to folder (which must exist); returns how many moved."""

        def work(connection: sqlite3.Connection) -> int:
            now = time.time()
            return sum(
                connection.execute(
                    "UPDATE mailbox_messages SET folder = ?, changed_at = ? WHERE id = ? AND mailbox = ?"
                    " AND expunged = 0 AND folder != ?",
                    (folder, now, message_id, mailbox, folder),
                ).rowcount
                for message_id in ids
            )

        return await self._db.write(work)

    async def empty_trash(self, mailbox: str) -> int:
        """Mark every message in Trash expunged (kept for the replay to Deleted Items); returns the count."""

        def work(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "UPDATE mailbox_messages SET expunged = 1, changed_at = ? WHERE mailbox = ? AND folder = ?"
                " AND expunged = 0",
                (time.time(), mailbox, StandardFolder.TRASH.value),
            ).rowcount

        return await self._db.write(work)

    async def add_local(self, message: LocalMessage, replaces: int | None = None) -> int:
        """File a message written in the webmail (body made durable first); returns its id.

        With replaces, the draft with that id is removed in the same transaction.
        """
        sha256 = hashlib.sha256(message.content).hexdigest()
        await self._blobs.put(sha256, message.content)
        now = time.time()
        queue_id = new_queue_id(now)

        def work(connection: sqlite3.Connection) -> int:
            if replaces is not None:
                _delete_local(connection, message.mailbox, replaces)
            connection.execute(
                "INSERT INTO messages (queue_id, received_at, sender, size, sha256, message_id, subject,"
                " client_address, client_helo, trace_header, state) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)",
                (
                    queue_id,
                    now,
                    message.sender,
                    len(message.content),
                    sha256,
                    message.message_id,
                    message.subject[:998],
                    LOCAL_HELO,
                    b"",
                    MessageState.QUEUED.value,
                ),
            )
            cursor = connection.execute(
                "INSERT INTO mailbox_messages (mailbox, queue_id, folder, flags, delivered_at, changed_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (message.mailbox, queue_id, message.folder, message.flags, now, now),
            )
            return int(cursor.lastrowid or 0)

        return await self._db.write(work)

    async def delete_draft(self, mailbox: str, message_id: int) -> bool:
        """Remove a draft written in the webmail; False when there is none with that id."""
        return await self._db.write(lambda connection: _delete_local(connection, mailbox, message_id))

    async def pending_index(self, limit: int) -> list[PendingIndex]:
        """Mailbox rows not yet in the search index, oldest first."""
        return await self._db.read(lambda connection: pending_rows(connection, limit))

    async def index_backlog(self) -> bool:
        """True when some mailbox row is not yet indexed."""
        return await self._db.read(has_backlog)

    async def write_index(self, entries: Sequence[tuple[PendingIndex, IndexedSummary]]) -> None:
        """Store summaries and full-text rows of indexed mailbox rows, and advance the progress mark."""
        if entries:
            await self._db.write(lambda connection: store_index(connection, entries))


def _delete_local(connection: sqlite3.Connection, mailbox: str, message_id: int) -> bool:
    row = connection.execute(
        "SELECT mm.queue_id FROM mailbox_messages mm JOIN messages m ON m.queue_id = mm.queue_id"
        " WHERE mm.id = ? AND mm.mailbox = ? AND mm.folder = ? AND m.client_helo = ?",
        (message_id, mailbox, StandardFolder.DRAFTS.value, LOCAL_HELO),
    ).fetchone()
    if row is None:
        return False
    connection.execute("DELETE FROM messages WHERE queue_id = ?", (row[0],))
    return True
