"""Helpers of the replay tests: the primary stand-in's users, appliance settings for replay, failover orders."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from continuity.core.failover import FailoverEvent, FailoverState
from continuity.core.replay_records import ReplayRun, RunStatus
from continuity.services.app import Running
from tests.support.appliance import _merge
from tests.support.primary import MASTER_USER, PrimaryStandIn

USERS = {"alice@example.com": "alice-secret", "bob@example.com": "bob-secret"}


def replay_overrides(stand_in: PrimaryStandIn, **overrides: Any) -> dict[str, Any]:
    """Settings for an appliance that replays into the stand-in (gateway mode, no probes unless overridden)."""
    base = stand_in.settings()
    base["monitor"].update({"enabled": False, "interval": 0.2})
    base["failover"] = {"mode": "gateway", "command_poll": 0.05, "retry_initial": 0.2}
    base["replay"] = {
        "master_user": MASTER_USER,
        "master_password": stand_in.master_password,
        "ca_file": str(stand_in.ca_file),
        "rate": 0,
        "poll": 0.2,
        "retry_initial": 0.5,
        "retry_max": 2.0,
        "throttle_pause": 0.2,
        "throttle_pause_max": 2.0,
        "timeout": 15,
    }
    base["webmail"] = {"cookie_secure": False}
    return _merge(base, overrides)


def master_login(mailbox: str) -> str:
    """How the tests log in to a mailbox of the stand-in as the master user."""
    return f"{mailbox}*{MASTER_USER}"


async def order(running: Running, event: FailoverEvent, note: str = "test") -> FailoverState:
    """Fire an operator event on the running appliance's controller; returns the state after it."""
    assert running.failover is not None
    await running.failover.controller.fire(event, actor="test", reason=note)
    return running.failover.controller.record.state


async def wait_for_state(running: Running, state: FailoverState, timeout: float = 60.0) -> None:
    """Wait until the failover state is state (the monitor and the replayer move it)."""
    assert running.failover is not None
    deadline = time.monotonic() + timeout
    while running.failover.controller.record.state is not state:
        if time.monotonic() > deadline:
            record = running.failover.controller.record
            raise AssertionError(f"state is {record.state.value} ({record.reason}), not {state.value}")
        await asyncio.sleep(0.05)


async def wait_for_run(running: Running, status: RunStatus, timeout: float = 60.0) -> ReplayRun:
    """Wait until the latest replay run has status."""
    deadline = time.monotonic() + timeout
    while True:
        run = await running.store.replay.latest_run()
        if run is not None and run.status is status:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"the latest run is {run}, not {status.value}")
        await asyncio.sleep(0.05)


def premature_settlements(database: Path) -> list[str]:
    """Messages marked replayed although one of their standby copies has no delivered journal item."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        rows = connection.execute(
            "SELECT DISTINCT m.queue_id FROM messages m JOIN mailbox_messages mm ON mm.queue_id = m.queue_id"
            " WHERE m.state = 'replayed' AND NOT EXISTS (SELECT 1 FROM replay_items ri WHERE ri.queue_id ="
            " mm.queue_id AND ri.mailbox = mm.mailbox AND ri.state = 'delivered')"
        ).fetchall()
    finally:
        connection.close()
    return [str(row[0]) for row in rows]
