"""The sync service against a real SQLite store with a source that returns given batches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.core.models import Mailbox
from continuity.directory.core.records import DirectoryUser, SourceBatch
from continuity.directory.notice import GuardNotice
from continuity.directory.service import DirectorySync
from continuity.store.sqlite import SqliteStore, open_sqlite_store


class ListedSource:
    """Returns the batches it was given, one per read, and remembers the cursors it was asked for."""

    name = "ad"

    def __init__(self, *batches: SourceBatch) -> None:
        self.batches = list(batches)
        self.cursors: list[str] = []

    async def read(self, cursor: str) -> SourceBatch:
        self.cursors.append(cursor)
        return self.batches.pop(0)


def _users(count: int) -> tuple[DirectoryUser, ...]:
    return tuple(DirectoryUser(f"id{index}", f"user{index}@example.com", f"User {index}") for index in range(count))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "c.db", tmp_path / "blobs")
    yield opened
    await opened.close()


async def test_a_repeated_refusal_alerts_once_and_keeps_the_cursor(store: SqliteStore) -> None:
    everyone = _users(4)
    gone = SourceBatch((), present=frozenset({"id3"}), cursor="after-deletions")
    source = ListedSource(
        SourceBatch(everyone, present=frozenset(u.external_id for u in everyone), cursor="c1"), gone, gone
    )
    alerts: list[GuardNotice] = []
    sync = DirectorySync(store, source, ["example.com"], None, alert=alerts.append, appliance="mx.example.com")
    assert (await sync.run()).outcome == "applied"
    assert (await sync.run()).outcome == "refused"
    assert (await sync.run()).outcome == "refused"
    assert len(alerts) == 1 and alerts[0].removals == 3 and alerts[0].limit == 1
    assert "user0@example.com" in alerts[0].text() and "--allow-removals" in alerts[0].text()
    assert source.cursors == ["", "c1", "c1"]


async def test_dry_run_changes_and_records_nothing(store: SqliteStore) -> None:
    source = ListedSource(SourceBatch(_users(2), cursor="c1"))
    report = await DirectorySync(store, source, ["example.com"], None).run(dry_run=True)
    assert report.counts["create"] == 2
    assert await store.mailboxes.list() == []
    assert await store.directory_sync.runs() == [] and await store.directory_sync.cursor("ad") == ""
    assert await store.audit.list() == []


async def test_a_failed_change_is_reported_and_the_cursor_stays(store: SqliteStore) -> None:
    await store.mailboxes.upsert(Mailbox("other@example.com", "Other", ("taken@example.com",)))
    clash = DirectoryUser("idX", "taken@example.com", "Clash")
    source = ListedSource(SourceBatch((clash, *_users(1)), cursor="c1"))
    report = await DirectorySync(store, source, ["example.com"], None).run()
    assert report.outcome == "partial"
    assert report.errors and "taken@example.com" in report.errors[0]
    assert await store.directory_sync.cursor("ad") == ""
    assert set(await store.directory_sync.links()) == {"id0"}  # the clash left no link behind
