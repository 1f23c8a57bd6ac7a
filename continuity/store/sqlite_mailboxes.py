"""Pre-provisioned mailboxes and aliases in SQLite."""

from __future__ import annotations

import sqlite3
import time

from continuity.core.models import DirectoryEntry, Mailbox, UpsertOutcome
from continuity.errors import InvalidInputError, NotFoundError
from continuity.store.sqlite_db import SqliteDatabase

_COLUMNS = "address, display_name, password_hash, enabled, alternate_email, created_at, updated_at"


def _aliases_of(connection: sqlite3.Connection, address: str) -> tuple[str, ...]:
    rows = connection.execute("SELECT alias FROM aliases WHERE mailbox = ? ORDER BY alias", (address,))
    return tuple(row[0] for row in rows)


def _mailbox_from(row: sqlite3.Row | tuple[object, ...], aliases: tuple[str, ...]) -> Mailbox:
    address, name, password_hash, enabled, alternate, created, updated = row
    return Mailbox(
        address=str(address),
        display_name=str(name),
        aliases=aliases,
        enabled=bool(enabled),
        alternate_email=str(alternate) if alternate else None,
        password_hash=str(password_hash) if password_hash else None,
        created_at=float(created),  # type: ignore[arg-type]
        updated_at=float(updated),  # type: ignore[arg-type]
    )


def _check_alias_conflicts(connection: sqlite3.Connection, mailbox: Mailbox) -> None:
    owner = connection.execute("SELECT mailbox FROM aliases WHERE alias = ?", (mailbox.address,)).fetchone()
    if owner is not None and owner[0] != mailbox.address:
        raise InvalidInputError(f"{mailbox.address} is already an alias of {owner[0]}")
    for alias in mailbox.aliases:
        if alias == mailbox.address:
            raise InvalidInputError(f"alias {alias} is the mailbox's own address")
        if connection.execute("SELECT 1 FROM mailboxes WHERE address = ?", (alias,)).fetchone():
            raise InvalidInputError(f"alias {alias} is already a mailbox of its own")
        owner = connection.execute("SELECT mailbox FROM aliases WHERE alias = ?", (alias,)).fetchone()
        if owner is not None and owner[0] != mailbox.address:
            raise InvalidInputError(f"alias {alias} already belongs to {owner[0]}")


class SqliteMailboxRepository:
    """MailboxRepository on SQLite."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def upsert(self, mailbox: Mailbox, *, keep_password: bool = True) -> UpsertOutcome:
        def work(connection: sqlite3.Connection) -> UpsertOutcome:
            _check_alias_conflicts(connection, mailbox)
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM mailboxes WHERE address = ?", (mailbox.address,)
            ).fetchone()
            now = time.time()
            if row is None:
                connection.execute(
                    f"INSERT INTO mailboxes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        mailbox.address,
                        mailbox.display_name,
                        mailbox.password_hash,
                        int(mailbox.enabled),
                        mailbox.alternate_email,
                        now,
                        now,
                    ),
                )
                connection.executemany(
                    "INSERT INTO aliases (alias, mailbox) VALUES (?, ?)",
                    [(alias, mailbox.address) for alias in sorted(set(mailbox.aliases))],
                )
                return UpsertOutcome.CREATED
            current = _mailbox_from(row, _aliases_of(connection, mailbox.address))
            password_hash = mailbox.password_hash
            if keep_password and password_hash is None:
                password_hash = current.password_hash
            wanted = (
                mailbox.display_name,
                mailbox.enabled,
                mailbox.alternate_email,
                password_hash,
                tuple(sorted(set(mailbox.aliases))),
            )
            existing = (
                current.display_name,
                current.enabled,
                current.alternate_email,
                current.password_hash,
                current.aliases,
            )
            if wanted == existing:
                return UpsertOutcome.UNCHANGED
            connection.execute(
                "UPDATE mailboxes SET display_name = ?, enabled = ?, alternate_email = ?,"
                " password_hash = ?, updated_at = ? WHERE address = ?",
                (
                    mailbox.display_name,
                    int(mailbox.enabled),
                    mailbox.alternate_email,
                    password_hash,
                    now,
                    mailbox.address,
                ),
            )
            if set(current.aliases) != set(mailbox.aliases):
                connection.execute("DELETE FROM aliases WHERE mailbox = ?", (mailbox.address,))
                connection.executemany(
                    "INSERT INTO aliases (alias, mailbox) VALUES (?, ?)",
                    [(alias, mailbox.address) for alias in sorted(set(mailbox.aliases))],
                )
            return UpsertOutcome.UPDATED

        return await self._db.write(work)

    async def get(self, address: str) -> Mailbox | None:
        def work(connection: sqlite3.Connection) -> Mailbox | None:
            row = connection.execute(f"SELECT {_COLUMNS} FROM mailboxes WHERE address = ?", (address,)).fetchone()
            return None if row is None else _mailbox_from(row, _aliases_of(connection, address))

        return await self._db.read(work)

    async def list(self) -> list[Mailbox]:
        def work(connection: sqlite3.Connection) -> list[Mailbox]:
            aliases: dict[str, list[str]] = {}
            for alias, owner in connection.execute("SELECT alias, mailbox FROM aliases ORDER BY alias"):
                aliases.setdefault(owner, []).append(alias)
            rows = connection.execute(f"SELECT {_COLUMNS} FROM mailboxes ORDER BY address").fetchall()
            return [_mailbox_from(row, tuple(aliases.get(row[0], ()))) for row in rows]

        return await self._db.read(work)

    async def _update(self, address: str, assignment: str, value: object) -> None:
        def work(connection: sqlite3.Connection) -> None:
            cursor = connection.execute(
                f"UPDATE mailboxes SET {assignment} = ?, updated_at = ? WHERE address = ?",
                (value, time.time(), address),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"no mailbox {address}")

        await self._db.write(work)

    async def set_enabled(self, address: str, enabled: bool) -> None:
        await self._update(address, "enabled", int(enabled))

    async def set_password_hash(self, address: str, password_hash: str) -> None:
        await self._update(address, "password_hash", password_hash)

    async def directory(self) -> dict[str, DirectoryEntry]:
        def work(connection: sqlite3.Connection) -> dict[str, DirectoryEntry]:
            entries = {
                str(address): DirectoryEntry(str(address), bool(enabled))
                for address, enabled in connection.execute("SELECT address, enabled FROM mailboxes")
            }
            query = "SELECT a.alias, m.address, m.enabled FROM aliases a JOIN mailboxes m ON m.address = a.mailbox"
            for alias, owner, enabled in connection.execute(query):
                entries[str(alias)] = DirectoryEntry(str(owner), bool(enabled))
            return entries

        return await self._db.read(work)

    async def directory_serial(self) -> int:
        def work(connection: sqlite3.Connection) -> int:
            row = connection.execute("SELECT value FROM counters WHERE name = 'directory'").fetchone()
            return int(row[0])

        return await self._db.read(work)
