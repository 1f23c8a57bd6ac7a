"""The failover repository: state survives reopening, versions guard against two writers."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState, Routing, apply
from continuity.core.failover_records import CommandStatus
from continuity.core.health import HealthMemory
from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult
from continuity.errors import StorageError
from continuity.store.sqlite import open_sqlite_store


async def test_state_history_commands_and_probes_survive_reopening(tmp_path: Path) -> None:
    store = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs")
    assert await store.failover.load() == FailoverRecord()
    step = apply(FailoverRecord(), FailoverEvent.OPERATOR_COMPROMISE, at=10.0, actor="cli:root", reason="phish")
    entry = await store.failover.save(step.record, step.previous, step.event, '{"note":"phish"}')
    assert entry.seq == 1 and entry.state is FailoverState.COMPROMISED and entry.previous is FailoverState.NORMAL
    with pytest.raises(StorageError, match="changed meanwhile"):
        await store.failover.save(step.record, step.previous, step.event, "{}")
    command = await store.failover.submit("api", FailoverEvent.OPERATOR_PAUSE, "maintenance")
    assert [c.id for c in await store.failover.pending()] == [command.id]
    await store.failover.finish(command.id, CommandStatus.DONE, "PAUSED")
    assert await store.failover.pending() == []
    done = await store.failover.command(command.id)
    assert done is not None and done.status is CommandStatus.DONE and done.result == "PAUSED"
    probe = ProbeResult("smtp", ProbeKind.SMTP, ProbeOutcome.DOWN, 0.25, "refused", 99.0, ("cert expires in 3 days",))
    await store.failover.record_probes([probe])
    await store.failover.record_probes([probe])
    await store.close()

    reopened = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs")
    try:
        record = await reopened.failover.load()
        assert record == step.record and record.routing is Routing.PRIMARY and record.version == 1
        assert [t.reason for t in await reopened.failover.history()] == ["phish"]
        assert await reopened.failover.latest_probes() == [probe]
    finally:
        await reopened.close()


async def test_the_health_memory_survives_reopening(tmp_path: Path) -> None:
    store = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs")
    assert await store.failover.load_health() is None
    await store.failover.save_health(HealthMemory(0, 0.0, 12, 1000.0, None, 1165.0))
    memory = HealthMemory(2, 1180.0, 0, 0.0, 1150.0, 1195.0)
    await store.failover.save_health(memory)
    await store.close()
    reopened = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs")
    try:
        assert await reopened.failover.load_health() == memory
    finally:
        await reopened.close()
