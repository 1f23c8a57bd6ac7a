"""The audit log: append-only in SQLite, hash-chained, head anchored; tampering is found."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.core.audit import AuditRecord
from continuity.store.sqlite import SqliteStore, open_sqlite_store
from tests.support.appliance import ServeProcess, clean_env


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "continuity.db", tmp_path / "blobs")
    try:
        yield opened
    finally:
        await opened.close()


async def _fill(store: SqliteStore, count: int = 5) -> None:
    for number in range(count):
        await store.audit.append(
            AuditRecord.of(
                "operator:alice", "failover", f"outage {number}", {"probes": [{"smtp": "down"}], "n": number}
            )
        )


async def test_chain_verifies_and_lists_in_order(store: SqliteStore) -> None:
    await _fill(store)
    verdict = await store.audit.verify()
    assert verdict.ok and verdict.entries == 5
    entries = await store.audit.list(3)
    assert [entry.seq for entry in entries] == [3, 4, 5]
    assert entries[0].details == {"n": 2, "probes": [{"smtp": "down"}]}
    assert entries[1].prev_hash == entries[0].hash


async def test_sql_updates_and_deletes_are_refused(store: SqliteStore, tmp_path: Path) -> None:
    await _fill(store, 2)
    connection = sqlite3.connect(tmp_path / "continuity.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("DELETE FROM audit_log WHERE seq = 2")
    connection.close()


def _tamper(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    connection.execute("DROP TRIGGER audit_log_is_append_only_update")
    connection.execute("DROP TRIGGER audit_log_is_append_only_delete")
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()


@pytest.mark.parametrize(
    ("statements", "bad_seq", "problem"),
    [
        (["UPDATE audit_log SET reason = 'routine' WHERE seq = 3"], 3, "altered"),
        (["DELETE FROM audit_log WHERE seq = 2"], 3, "entry 2 is missing"),
        (["DELETE FROM audit_log WHERE seq >= 4"], 4, "entries 4 to 5 were removed"),
        (["UPDATE audit_log SET prev_hash = hash WHERE seq = 2"], 2, "link"),
    ],
)
async def test_tampering_is_detected(tmp_path: Path, statements: list[str], bad_seq: int, problem: str) -> None:
    store = await open_sqlite_store(tmp_path / "continuity.db", tmp_path / "blobs")
    await _fill(store)
    await store.close()
    _tamper(tmp_path / "continuity.db", *statements)
    store = await open_sqlite_store(tmp_path / "continuity.db", tmp_path / "blobs")
    verdict = await store.audit.verify()
    await store.close()
    assert not verdict.ok
    assert verdict.first_bad_seq == bad_seq
    assert problem in verdict.problem


async def test_a_rebuilt_chain_is_caught_by_the_head(tmp_path: Path) -> None:
    store = await open_sqlite_store(tmp_path / "continuity.db", tmp_path / "blobs")
    await _fill(store, 3)
    await store.close()
    head = (tmp_path / "continuity.db.audit-head").read_text()
    # An attacker empties the log and writes a fresh, self-consistent chain.
    _tamper(tmp_path / "continuity.db", "DELETE FROM audit_log")
    store = await open_sqlite_store(tmp_path / "continuity.db", tmp_path / "blobs")
    await _fill(store, 3)
    (tmp_path / "continuity.db.audit-head").write_text(head)
    verdict = await store.audit.verify()
    await store.close()
    assert not verdict.ok and "rewritten" in verdict.problem


def test_cli_verify_exit_codes(tmp_path: Path) -> None:
    served = ServeProcess(tmp_path)

    async def fill() -> None:
        store = await open_sqlite_store(tmp_path / "data" / "continuity.db", tmp_path / "data" / "blobs")
        await _fill(store, 4)
        await store.close()

    import asyncio

    asyncio.run(fill())
    ok = served.cli("audit", "verify")
    assert ok.stdout.strip() == "Audit log intact: 4 entries, hash chain and head verified."
    listed = json.loads(served.cli("audit", "list", "--json").stdout)
    assert [entry["seq"] for entry in listed] == [1, 2, 3, 4] and listed[0]["actor"] == "operator:alice"
    _tamper(tmp_path / "data" / "continuity.db", "UPDATE audit_log SET actor = 'nobody' WHERE seq = 2")
    result = subprocess.run(
        [sys.executable, "-m", "continuity", "--config", str(served.config_path), "audit", "verify"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert "the audit log was tampered with at entry 2" in result.stderr
