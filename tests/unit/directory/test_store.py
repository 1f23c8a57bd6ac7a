"""The directory sync's SQLite tables: links with groups, cursors, runs."""

from __future__ import annotations

from pathlib import Path

from continuity.directory.core.links import DirectoryLink, SyncRun
from continuity.store.sqlite import open_sqlite_store


async def test_links_cursors_and_runs_round_trip(tmp_path: Path) -> None:
    store = await open_sqlite_store(tmp_path / "c.db", tmp_path / "blobs")
    try:
        repository = store.directory_sync
        links = {
            "g1": DirectoryLink("g1", "alice@example.com", frozenset({"Finance", "Board"}), "+41 79 555 01 01"),
            "g2": DirectoryLink("g2", "bob@example.com", frozenset({"Finance"}), None, True, True),
        }
        await repository.save_links(links)
        assert await repository.links() == links
        assert await repository.groups() == {
            "Board": ["alice@example.com"],
            "Finance": ["alice@example.com", "bob@example.com"],
        }
        await repository.save_links({"g1": links["g1"]})
        assert set(await repository.links()) == {"g1"}
        assert await repository.cursor("ad") == ""
        await repository.set_cursor("ad", '{"usn": 5}')
        await repository.set_cursor("ad", '{"usn": 9}')
        assert await repository.cursor("ad") == '{"usn": 9}'
        for index in range(105):
            await repository.record_run(
                SyncRun(float(index), "ad", "usn", "applied", f"run {index}", {"create": index})
            )
        runs = await repository.runs(200)
        assert len(runs) == 100 and runs[0].summary == "run 104" and runs[0].counts == {"create": 104}
    finally:
        await store.close()
