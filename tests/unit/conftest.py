"""Fixtures shared by the unit tests: a fresh SQLite store in the test's temporary directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.store.sqlite import SqliteStore, open_sqlite_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An empty store at tmp_path/db.sqlite with its bodies under tmp_path/blobs (a module may define its own)."""
    opened = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs", recover=True)
    try:
        yield opened
    finally:
        await opened.close()
