"""Filter worker processes: they judge what the main process would, hand back what they cannot, and die with it."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.config.settings import Settings
from continuity.core.pipeline import Direction, Envelope, Verdict
from continuity.services.filter_processes import ProcessPipeline
from continuity.services.filter_setup import FilterService
from continuity.services.filtering import PipelineResult
from continuity.store.sqlite import SqliteStore, open_sqlite_store

BEC = (
    b"From: Supplier <billing@supplier.example>\r\nTo: alice@example.com\r\nSubject: new bank details\r\n\r\n"
    b"Please note our new bank details: IBAN DE89 3704 0044 0532 0130 00. Pay today.\r\n"
)
ENVELOPE = Envelope("billing@supplier.example", ("alice@example.com",), Direction.REPLAY, "192.0.2.7", "mx.test")


def _settings(data_dir: Path, **filters: object) -> Settings:
    return Settings.model_validate(
        {"data_dir": data_dir, "domains": ["example.com"], "filters": {"auth": {"enabled": False}, **filters}}
    )


# A Content-Type of 100,000 folded parameters: the email parser takes seconds on it
# Ingest refuses it before parsing (max_header_parameters); handed to the
# workers directly, it stands for any message that overruns the deadline.
SLOW = (
    b"From: x@example.org\r\nTo: alice@example.com\r\nSubject: slow\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain" + b";\r\n p=v" * 100_000 + b"\r\n\r\nbody\r\n"
)


@pytest.fixture
async def judge(tmp_path: Path) -> AsyncIterator[tuple[Settings, SqliteStore, FilterService]]:
    """The settings, store and filter service the main process judges with."""
    settings = _settings(tmp_path / "data")
    store = await open_sqlite_store(settings.database_path, settings.blob_path)
    service = FilterService(settings, store.filter_memory, store.mailboxes)
    await service.start(background=False)
    try:
        yield settings, store, service
    finally:
        await service.stop()
        await store.close()


async def test_workers_that_cannot_start_leave_messages_unscannable_never_judged_here(
    judge: tuple[Settings, SqliteStore, FilterService], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-directory").write_text("")
    # The workers cannot open a store there: each one started ends at once.
    unusable = _settings(tmp_path / "not-a-directory" / "data", deadline=3.0)
    workers = ProcessPipeline(unusable, 1)
    try:
        with caplog.at_level(logging.WARNING, logger="continuity.filters"):
            started = time.monotonic()
            first, second = await asyncio.gather(workers.evaluate(ENVELOPE, BEC, learn=False),
                                                 workers.evaluate(ENVELOPE, BEC, learn=False))  # fmt: skip
            elapsed = time.monotonic() - started
        for result in (first, second):
            assert result.verdict is Verdict.QUARANTINE
            assert [finding.code for stage in result.results for finding in stage.findings] == ["content.unscannable"]
        assert (workers.in_workers, workers.unscannable) == (0, 2)
        assert elapsed < 3.0 + 2.0
        assert any("cannot start a filter worker" in record.message for record in caplog.records)
        with pytest.raises(ValueError, match="no filter memory"):
            await workers.evaluate(ENVELOPE, BEC, learn=True)
    finally:
        await workers.close()


async def test_many_messages_at_once_are_judged_in_the_workers(
    judge: tuple[Settings, SqliteStore, FilterService],
) -> None:
    settings, _, service = judge
    workers = ProcessPipeline(settings, 2)
    try:
        messages = [BEC.replace(b"Pay today", b"Invoice %d" % number) for number in range(100)]
        results = await asyncio.gather(*(workers.evaluate(ENVELOPE, message, learn=False) for message in messages))
        local = [await service.pipeline.evaluate(ENVELOPE, message, learn=False) for message in messages]
        assert [result.decision for result in results] == [result.decision for result in local]
        assert (workers.in_workers, workers.unscannable) == (100, 0)
    finally:
        await workers.close()


async def test_a_stored_message_is_read_by_the_worker_and_a_missing_one_sent_as_bytes(
    judge: tuple[Settings, SqliteStore, FilterService],
) -> None:
    settings, store, service = judge
    workers = ProcessPipeline(settings, 1)
    try:
        digest = hashlib.sha256(BEC).hexdigest()
        await store.blobs.put(digest, BEC)
        expected = await service.pipeline.evaluate(ENVELOPE, BEC, learn=False)
        stored = await workers.evaluate_stored(ENVELOPE, digest, BEC)
        assert stored.decision == expected.decision and stored.envelope == ENVELOPE
        assert workers.in_workers == 1
        # The worker cannot read this one: it gets the bytes this process has, and the
        # workers go on judging the next.
        missing = await workers.evaluate_stored(ENVELOPE, "0" * 64, BEC)
        again = await workers.evaluate_stored(ENVELOPE, digest, BEC)
        assert missing.decision == again.decision == expected.decision
        assert (workers.in_workers, workers.unscannable) == (3, 0)
    finally:
        await workers.close()


async def test_a_message_past_the_deadline_is_unscannable_its_worker_replaced_and_the_others_judged(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path / "data", deadline=3.0)
    store = await open_sqlite_store(settings.database_path, settings.blob_path)
    service = FilterService(settings, store.filter_memory, store.mailboxes)
    await service.start(background=False)
    workers = ProcessPipeline(settings, 1)
    try:
        await workers.started()
        ticks: list[float] = []

        async def tick() -> None:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                ticks.append(time.monotonic() - before)

        ticking = asyncio.create_task(tick())
        started = time.monotonic()
        answered: list[float] = []

        async def timed(content: bytes) -> PipelineResult:
            result = await workers.evaluate(ENVELOPE, content, learn=False)
            answered.append(time.monotonic() - started)
            return result

        # Same worker: the slow one goes first, two good ones queue behind it.
        results = await asyncio.gather(timed(SLOW), timed(BEC), timed(BEC.replace(b"Pay today", b"Thanks")))
        ticking.cancel()
        slow, bec, thanks = results
        assert slow.verdict is Verdict.QUARANTINE
        assert "longer than 3 s" in slow.results[0].findings[0].evidence[0]
        expected = [
            await service.pipeline.evaluate(ENVELOPE, message, learn=False)
            for message in (BEC, BEC.replace(b"Pay today", b"Thanks"))
        ]
        assert [bec.decision, thanks.decision] == [result.decision for result in expected]
        assert (workers.unscannable, workers.replaced) == (1, 1)
        assert answered[0] < 3.0 + 2.0  # the slow one, answered first: within the deadline plus 2 s
        assert max(ticks) < 0.5  # this loop never waited on the parse
        # The replacement judges the next message.
        assert (await workers.evaluate(ENVELOPE, BEC, learn=False)).decision == expected[0].decision
    finally:
        await workers.close()
        await service.stop()
        await store.close()


async def test_a_worker_killed_under_a_message_is_replaced_and_the_message_judged_again(
    judge: tuple[Settings, SqliteStore, FilterService],
) -> None:
    settings, _, _ = judge
    workers = ProcessPipeline(settings, 1)
    try:
        await workers.started()
        pending = asyncio.ensure_future(workers.evaluate(ENVELOPE, SLOW, learn=False))
        await asyncio.sleep(0.3)  # the worker is parsing it now
        victim = workers._links[0].process
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        result = await pending
        assert [finding.code for stage in result.results for finding in stage.findings] != ["content.unscannable"], [
            finding.evidence for stage in result.results for finding in stage.findings
        ]
        assert workers.replaced == 1 and workers.in_workers == 1
    finally:
        await workers.close()


async def test_what_the_workers_learn_reaches_the_filter_memory(
    judge: tuple[Settings, SqliteStore, FilterService],
) -> None:
    settings, store, service = judge
    workers = ProcessPipeline(settings, 1, memory=service.memory)
    try:
        original = (
            b"Message-ID: <original@supplier.example>\r\nFrom: Supplier <billing@supplier.example>\r\n"
            b"To: alice@example.com\r\nSubject: lunch\r\n\r\nSee you at noon.\r\n"
        )
        inbound = Envelope("billing@supplier.example", ("alice@example.com",), Direction.INBOUND, "192.0.2.7", "mx")
        result = await workers.evaluate(inbound, original)
        assert result.verdict is Verdict.ACCEPT
        assert service.memory.pending
        await service.memory.flush()
        history = await store.filter_memory.thread(("<original@supplier.example>",))
        assert history.known
    finally:
        await workers.close()


_HOLDS_A_POOL = """
import asyncio, sys
from pathlib import Path
from continuity.config.settings import Settings
from continuity.core.pipeline import Direction, Envelope
from continuity.services.filter_processes import ProcessPipeline
from continuity.services.filter_setup import FilterService
from continuity.services.filtering import PipelineResult
from continuity.store.sqlite import open_sqlite_store

async def main() -> None:
    settings = Settings.model_validate(
        {"data_dir": Path(sys.argv[1]), "domains": ["example.com"], "filters": {"auth": {"enabled": False}}}
    )
    store = await open_sqlite_store(settings.database_path, settings.blob_path)
    service = FilterService(settings, store.filter_memory, store.mailboxes)
    await service.start(background=False)
    workers = ProcessPipeline(settings, 2)
    envelope = Envelope("a@example.org", ("alice@example.com",), Direction.REPLAY, "192.0.2.7", "mx.test")
    hello = b"Subject: hi\\r\\n\\r\\nhello\\r\\n"
    await asyncio.gather(*(workers.evaluate(envelope, hello, learn=False) for _ in range(20)))
    print("ready", workers.in_workers, flush=True)
    await asyncio.sleep(3600)

if __name__ == "__main__":
    asyncio.run(main())
"""


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_end_when_the_main_process_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "holds_a_pool.py"
    script.write_text(_HOLDS_A_POOL)
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "data")], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().split() == ["ready", "20"]
        children = _children(process.pid)
        children += [grandchild for child in list(children) for grandchild in _children(child)]
        # The fork server, its two workers (and multiprocessing's resource tracker).
        assert len(children) >= 3, children
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in children if _running(pid)] == []
