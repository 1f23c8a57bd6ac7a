"""Filter worker processes: they judge what the main process would, hand back what they cannot, and die with it."""

from __future__ import annotations

import asyncio
import hashlib
import logging
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
from continuity.store.sqlite import SqliteStore, open_sqlite_store

BEC = (
    b"From: Supplier <billing@supplier.example>\r\nTo: alice@example.com\r\nSubject: new bank details\r\n\r\n"
    b"Please note our new bank details: IBAN DE89 3704 0044 0532 0130 00. Pay today.\r\n"
)
ENVELOPE = Envelope("billing@supplier.example", ("alice@example.com",), Direction.REPLAY, "192.0.2.7", "mx.test")


def _settings(data_dir: Path) -> Settings:
    return Settings.model_validate(
        {"data_dir": data_dir, "domains": ["example.com"], "filters": {"auth": {"enabled": False}}}
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


async def test_a_worker_that_cannot_start_leaves_the_judging_to_the_main_process(
    judge: tuple[Settings, SqliteStore, FilterService], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, service = judge
    (tmp_path / "not-a-directory").write_text("")
    unusable = _settings(tmp_path / "not-a-directory" / "data")  # the workers cannot open a store there
    workers = ProcessPipeline(unusable, service.pipeline, 1)
    try:
        with caplog.at_level(logging.ERROR, logger="continuity.filters"):
            first = await workers.evaluate(ENVELOPE, BEC)
            second = await workers.evaluate(ENVELOPE, BEC)
        expected = await service.pipeline.evaluate(ENVELOPE, BEC, learn=False)
        assert first.decision == second.decision == expected.decision
        assert expected.verdict is not Verdict.ACCEPT
        assert (workers.in_workers, workers.in_main) == (0, 2)
        failures = [record for record in caplog.records if "filter worker processes failed" in record.message]
        assert len(failures) == 1
        with pytest.raises(ValueError, match="do not learn"):
            await workers.evaluate(ENVELOPE, BEC, learn=True)
    finally:
        await workers.close()


async def test_many_messages_at_once_are_judged_in_the_workers(
    judge: tuple[Settings, SqliteStore, FilterService],
) -> None:
    settings, _, service = judge
    workers = ProcessPipeline(settings, service.pipeline, 2)
    try:
        messages = [BEC.replace(b"Pay today", b"Invoice %d" % number) for number in range(100)]
        results = await asyncio.gather(*(workers.evaluate(ENVELOPE, message) for message in messages))
        local = [await service.pipeline.evaluate(ENVELOPE, message, learn=False) for message in messages]
        assert [result.decision for result in results] == [result.decision for result in local]
        assert (workers.in_workers, workers.in_main) == (100, 0)
    finally:
        await workers.close()


async def test_a_stored_message_is_read_by_the_worker_and_a_missing_one_judged_here(
    judge: tuple[Settings, SqliteStore, FilterService],
) -> None:
    settings, store, service = judge
    workers = ProcessPipeline(settings, service.pipeline, 1)
    try:
        digest = hashlib.sha256(BEC).hexdigest()
        await store.blobs.put(digest, BEC)
        expected = await service.pipeline.evaluate(ENVELOPE, BEC, learn=False)
        stored = await workers.evaluate_stored(ENVELOPE, digest, BEC)
        assert stored.decision == expected.decision and stored.envelope == ENVELOPE
        assert (workers.in_workers, workers.in_main) == (1, 0)
        # The worker cannot read this one: the main process judges it from the bytes it has,
        # and the workers go on judging the next.
        missing = await workers.evaluate_stored(ENVELOPE, "0" * 64, BEC)
        again = await workers.evaluate_stored(ENVELOPE, digest, BEC)
        assert missing.decision == again.decision == expected.decision
        assert (workers.in_workers, workers.in_main) == (2, 1)
    finally:
        await workers.close()


_HOLDS_A_POOL = """
import asyncio, sys
from pathlib import Path
from continuity.config.settings import Settings
from continuity.core.pipeline import Direction, Envelope
from continuity.services.filter_processes import ProcessPipeline
from continuity.services.filter_setup import FilterService
from continuity.store.sqlite import open_sqlite_store

async def main() -> None:
    settings = Settings.model_validate(
        {"data_dir": Path(sys.argv[1]), "domains": ["example.com"], "filters": {"auth": {"enabled": False}}}
    )
    store = await open_sqlite_store(settings.database_path, settings.blob_path)
    service = FilterService(settings, store.filter_memory, store.mailboxes)
    await service.start(background=False)
    workers = ProcessPipeline(settings, service.pipeline, 2)
    envelope = Envelope("a@example.org", ("alice@example.com",), Direction.REPLAY, "192.0.2.7", "mx.test")
    await asyncio.gather(*(workers.evaluate(envelope, b"Subject: hi\\r\\n\\r\\nhello\\r\\n") for _ in range(20)))
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
        assert len(children) >= 2  # the two workers (and multiprocessing's resource tracker)
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in children if _running(pid)] == []
