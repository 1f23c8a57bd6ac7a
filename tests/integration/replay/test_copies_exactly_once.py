"""Messages to many mailboxes, planned in small batches while delivery runs ahead, with kill -9: every copy once.

The spool holds messages to 2 to 50 mailboxes each. Planning looks at 7 standby copies
per batch, so almost every message's copies straddle batch boundaries. Delivery is over
IMAP into Dovecot (the primary stand-in). Afterwards every mailbox on the primary holds
each of its copies exactly once (by Message-ID and by the replay marker, which carries
the body's sha256), and the run's counts match the spool.

* Delivery faster than planning (each planning batch is slowed down; SMTP into the
  stand-in's Postfix and Dovecot): at no moment is a message marked replayed while one of
  its copies has no delivered item.
* ``continuity replay`` is killed with SIGKILL once while it is still planning and once
  while it delivers, then run to the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from continuity.config.loader import load_settings
from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState, Routing
from continuity.core.models import AcceptedRecipient, IncomingMessage, MessageState
from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import marker_value
from continuity.core.replay_records import RunStatus
from continuity.services.replayer import ReplayService
from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import ServeProcess, clean_env
from tests.support.imap_mailbox import duplicates, read_mailbox
from tests.support.primary import PrimaryStandIn
from tests.support.replay import master_login, premature_settlements, replay_overrides

pytestmark = pytest.mark.slow

MAILBOXES = [f"user{n:02d}@example.com" for n in range(50)]
MESSAGES = 160


def _spool(chooser: random.Random) -> list[IncomingMessage]:
    now = time.time()
    messages = []
    for number in range(MESSAGES):
        count = 50 if number % 16 == 0 else chooser.randint(2, 8)
        mailboxes = chooser.sample(MAILBOXES, count)
        body = (
            f"From: <partner@outside.test>\r\nTo: <{mailboxes[0]}>\r\nSubject: copies {number}\r\n"
            f"Message-ID: <copies-{number}@outside.test>\r\n\r\nmessage {number} to {count} mailboxes\r\n"
        ).encode()
        messages.append(
            IncomingMessage(
                queue_id=f"Q{number:015d}",
                sender="partner@outside.test",
                recipients=tuple(AcceptedRecipient(m, m) for m in mailboxes),
                content=body,
                trace_header=b"Received: from mx.outside.test ([192.0.2.7])\r\n\tby standby.example.com\r\n",
                received_at=now + number / 1000,
                client_address="192.0.2.7",
                client_helo="mx.outside.test",
                message_id=f"<copies-{number}@outside.test>",
                subject=f"copies {number}",
                sha256=hashlib.sha256(body).hexdigest(),
            )
        )
    return messages


async def _seed(data: Path, messages: list[IncomingMessage]) -> None:
    """The spool as ingest leaves it, and the failover state as an operator's failback leaves it."""
    store = await open_sqlite_store(data / "continuity.db", data / "blobs")
    try:
        for start in range(0, len(messages), 40):
            await store.messages.commit(messages[start : start + 40])
        current = await store.failover.load()
        record = FailoverRecord(
            state=FailoverState.RESTORING, since=time.time(), reason="primary back", actor="test",
            routing=Routing.STANDBY, version=current.version + 1,
        )  # fmt: skip
        await store.failover.save(record, current.state, FailoverEvent.OPERATOR_FAILBACK, "{}")
    finally:
        await store.close()


async def _check_primary(primary: PrimaryStandIn, messages: list[IncomingMessage], seed: int) -> None:
    """Each mailbox on the primary holds each of its copies once, by Message-ID and marker (sha256)."""
    for mailbox in MAILBOXES:
        found = await read_mailbox(primary.imaps_port, primary.ca_file, master_login(mailbox), primary.master_password)
        assert duplicates(found) == [], f"seed {seed}: duplicates in {mailbox}"
        expected = sorted(
            (m.message_id, marker_value(m.queue_id, m.sha256))
            for m in messages
            if any(r.mailbox == mailbox for r in m.recipients)
        )
        assert sorted((copy.message_id, copy.marker) for copy in found) == expected, f"seed {seed}: {mailbox}"


async def test_delivery_faster_than_planning_settles_no_message_early(tmp_path: Path) -> None:
    seed = random.randrange(1_000_000)
    messages = _spool(random.Random(seed))
    copies = sum(len(m.recipients) for m in messages)
    primary = PrimaryStandIn(["example.com"], dict.fromkeys(MAILBOXES, "user-secret"))
    primary.start()
    try:
        # Over SMTP into the stand-in's Postfix, which hands each copy to Dovecot: a claim takes the
        # due items of every mailbox, so delivery keeps up with each planned batch.
        replay = {"method": "smtp", "plan_batch": 7, "concurrency": 6, "batch": 10}
        served = ServeProcess(tmp_path, **replay_overrides(primary, replay=replay))
        data = tmp_path / "data"
        await _seed(data, messages)
        settings = load_settings(served.config_path)
        store = await open_sqlite_store(settings.database_path, settings.blob_path)
        window = store.replay.plan_window

        async def slow_window(*args: Any, **kwargs: Any) -> tuple[int, int]:
            await asyncio.sleep(0.03)  # planning slower than delivery: deliveries catch up with every batch
            return await window(*args, **kwargs)

        store.replay.plan_window = slow_window  # type: ignore[method-assign]
        restoring = FailoverRecord(state=FailoverState.RESTORING, since=0.0)
        service = ReplayService(settings, store, state=lambda: restoring)
        premature: set[str] = set()
        watched = 0
        try:
            task = asyncio.ensure_future(service.run_until_complete())
            while not task.done():
                premature.update(await asyncio.to_thread(premature_settlements, settings.database_path))
                watched += 1
                await asyncio.sleep(0.01)
            run = await task
            assert run is not None and run.status is RunStatus.COMPLETED, service.detail
            planned_last, first_delivery = await store.database.write(
                lambda c: c.execute("SELECT MAX(planned_at), MIN(delivered_at) FROM replay_items").fetchone()
            )
            assert first_delivery < planned_last  # delivery ran while planning went on
            assert premature == set(), f"seed {seed}: settled before every copy was delivered"
            assert watched > 10
            progress = await store.replay.progress(run.id)
            assert sum(p.count(ItemState.DELIVERED) for p in progress) == sum(p.total for p in progress) == copies
        finally:
            await service.close()
            await store.close()
        await _check_primary(primary, messages, seed)
    finally:
        primary.close()


def _counts(database: Path) -> tuple[int, int, int]:
    """(items planned, items delivered, the planning cursor) as another process sees them."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        planned, delivered = connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(state = 'delivered'), 0) FROM replay_items"
        ).fetchone()
        cursor = connection.execute("SELECT COALESCE(MAX(planned_through), 0) FROM replay_runs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0, 0, 0
    finally:
        connection.close()
    return int(planned), int(delivered), int(cursor)


async def _kill_when(served: ServeProcess, log: Path, ready: object, what: str) -> tuple[int, int, int]:
    database = served.workdir / "data" / "continuity.db"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "continuity", "--config", str(served.config_path), "replay"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
    deadline = time.monotonic() + 90
    try:
        while True:
            counts = _counts(database)
            if ready(*counts):  # type: ignore[operator]
                break
            assert process.poll() is None, f"the replay ended before the kill {what}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no kill {what}: {counts}\n{log.read_text()}"
            await asyncio.sleep(0.005)
    finally:
        process.kill()
        process.wait(timeout=10)
    return _counts(database)


async def test_every_copy_once_across_batches_and_kills(tmp_path: Path) -> None:
    seed = random.randrange(1_000_000)
    chooser = random.Random(seed)
    primary = PrimaryStandIn(["example.com"], dict.fromkeys(MAILBOXES, "user-secret"))
    primary.start()
    try:
        overrides = replay_overrides(primary, replay={"plan_batch": 7, "concurrency": 6, "batch": 10})
        served = ServeProcess(tmp_path, **overrides)
        messages = _spool(chooser)
        copies = {(r.mailbox, m.queue_id) for m in messages for r in m.recipients}
        data = tmp_path / "data"
        await _seed(data, messages)
        log = tmp_path / "replay.log"
        # Killed while still planning: some items planned (some maybe delivered), the cursor short of the end.
        planned, _, _cursor = await _kill_when(served, log, lambda p, d, c: c > 0 and p < len(copies) // 3, "planning")
        assert planned < len(copies), f"seed {seed}: planning was over before the kill"
        # Killed while delivering: everything planned, part of it delivered.
        _, delivered, _ = await _kill_when(served, log, lambda p, d, c: d > len(copies) // 2, "delivering")
        assert delivered < len(copies), f"seed {seed}: delivery was over before the kill"
        final = served.cli("replay", check=False)
        assert final.returncode == 0, f"seed {seed}: {final.stdout}{final.stderr}\n{log.read_text()}"
        assert "Replay complete" in final.stdout, final.stdout
        # Settled by construction: the end-of-run reconciliation never had to send a message back.
        assert "too early" not in log.read_text() + final.stdout + final.stderr, f"seed {seed}"
        assert _counts(data / "continuity.db")[:2] == (len(copies), len(copies)), f"seed {seed}"
        await _check_primary(primary, messages, seed)
        store = await open_sqlite_store(data / "continuity.db", data / "blobs")
        try:
            reconciled = await store.replay.reconciliation()
            assert reconciled.complete and reconciled.delivered == reconciled.copies == len(copies)
            for message in messages:
                entry = await store.messages.get(message.queue_id)
                assert entry is not None and entry.state is MessageState.REPLAYED, f"seed {seed}: {message.queue_id}"
        finally:
            await store.close()
        status = served.cli("replay", "status").stdout
        assert "completed" in status
    finally:
        primary.close()
