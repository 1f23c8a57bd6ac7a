"""Webmail authentication state in SQLite: sessions, TOTP secrets, activation tokens, failures.

Secrets presented by users (session cookies, activation tokens) are stored only as
SHA-256 digests, so a copy of the database does not let anyone sign in. TOTP secrets,
which the appliance must read back, are encrypted with the key file outside the database
(continuity.store.secret_keys); rows written before that are encrypted when the store opens.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence

from continuity.core.login_throttle import Attempt, FailureCounts, KeyFailures, Throttled
from continuity.core.webmail_models import SessionRecord, SessionStage, TotpRecord
from continuity.errors import StorageError
from continuity.store.secret_keys import KeyRing
from continuity.store.sqlite_db import SqliteDatabase

log = logging.getLogger("continuity.store")


def digest(secret: str) -> str:
    """The stored form of a session cookie or an activation token."""
    return hashlib.sha256(secret.encode()).hexdigest()


class SqliteWebmailAuthRepository:
    """Sessions, second factors, activation tokens and the login throttle's counters."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database
        self._keys: KeyRing | None = None

    def _ring(self) -> KeyRing:
        if self._keys is None:
            raise StorageError("the webmail key file is not loaded")
        return self._keys

    def protect_totp_sync(self, keys: KeyRing) -> int:
        """Use keys from now on and encrypt (or re-encrypt) every TOTP secret not under the first key; blocking.

        Runs when the store opens, before anything else writes; returns how many rows changed.
        A secret no key decrypts (a lost or wrong key file) is left as it is and logged: the
        appliance still serves mail, and only those users' second step fails until an
        operator resets it (``continuity webmail reset-totp``).
        """
        self._keys = keys

        def work(connection: sqlite3.Connection) -> int:
            changed, unreadable = [], []
            for mailbox, secret in connection.execute("SELECT mailbox, secret FROM webmail_totp").fetchall():
                if keys.current(str(secret)):
                    continue
                try:
                    changed.append((keys.encrypt(keys.decrypt(str(secret))), str(mailbox)))
                except StorageError:
                    unreadable.append(str(mailbox))
            connection.executemany("UPDATE webmail_totp SET secret = ? WHERE mailbox = ?", changed)
            if unreadable:
                log.error(
                    "the TOTP secrets of %d mailbox(es) do not decrypt with the webmail key file (%s): "
                    "their two-step sign-in fails until 'continuity webmail reset-totp'",
                    len(unreadable),
                    ", ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else ""),
                )
            return len(changed)

        return self._db.transact_sync(work)

    async def create_session(
        self, token: str, mailbox: str, csrf_token: str, stage: SessionStage, client_address: str
    ) -> None:
        """Store a new session under the digest of token."""
        now = time.time()
        await self._db.write(
            lambda c: c.execute(
                "INSERT INTO webmail_sessions (token_hash, mailbox, csrf_token, stage, created_at, last_seen,"
                " client_address) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest(token), mailbox, csrf_token, stage.value, now, now, client_address),
            )
        )

    async def session(self, token: str) -> SessionRecord | None:
        """The session for a cookie value, or None."""

        def work(connection: sqlite3.Connection) -> SessionRecord | None:
            row = connection.execute(
                "SELECT token_hash, mailbox, csrf_token, stage, created_at, last_seen FROM webmail_sessions"
                " WHERE token_hash = ?",
                (digest(token),),
            ).fetchone()
            if row is None:
                return None
            return SessionRecord(
                str(row[0]), str(row[1]), str(row[2]), SessionStage(str(row[3])), float(row[4]), float(row[5])
            )

        return await self._db.read(work)

    async def touch_session(self, token_hash: str, now: float) -> None:
        """Record activity on a session (for the idle timeout)."""
        await self._db.write(
            lambda c: c.execute("UPDATE webmail_sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash))
        )

    async def delete_session(self, token_hash: str) -> None:
        """End one session."""
        await self._db.write(lambda c: c.execute("DELETE FROM webmail_sessions WHERE token_hash = ?", (token_hash,)))

    async def delete_sessions_of(self, mailbox: str, keep: str | None = None) -> int:
        """End every session of mailbox except the one with digest keep; returns how many ended."""
        return await self._db.write(
            lambda c: (
                c.execute(
                    "DELETE FROM webmail_sessions WHERE mailbox = ? AND token_hash != ?", (mailbox, keep or "")
                ).rowcount
            )
        )

    async def delete_expired_sessions(self, idle_before: float, created_before: float) -> int:
        """Remove sessions idle since idle_before or created before created_before."""
        return await self._db.write(
            lambda c: (
                c.execute(
                    "DELETE FROM webmail_sessions WHERE last_seen < ? OR created_at < ?", (idle_before, created_before)
                ).rowcount
            )
        )

    async def totp(self, mailbox: str) -> TotpRecord | None:
        """The mailbox's TOTP secret, or None."""
        ring = self._ring()

        def work(connection: sqlite3.Connection) -> TotpRecord | None:
            row = connection.execute(
                "SELECT secret, enabled, last_step FROM webmail_totp WHERE mailbox = ?", (mailbox,)
            ).fetchone()
            return None if row is None else TotpRecord(ring.decrypt(str(row[0])), bool(row[1]), int(row[2]))

        return await self._db.read(work)

    async def start_totp(self, mailbox: str, secret: str) -> None:
        """Store a new, not yet confirmed secret (replacing an unconfirmed one; never an enabled one)."""
        stored = self._ring().encrypt(secret)

        def work(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM webmail_totp WHERE mailbox = ? AND enabled = 0", (mailbox,))
            connection.execute(
                "INSERT OR IGNORE INTO webmail_totp (mailbox, secret, enabled, last_step, created_at)"
                " VALUES (?, ?, 0, 0, ?)",
                (mailbox, stored, time.time()),
            )

        await self._db.write(work)

    async def use_totp_step(self, mailbox: str, step: int, *, enable: bool) -> bool:
        """Record a code's time step as used; False when it (or a later one) was used before (a replay)."""

        def work(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "UPDATE webmail_totp SET last_step = ?, enabled = MAX(enabled, ?) WHERE mailbox = ? AND last_step < ?",
                (step, int(enable), mailbox, step),
            )
            return cursor.rowcount == 1

        return await self._db.write(work)

    async def disable_totp(self, mailbox: str) -> bool:
        """Remove the second factor; False when there was none."""
        return await self._db.write(
            lambda c: c.execute("DELETE FROM webmail_totp WHERE mailbox = ?", (mailbox,)).rowcount > 0
        )

    async def create_activation(self, token: str, mailbox: str, lifetime: float) -> None:
        """Store a one-time activation token (earlier unused ones of mailbox stop working)."""
        now = time.time()

        def work(connection: sqlite3.Connection) -> None:
            connection.execute(
                "DELETE FROM webmail_activation_tokens WHERE mailbox = ? AND used_at IS NULL", (mailbox,)
            )
            connection.execute(
                "INSERT INTO webmail_activation_tokens (token_hash, mailbox, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (digest(token), mailbox, now, now + lifetime),
            )

        await self._db.write(work)

    async def activation_mailbox(self, token: str) -> str | None:
        """The mailbox a valid (unused, unexpired) token activates, or None."""

        def work(connection: sqlite3.Connection) -> str | None:
            row = connection.execute(
                "SELECT mailbox FROM webmail_activation_tokens WHERE token_hash = ? AND used_at IS NULL"
                " AND expires_at > ?",
                (digest(token), time.time()),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._db.read(work)

    async def consume_activation(self, token: str, password_hash: str) -> str | None:
        """Use a valid token once: set the mailbox's password; returns the mailbox, or None when invalid."""

        def work(connection: sqlite3.Connection) -> str | None:
            now = time.time()
            row = connection.execute(
                "UPDATE webmail_activation_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"
                " AND expires_at > ? RETURNING mailbox",
                (now, digest(token), now),
            ).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE mailboxes SET password_hash = ?, updated_at = ? WHERE address = ?", (password_hash, now, row[0])
            )
            return str(row[0])

        return await self._db.write(work)

    async def record_failure(self, keys: tuple[str, ...], now: float) -> None:
        """Count one failed attempt under each key."""
        await self._db.write(
            lambda c: c.executemany(
                "INSERT INTO webmail_auth_failures (key, at) VALUES (?, ?)", [(k, now) for k in keys]
            )
        )

    async def begin_attempt(
        self, keys: Sequence[str], since: float, now: float, judge: Callable[[list[KeyFailures]], Throttled | None]
    ) -> Attempt:
        """Count the failures of keys since a time and, unless judge throttles, record this attempt as one.

        Counting and recording are one write transaction, so concurrent attempts are
        counted one after the other and none gets past a limit. The caller forgets the
        recorded rows when the attempt succeeds; a failed attempt is already counted.
        """

        def work(connection: sqlite3.Connection) -> Attempt:
            counted = []
            for key in keys:
                row = connection.execute(
                    "SELECT COUNT(*), COALESCE(MAX(at), 0) FROM webmail_auth_failures WHERE key = ? AND at >= ?",
                    (key, since),
                ).fetchone()
                counted.append(KeyFailures(int(row[0]), float(row[1])))
            throttled = judge(counted)
            if throttled is not None:
                return Attempt(throttled, ())
            recorded = tuple(
                int(
                    connection.execute(
                        "INSERT INTO webmail_auth_failures (key, at) VALUES (?, ?)", (key, now)
                    ).lastrowid
                    or 0
                )
                for key in keys
            )
            return Attempt(None, recorded)

        return await self._db.write(work)

    async def forget_attempt(self, recorded: Sequence[int]) -> None:
        """Remove the rows of an attempt that succeeded (it was no failure)."""
        await self._db.write(
            lambda c: c.executemany("DELETE FROM webmail_auth_failures WHERE rowid = ?", [(i,) for i in recorded])
        )

    async def clear_failures(self, key: str) -> None:
        """Forget the failures of key (after a successful sign-in)."""
        await self._db.write(lambda c: c.execute("DELETE FROM webmail_auth_failures WHERE key = ?", (key,)))

    async def failure_counts(self, account_key: str, ip_key: str, since: float) -> FailureCounts:
        """Failures of both keys since a time, with the oldest of each."""

        def work(connection: sqlite3.Connection) -> FailureCounts:
            def one(key: str) -> tuple[int, float]:
                row = connection.execute(
                    "SELECT COUNT(*), COALESCE(MIN(at), 0) FROM webmail_auth_failures WHERE key = ? AND at >= ?",
                    (key, since),
                ).fetchone()
                return int(row[0]), float(row[1])

            account, account_oldest = one(account_key)
            ip, ip_oldest = one(ip_key)
            return FailureCounts(account, account_oldest, ip, ip_oldest)

        return await self._db.read(work)

    async def prune_failures(self, before: float) -> None:
        """Drop failures older than before."""
        await self._db.write(lambda c: c.execute("DELETE FROM webmail_auth_failures WHERE at < ?", (before,)))
