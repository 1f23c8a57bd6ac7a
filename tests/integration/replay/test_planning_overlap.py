"""A large restoration run starts delivering while it is still being planned, and delivers everything once."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

from continuity.config.settings import Settings
from continuity.core.failover import FailoverRecord, FailoverState
from continuity.core.models import AcceptedRecipient, IncomingMessage
from continuity.core.queue_ids import new_queue_id
from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import RunStatus
from continuity.services.replayer import ReplayService
from continuity.store.sqlite import open_sqlite_store
from tests.support.smtp_sink import SmtpSink

MESSAGES = 3000  # six planning batches of 500 ([replay] plan_batch)


def _message(number: int, now: float) -> IncomingMessage:
    mailbox = f"user{number % 4}@example.com"
    body = (
        f"From: <load@outside.test>\r\nTo: <{mailbox}>\r\nSubject: load {number}\r\n"
        f"Message-ID: <{number}@outside.test>\r\n\r\nmessage {number}\r\n"
    ).encode()
    return IncomingMessage(
        queue_id=new_queue_id(now), sender="load@outside.test",
        recipients=(AcceptedRecipient(mailbox, mailbox),), content=body,
        trace_header=b"Received: from mx.outside.test ([192.0.2.7])\r\n\tby standby.example.com\r\n",
        received_at=now, client_address="192.0.2.7", client_helo="mx.outside.test",
        message_id=f"<{number}@outside.test>", subject=f"load {number}", sha256=hashlib.sha256(body).hexdigest(),
    )  # fmt: skip


async def test_delivery_begins_before_planning_ends_and_nothing_is_sent_twice(tmp_path: Path) -> None:
    sink = SmtpSink(tmp_path / "sink")
    sink.start()
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path / "data",
            "domains": ["example.com"],
            "primary": {"host": "127.0.0.1", "smtp_port": sink.port},
            "filters": {"enabled": False},
            "replay": {
                "method": "smtp",
                "smtp_tls": "none",
                "rate": 0,
                "concurrency": 8,
                "stragglers": False,
                "plan_batch": 500,
            },
        }
    )
    store = await open_sqlite_store(settings.database_path, settings.blob_path)
    try:
        now = time.time()
        for start in range(0, MESSAGES, 500):
            await store.messages.commit([_message(number, now) for number in range(start, start + 500)])
        record = FailoverRecord(state=FailoverState.RESTORING, since=0.0)
        service = ReplayService(settings, store, state=lambda: record)
        try:
            run = await service.run_until_complete()
        finally:
            await service.close()
        assert run is not None and run.status is RunStatus.COMPLETED
        progress = await store.replay.progress(run.id)
        assert sum(p.count(ItemState.DELIVERED) for p in progress) == sum(p.total for p in progress) == MESSAGES
    finally:
        await store.close()
    connection = sqlite3.connect(settings.database_path)
    try:
        first_attempt, last_planned = connection.execute(
            "SELECT MIN(first_attempt_at), MAX(planned_at) FROM replay_items"
        ).fetchone()
    finally:
        connection.close()
    assert first_attempt < last_planned  # the first deliveries went out while planning went on
    received = sink.messages(expected=MESSAGES, timeout=30)
    sink.stop()
    subjects = [str(message["Subject"]) for message in received]
    assert len(subjects) == len(set(subjects)) == MESSAGES
