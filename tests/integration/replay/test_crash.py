"""Crashes during the replay: nothing lost, nothing duplicated.

* ``continuity replay`` is killed with SIGKILL at random points of its work, five times,
  then run to the end: every message is on the primary exactly once and the state is
  NORMAL again.
* The narrowest window, deterministically: the primary has said OK to an APPEND but the
  journal still says "delivering" (the process died in between). The next run finds the
  copy (same Message-ID, same content hash) and does not append it again.
"""

from __future__ import annotations

import asyncio
import random
import smtplib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from continuity.adapters.imap_append import MailboxSession
from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState
from continuity.core.replay_journal import ItemState, OutcomeKind
from continuity.core.replay_plan import Channel, join_path, marker_value
from continuity.core.replay_records import RunKind
from continuity.services.replayer import ReplayService
from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import ServeProcess, clean_env
from tests.support.imap_mailbox import duplicates, read_mailbox
from tests.support.messages import make_message
from tests.support.primary import PrimaryStandIn
from tests.support.replay import master_login, order, replay_overrides
from tests.support.webmail import deliver, mail, webmail_appliance

pytestmark = pytest.mark.slow

MESSAGES = 240
KILLS = 5


def _send_all(port: int) -> dict[str, int]:
    """Deliver MESSAGES messages (some to both mailboxes); returns copies expected per mailbox."""
    expected = {"alice@example.com": 0, "bob@example.com": 0}
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for number in range(MESSAGES):
            recipients = ["alice@example.com"] if number % 3 else ["alice@example.com", "bob@example.com"]
            if number % 5 == 0:
                recipients = ["bob@example.com"]
            body = make_message(subject=f"Crash test {number:03d}", body_lines=5)
            client.sendmail("sender@outside.test", recipients, body)
            for recipient in recipients:
                expected[recipient] += 1
    return expected


def _counts(database: Path) -> dict[str, int]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        rows = connection.execute("SELECT state, COUNT(*) FROM replay_items GROUP BY state").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        connection.close()
    return {str(state): int(count) for state, count in rows}


def _replay_process(served: ServeProcess, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "continuity", "--config", str(served.config_path), "replay"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )


async def test_kill_nine_at_random_points_then_resume(tmp_path: Path, primary: PrimaryStandIn) -> None:
    seed = random.randrange(1_000_000)
    chooser = random.Random(seed)
    overrides = replay_overrides(primary, monitor={"hold_down": 0}, replay={"concurrency": 4, "batch": 10})
    served = ServeProcess(tmp_path, **overrides)
    for address in ("alice@example.com", "bob@example.com"):
        served.cli("mailbox", "add", address, "--name", address.split("@")[0].title())
    served.start()
    try:
        served.cli("failover", "--reason", "outage", "--note", "primary down")
        expected = await asyncio.to_thread(_send_all, served.smtp_port)
    finally:
        assert served.terminate() == 0
    # No server runs now: the failback is carried out by the CLI (no probes, hold_down = 0).
    assert "RESTORING" in served.cli("failback", "--note", "primary back").stdout
    database = tmp_path / "data" / "continuity.db"
    total = sum(expected.values())
    log = tmp_path / "replay.log"
    interrupted_claims = 0
    for kill in range(KILLS):
        before = _counts(database).get("delivered", 0)
        target = min(total - 5, before + chooser.randint(5, max(6, total // (KILLS + 2))))
        process = _replay_process(served, log)
        deadline = time.monotonic() + 60
        while _counts(database).get("delivered", 0) < target:
            assert process.poll() is None, f"replay ended early (seed {seed}):\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no progress (seed {seed}):\n{log.read_text()}"
            await asyncio.sleep(chooser.uniform(0.0, 0.05))
        process.kill()
        process.wait(timeout=10)
        counts = _counts(database)
        interrupted_claims += counts.get("delivering", 0)
        assert counts.get("delivered", 0) < total, f"kill {kill} came too late (seed {seed})"
    assert interrupted_claims > 0, f"no kill hit a claimed batch (seed {seed})"
    final = served.cli("replay", check=False)
    assert final.returncode == 0, f"seed {seed}: {final.stdout}{final.stderr}\n{log.read_text()}"
    assert "Replay complete; the failover state is now NORMAL" in final.stdout
    assert _counts(database) == {"delivered": total}
    for mailbox, count in expected.items():
        copies = await read_mailbox(primary.imaps_port, primary.ca_file, master_login(mailbox), primary.master_password)
        assert duplicates(copies) == [], f"seed {seed}: duplicates in {mailbox}"
        assert len(copies) == count, f"seed {seed}: {mailbox} has {len(copies)} of {count}"
    status = served.cli("replay", "status").stdout
    assert f"{total}" in status and "completed" in status


async def test_crash_between_the_primarys_ok_and_the_journal_write(tmp_path: Path, primary: PrimaryStandIn) -> None:
    overrides = replay_overrides(primary, monitor={"interval": 3600.0})
    async with webmail_appliance(tmp_path / "data", **overrides) as running:
        assert await order(running, FailoverEvent.OPERATOR_FAILOVER) is FailoverState.FAILED_OVER
        await deliver(running, mail("Delivered just before the crash", "once only"))
        assert running.webmail is not None
        settings = running.webmail.settings
    # The appliance is stopped; a replayer of our own plays the crashed process.
    store = await open_sqlite_store(settings.database_path, settings.blob_path)
    try:
        restoring = FailoverRecord(state=FailoverState.RESTORING, since=0.0)
        crashed = ReplayService(settings, store, state=lambda: restoring)
        assert crashed.imap is not None
        run = await crashed.runs.current(RunKind.RESTORATION, restoring)
        assert run is not None
        await crashed.planner.pass_(run, resync=False)
        [item] = await store.replay.claim(Channel.IMAP, "alice@example.com", 10, time.time(), run.id)
        session = await MailboxSession.open(crashed.imap, "alice@example.com")
        try:
            wire = await crashed.gate.wire(item)
            attempt = await session.append(
                join_path(item.folder, session.delimiter), wire, item.flags, item.received_at
            )
        finally:
            await session.close()
        assert attempt.kind is OutcomeKind.DELIVERED
        # ... and the process dies here: the journal still says "delivering".
        assert (await store.replay.items(run.id))[0].state is ItemState.DELIVERING

        resumed = ReplayService(settings, store, state=lambda: restoring)
        await resumed.step()
        [after] = await store.replay.items(run.id)
        assert after.state is ItemState.DELIVERED
        assert after.detail.startswith("an earlier attempt's copy found"), after.detail
        assert (await store.replay.get_run(run.id)).status.value == "completed"  # type: ignore[union-attr]
        await resumed.close()
    finally:
        await store.close()
    copies = await read_mailbox(
        primary.imaps_port, primary.ca_file, master_login("alice@example.com"), primary.master_password
    )
    assert [copy.subject for copy in copies] == ["Delivered just before the crash"]
    assert copies[0].marker == marker_value(item.queue_id, item.sha256)
