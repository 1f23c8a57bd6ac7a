"""A compromised primary's hostile IMAP replies: the replay stays responsive, gives up on the server, loses nothing.

The appliance (in-process, so its event loop is the test's) replays into
tests.support.hostile_imap, which answers one command (LIST, SEARCH, FETCH or APPEND)
with a hostile reply: pathological quoting, a literal of two billion bytes announced or
100 MB of literals streamed, endless untagged lines or continuation requests, a line
without end, one byte every 100 ms. For each:

* a periodic tick on the event loop is never more than a second late;
* the replay gives up on the server within a bounded time, with the run's detail (what
  ``continuity replay status`` prints) naming the server and the bound;
* nothing is delivered or lost meanwhile: every copy is still queued (pending, delivering
  or deferred), none is replayed;
* once the server behaves again, the next passes deliver every message exactly once and
  the run completes (the switch back is not waited for: the stand-in has no SMTP).

A hostile reply within the bounds (thousands of backslashes and quotes in LIST lines) is
read in linear time and the replay completes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from continuity.cli.replay_view import print_status
from continuity.core.failover import FailoverEvent, FailoverState
from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import ReplayRun, RunStatus
from continuity.services.app import Running
from continuity.services.replay_status import collect_status
from tests.support.hostile_imap import HostileImapServer, Hostility
from tests.support.ports import free_port
from tests.support.replay import order, wait_for_run
from tests.support.webmail import deliver, mail, webmail_appliance

pytestmark = pytest.mark.slow

MESSAGES = 3
GIVE_UP_WITHIN = 20.0  # seconds from the failback order to the run's detail naming the bound
QUEUED = {ItemState.PENDING, ItemState.DELIVERING, ItemState.DEFERRED}


class Ticker:
    """A tick every 50 ms on the event loop; the worst lateness is how long the loop was blocked."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            expected = time.monotonic() + 0.05
            await asyncio.sleep(0.05)
            self.worst = max(self.worst, time.monotonic() - expected)

    def __enter__(self) -> Ticker:
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[HostileImapServer]:
    hostile = HostileImapServer(tmp_path)
    await hostile.start()
    try:
        yield hostile
    finally:
        await hostile.stop()


def _overrides(server: HostileImapServer, **replay: Any) -> dict[str, Any]:
    return {
        "primary": {"host": "127.0.0.1", "imap_port": server.port, "smtp_port": free_port()},
        "monitor": {"enabled": False, "interval": 0.2},
        "failover": {"mode": "gateway", "command_poll": 0.05, "retry_initial": 0.2},
        "replay": {
            "master_user": "replay",
            "master_password": "replay-secret",
            "ca_file": str(server.ca_file),
            "rate": 0,
            "poll": 0.2,
            "retry_initial": 1.0,
            "retry_max": 2.0,
            "timeout": 2.0,
            "dedup_check": "always",  # every delivery searches (SEARCH, then FETCH) before its APPEND
            "reply_lines_max": 1000,
            "reply_listing_max": 1024 * 1024,
            **replay,
        },
    }


async def _wait_for_give_up(running: Running, timeout: float) -> ReplayRun:
    deadline = time.monotonic() + timeout
    while True:
        run = await running.store.replay.latest_run()
        if run is not None and "gave up" in run.detail:
            return run
        assert time.monotonic() < deadline, f"the replay did not give up on the primary: {run}"
        await asyncio.sleep(0.05)


async def _queued(running: Running, run: ReplayRun) -> list[ItemState]:
    return [item.state for item in await running.store.replay.items(run.id)]


async def _fail_over_and_queue(running: Running, subject: str) -> None:
    await order(running, FailoverEvent.OPERATOR_FAILOVER)
    for number in range(MESSAGES):
        await deliver(running, mail(f"{subject} {number}", f"message {number}"))


HOSTILE_CASES = [
    ("LIST", Hostility.QUOTING_HUGE, "LIST line"),
    ("LIST", Hostility.HUGE_LITERAL, "LIST literal"),
    ("LIST", Hostility.ENDLESS_UNTAGGED, "LIST lines"),
    ("LIST", Hostility.ENDLESS_LINE, "LIST line"),
    ("LIST", Hostility.SLOW_DRIP, "LIST deadline"),
    ("SEARCH", Hostility.ENDLESS_UNTAGGED, "SEARCH lines"),
    ("SEARCH", Hostility.ENDLESS_LINE, "SEARCH line"),
    ("SEARCH", Hostility.SLOW_DRIP, "SEARCH deadline"),
    ("FETCH", Hostility.QUOTING, "FETCH line"),
    ("FETCH", Hostility.HUGE_LITERAL, "FETCH literal"),
    ("FETCH", Hostility.STREAMED_LITERALS, "FETCH literal"),
    ("FETCH", Hostility.ENDLESS_UNTAGGED, "FETCH lines"),
    ("APPEND", Hostility.ENDLESS_CONTINUATION, "APPEND continuations"),
    ("APPEND", Hostility.SLOW_DRIP, "APPEND deadline"),
]


@pytest.mark.parametrize(("command", "hostility", "bound"), HOSTILE_CASES, ids=lambda value: str(value))
async def test_a_hostile_reply_makes_the_replay_give_up_without_loss(
    tmp_path: Path,
    server: HostileImapServer,
    capsys: pytest.CaptureFixture[str],
    command: str,
    hostility: Hostility,
    bound: str,
) -> None:
    subject = f"Hostile {command} {hostility.value}"
    server.hostile[command] = hostility
    async with webmail_appliance(tmp_path / "data", **_overrides(server)) as running:
        with Ticker() as ticker:
            await _fail_over_and_queue(running, subject)
            started = time.monotonic()
            await order(running, FailoverEvent.OPERATOR_FAILBACK)
            run = await _wait_for_give_up(running, GIVE_UP_WITHIN)
            gave_up_after = time.monotonic() - started
            # It named the server and the bound, where `continuity replay status` shows it.
            assert f"127.0.0.1:{server.port}" in run.detail and f"bound: {bound}" in run.detail, run.detail
            print_status(await collect_status(running.store, run))
            assert f"bound: {bound}" in capsys.readouterr().out
            # Nothing delivered, nothing lost: every copy still waits in the queue.
            states = await _queued(running, run)
            assert len(states) == MESSAGES and set(states) <= QUEUED, states
            assert server.copies(subject) == 0 and server.hostile_replies >= 1
            assert running.failover is not None
            assert running.failover.controller.record.state is FailoverState.RESTORING
            # The server behaves again: the next passes deliver each message exactly once.
            server.hostile.clear()
            await wait_for_run(running, RunStatus.COMPLETED, 60)
        final = await running.store.replay.items(run.id)
    assert gave_up_after < GIVE_UP_WITHIN
    assert ticker.worst < 1.0, f"the event loop was blocked for {ticker.worst:.2f} s"
    assert all(item.state is ItemState.DELIVERED for item in final), [item.state for item in final]
    assert [server.copies(f"{subject} {number}") for number in range(MESSAGES)] == [1] * MESSAGES


async def test_hostile_quoting_within_the_bounds_is_read_in_linear_time(
    tmp_path: Path, server: HostileImapServer
) -> None:
    # Only LIST: a SEARCH answered this way would say that no copy is on the primary, and the
    # verification at the end would deliver again (a primary that lies about its content
    # can always cause duplicates; tests/unit/adapters/test_imap_reply_patterns.py covers SEARCH).
    subject = "Quoting in LIST"
    server.hostile["LIST"] = Hostility.QUOTING
    async with webmail_appliance(tmp_path / "data", **_overrides(server)) as running:
        with Ticker() as ticker:
            await _fail_over_and_queue(running, subject)
            await order(running, FailoverEvent.OPERATOR_FAILBACK)
            await wait_for_run(running, RunStatus.COMPLETED, 60)
        run = await running.store.replay.latest_run()
        assert run is not None and "gave up" not in run.detail
    assert server.hostile_replies >= 1
    assert ticker.worst < 1.0, f"the event loop was blocked for {ticker.worst:.2f} s"
    assert [server.copies(f"{subject} {number}") for number in range(MESSAGES)] == [1] * MESSAGES
