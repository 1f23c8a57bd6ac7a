"""TOTP secrets are encrypted with the key file: never in clear in the database, migrated and rotated on open."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from continuity.core.mailbox_rows import build_mailbox
from continuity.errors import StorageError
from continuity.store.secret_keys import new_key
from continuity.store.sqlite import SqliteStore, open_sqlite_store

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _stored(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return str(connection.execute("SELECT secret FROM webmail_totp").fetchone()[0])


async def _open(tmp_path: Path, key: Path | None = None) -> SqliteStore:
    key_path = key or tmp_path / "keys" / "webmail.key"
    return await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs", key_path=key_path)


async def test_secrets_are_encrypted_with_a_key_outside_the_database(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    try:
        await store.mailboxes.upsert(build_mailbox("alice@example.com", "Alice", domains=["example.com"]))
        await store.webmail_auth.start_totp("alice@example.com", SECRET)
        record = await store.webmail_auth.totp("alice@example.com")
        assert record is not None and record.secret == SECRET
    finally:
        await store.close()
    stored = _stored(tmp_path / "db.sqlite")
    assert SECRET not in stored and stored.startswith("fernet:")
    key_file = tmp_path / "keys" / "webmail.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


async def test_clear_rows_are_encrypted_on_open_and_keys_rotate(tmp_path: Path) -> None:
    # A database written before encryption: the secret in clear.
    store = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs")
    await store.mailboxes.upsert(build_mailbox("alice@example.com", "Alice", domains=["example.com"]))
    await store.database.write(
        lambda c: c.execute(
            "INSERT INTO webmail_totp (mailbox, secret, enabled, last_step, created_at)"
            " VALUES ('alice@example.com', ?, 1, 0, 0)",
            (SECRET,),
        )
    )
    await store.close()
    key_file = tmp_path / "keys" / "webmail.key"
    store = await _open(tmp_path)
    try:
        record = await store.webmail_auth.totp("alice@example.com")
        assert record is not None and record.secret == SECRET and record.enabled
    finally:
        await store.close()
    first = _stored(tmp_path / "db.sqlite")
    assert first.startswith("fernet:") and SECRET not in first
    # Rotation: a new key on the first line, the old one kept below; the next open re-encrypts.
    old = key_file.read_text()
    key_file.write_text(new_key() + "\n" + old)
    store = await _open(tmp_path)
    await store.close()
    second = _stored(tmp_path / "db.sqlite")
    assert second != first
    key_file.write_text(key_file.read_text().splitlines()[0] + "\n")  # the old key is gone
    store = await _open(tmp_path)
    try:
        record = await store.webmail_auth.totp("alice@example.com")
        assert record is not None and record.secret == SECRET
    finally:
        await store.close()


async def test_a_wrong_key_file_still_opens_and_says_which_secrets_are_unreadable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await _open(tmp_path)
    await store.mailboxes.upsert(build_mailbox("alice@example.com", "Alice", domains=["example.com"]))
    await store.webmail_auth.start_totp("alice@example.com", SECRET)
    await store.close()
    stored = _stored(tmp_path / "db.sqlite")
    # A lost key file: the appliance still opens (it must serve mail); that secret cannot be used.
    store = await _open(tmp_path, tmp_path / "other.key")
    try:
        assert "do not decrypt with the webmail key file (alice@example.com)" in caplog.text
        with pytest.raises(StorageError, match="does not decrypt"):
            await store.webmail_auth.totp("alice@example.com")
        await store.webmail_auth.disable_totp("alice@example.com")  # what reset-totp does
        assert await store.webmail_auth.totp("alice@example.com") is None
    finally:
        await store.close()
    assert _stored_or_none(tmp_path / "db.sqlite") is None and stored.startswith("fernet:")
    (tmp_path / "bad.key").write_text("not a key\n")
    with pytest.raises(StorageError, match="not a Fernet key"):
        await _open(tmp_path, tmp_path / "bad.key")


def _stored_or_none(database: Path) -> str | None:
    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT secret FROM webmail_totp").fetchone()
    return None if row is None else str(row[0])
