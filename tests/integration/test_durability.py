"""250 means durable: kill -9 at random moments, full disks and failing writes lose nothing."""

from __future__ import annotations

import json
import random
import resource
import shutil
import smtplib
import subprocess
import threading
import time
from pathlib import Path

import pytest

from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import ServeProcess
from tests.support.load import Acknowledged, send_until_stopped
from tests.support.messages import make_message
from tests.support.smtp_raw import RawSmtp

CRASH_ROUNDS = 6
CLIENTS = 6
MIN_ACKS_PER_ROUND = 10


async def _stored(data_dir: Path) -> dict[str, bytes]:
    """Every queued message as trace-less body bytes, read straight from the store (digest-checked)."""
    store = await open_sqlite_store(data_dir / "continuity.db", data_dir / "blobs")
    try:
        return {
            entry.queue_id: await store.blobs.read(entry.sha256) for entry in await store.messages.list(limit=10**6)
        }
    finally:
        await store.close()


@pytest.mark.slow
async def test_kill_9_at_random_moments_loses_no_acknowledged_message(tmp_path: Path) -> None:
    served = ServeProcess(tmp_path, smtp={"limit_exempt_networks": ["127.0.0.0/8"]})
    served.cli("mailbox", "add", "alice@example.com", "--name", "Alice")
    acked = Acknowledged()
    rng = random.Random(20261122)
    for round_number in range(CRASH_ROUNDS):
        served.start()
        stop = threading.Event()
        clients = [
            threading.Thread(
                target=send_until_stopped,
                args=(served.smtp_port, "alice@example.com", acked, stop, round_number * 100 + n),
            )
            for n in range(CLIENTS)
        ]
        before = len(acked.by_queue_id)
        for client in clients:
            client.start()
        # Kill at a random moment, but only once this round has had some load (a busy
        # machine may take a while to get the first sessions through).
        time.sleep(rng.uniform(0.3, 1.5))
        deadline = time.monotonic() + 30
        while len(acked.by_queue_id) < before + MIN_ACKS_PER_ROUND and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.01, 0.2))
        served.kill()
        stop.set()
        for client in clients:
            client.join(timeout=30)
    served.start()
    try:
        assert served.log().count(" ready: SMTP on ") == CRASH_ROUNDS + 1
        assert len(acked.by_queue_id) >= CRASH_ROUNDS * MIN_ACKS_PER_ROUND, "the load barely ran; it proves nothing"
        listed = {
            entry["id"] for entry in json.loads(served.cli("queue", "list", "--json", "--limit", "1000000").stdout)
        }
    finally:
        assert served.terminate() == 0
    stored = await _stored(served.workdir / "data")
    assert set(stored) == listed
    missing = set(acked.by_queue_id) - set(stored)
    assert not missing, f"{len(missing)} acknowledged messages were lost"
    for queue_id, message in acked.by_queue_id.items():
        assert stored[queue_id] == message, f"{queue_id} differs from what was acknowledged"
    assert list((served.workdir / "data" / "blobs" / "tmp").iterdir()) == []


def _send(port: int, message: bytes) -> tuple[int, str]:
    client = RawSmtp("127.0.0.1", port)
    client.command("EHLO c.test")
    client.command("MAIL FROM:<s@outside.test>")
    client.command("RCPT TO:<alice@example.com>")
    client.command("DATA")
    client.send(message + b".\r\n")
    reply = client.reply()
    client.close()
    return int(reply[:3]), reply


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {result.stderr.strip()}")


async def test_disk_full_answers_451_and_keeps_earlier_mail(tmp_path: Path) -> None:
    served = ServeProcess(tmp_path)
    data_dir = served.workdir / "data"
    _mount_tmpfs(data_dir, "4m")
    try:
        served.cli("mailbox", "add", "alice@example.com", "--name", "Alice")
        served.start()
        accepted: dict[str, bytes] = {}
        for _ in range(5):
            message = make_message(size=20_000)
            code, reply = _send(served.smtp_port, message)
            assert code == 250, reply
            accepted[reply.rsplit(" ", 1)[-1]] = message
        filler = data_dir / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k", "count=1000"], capture_output=True)
        refusals = []
        for _ in range(10):
            code, reply = _send(served.smtp_port, make_message(size=150_000))
            if code == 250:
                accepted[reply.rsplit(" ", 1)[-1]] = make_message  # type: ignore[assignment]
            else:
                refusals.append(reply)
        assert refusals, "the disk never filled up"
        assert all(r == "451 4.3.0 Temporary storage failure; message not accepted, try again later" for r in refusals)
        assert "storage failure, answering 451" in served.log()
        filler.unlink()
        message = make_message(size=20_000)
        code, reply = _send(served.smtp_port, message)
        assert code == 250, "the appliance must recover once space is freed"
        accepted[reply.rsplit(" ", 1)[-1]] = message
        assert served.terminate() == 0
        stored = await _stored(data_dir)
        for queue_id, original in accepted.items():
            assert queue_id in stored
            if isinstance(original, bytes):
                assert stored[queue_id] == original
        assert list((data_dir / "blobs" / "tmp").iterdir()) == []
    finally:
        if served.process is not None and served.process.poll() is None:
            served.kill()
        subprocess.run(["umount", str(data_dir)], capture_output=True)


async def test_write_error_answers_451_and_keeps_earlier_mail(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes the kernel fail writes past the limit with EFBIG: a real I/O
    # error from write(2), not a simulated one. Python ignores SIGXFSZ, so the write
    # returns the error instead of killing the process.
    served = ServeProcess(tmp_path)
    served.cli("mailbox", "add", "alice@example.com", "--name", "Alice")
    limit = 256 * 1024

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    served.start(preexec=limit_file_size)
    try:
        small = make_message(size=10_000)
        code, reply = _send(served.smtp_port, small)
        assert code == 250
        code, refused = _send(served.smtp_port, make_message(size=400_000))
        assert refused == "451 4.3.0 Temporary storage failure; message not accepted, try again later"
        assert "File too large" in served.log()
        code, _reply2 = _send(served.smtp_port, make_message(size=10_000))
        assert code == 250
    finally:
        assert served.terminate() == 0
    stored = await _stored(served.workdir / "data")
    assert stored[reply.rsplit(" ", 1)[-1]] == small
    assert len(stored) == 2


def test_sigterm_finishes_the_transaction_in_flight_and_exits_0(tmp_path: Path) -> None:
    served = ServeProcess(tmp_path)
    served.cli("mailbox", "add", "alice@example.com", "--name", "Alice")
    served.start()
    busy = RawSmtp("127.0.0.1", served.smtp_port)
    idle = RawSmtp("127.0.0.1", served.smtp_port)
    assert idle.command("EHLO idle.test").startswith("250")
    for line in ("EHLO busy.test", "MAIL FROM:<s@outside.test>", "RCPT TO:<alice@example.com>", "DATA"):
        busy.command(line)
    message = make_message()
    busy.send(message[:200])
    assert served.process is not None
    served.process.send_signal(15)
    time.sleep(0.5)
    assert idle.reply() == "421 4.3.2 Service shutting down; try again later"
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", served.smtp_port, timeout=2).noop()
    busy.send(message[200:] + b".\r\n")
    assert busy.reply().startswith("250 2.0.0 Ok: queued as ")
    assert busy.reply() == "421 4.3.2 Service shutting down; try again later"
    assert served.process.wait(timeout=30) == 0
    listed = json.loads(served.cli("queue", "list", "--json").stdout)
    assert len(listed) == 1
    shutil.rmtree(served.workdir / "data")
