"""The replay after a long outage: a spool of N messages replayed by ``continuity serve`` into smtp-sink.

Seeds a spool (default 200,000 messages of 10 KB over 1,000 mailboxes, 5% of them to two
mailboxes) through the store, as ingest leaves it (ingest speed is bench/ingest.py's), sets
the failover state to RESTORING, starts ``continuity serve`` as shipped (filters on,
default logging; only the mail-authentication stage is off, as there is no DNS here) with
SMTP replay into Postfix's smtp-sink, and watches it from outside until the run completes:

* planning time (the run's start to its last planned batch) against the replay's duration;
* replay copies/s against Postfix's ``postqueue -f`` of the same N into the same sink,
  measured in the same run (bench.replay's reference);
* the largest RSS and PSS of the serving process and its filter workers together;
* ``/healthz`` latency, worst and median, polled every 100 ms during the run;
* copies lost: standby copies without a delivered journal item, and copies expected but
  not delivered (both must be 0); the sink's count of transactions is printed beside them
  (a message to two mailboxes may go in one transaction).

Run as root (Postfix needs it):  .venv/bin/python -m bench.scale [--messages N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.postfix_instance import ensure_postfix
from bench.replay import _postfix_flush
from bench.smtp_load import make_body
from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState, Routing
from continuity.core.models import AcceptedRecipient, IncomingMessage
from continuity.core.queue_ids import new_queue_id
from continuity.store.sqlite import SqliteStore, open_sqlite_store
from tests.support.ports import free_port, wait_for_port

RESULTS = Path(__file__).parent / "results"
DOMAIN = "example.com"
_COMMIT = 1000  # messages per seeding commit


def _recipients(index: int, mailboxes: int, multi_every: int) -> tuple[str, ...]:
    first = f"user{index % mailboxes:04d}@{DOMAIN}"
    if multi_every and index % multi_every == 0:
        return first, f"user{(index * 7 + 1) % mailboxes:04d}@{DOMAIN}"
    return (first,)


async def _seed(store: SqliteStore, args: argparse.Namespace) -> int:
    """Commit the spool as ingest would; returns the number of standby copies."""
    copies = 0
    started = time.perf_counter()
    multi_every = round(100 / args.multi_percent) if args.multi_percent else 0
    for start in range(0, args.messages, _COMMIT):
        batch = []
        now = time.time()
        for index in range(start, min(args.messages, start + _COMMIT)):
            recipients = _recipients(index, args.mailboxes, multi_every)
            copies += len(recipients)
            body = make_body(index, args.size, recipients[0])
            batch.append(
                IncomingMessage(
                    queue_id=new_queue_id(now),
                    sender="load@bench.test",
                    recipients=tuple(AcceptedRecipient(r, r) for r in recipients),
                    content=body,
                    trace_header=b"Received: from load.bench.test ([192.0.2.25])\r\n\tby standby.bench.test\r\n",
                    received_at=now,
                    client_address="192.0.2.25",
                    client_helo="load.bench.test",
                    message_id=f"<{index}@bench.test>",
                    subject=f"load {index}",
                    sha256=hashlib.sha256(body).hexdigest(),
                )
            )
        await store.messages.commit(batch)
        if start and start % 100_000 == 0:
            rate = start / (time.perf_counter() - started)
            print(f"  seeded {start} messages ({rate:.0f}/s)", flush=True)
    return copies


async def _restoring(store: SqliteStore) -> None:
    """The failover state as an operator's failback leaves it: RESTORING, mail routed to the standby."""
    current = await store.failover.load()
    record = FailoverRecord(
        state=FailoverState.RESTORING, since=time.time(), reason="benchmark: the primary is back",
        actor="bench", routing=Routing.STANDBY, version=current.version + 1,
    )  # fmt: skip
    await store.failover.save(record, current.state, FailoverEvent.OPERATOR_FAILBACK, "{}")


def _config(work: Path, sink_port: int, smtp_port: int, web_port: int) -> Path:
    config = work / "continuity.toml"
    config.write_text(
        f'data_dir = "{work / "appliance"}"\ndomains = ["{DOMAIN}"]\n'
        f'[smtp]\nlisten = "127.0.0.1:{smtp_port}"\nhostname = "standby.bench.test"\n'
        f'[web]\nlisten = "127.0.0.1:{web_port}"\n'
        f'[primary]\nhost = "127.0.0.1"\nsmtp_port = {sink_port}\n'
        # No probes: the sink is no Exchange, and the state must stay RESTORING until the run is done.
        "[monitor]\nenabled = false\n"
        '[replay]\nmethod = "smtp"\nsmtp_tls = "none"\nrate = 0\nstragglers = false\n'
        # No DNS here: every stage but mail authentication runs, as in bench.replay and the tests.
        "[filters.auth]\nenabled = false\n"
    )
    return config


def _tree(pid: int) -> list[int]:
    """pid and its descendants (from the kernel's children lists: no scan of /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except (OSError, ValueError):
                continue
    return found


def _memory(pid: int) -> tuple[int, int]:
    """RSS and PSS in bytes of pid's process tree."""
    rss = pss = 0
    for member in _tree(pid):
        try:
            with Path(f"/proc/{member}/smaps_rollup").open() as rollup:
                for line in rollup:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, pss


class Watch:
    """Polls /healthz and the process tree's memory while the replay runs."""

    def __init__(self, pid: int, web_port: int) -> None:
        self.pid = pid
        self.url = f"http://127.0.0.1:{web_port}/healthz"
        self.latencies: list[float] = []
        self.errors = 0
        self.rss = self.pss = 0

    async def health(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=30.0) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    response = await client.get(self.url)
                    if response.status_code != 200:
                        self.errors += 1
                except httpx.HTTPError:
                    self.errors += 1
                self.latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.1)

    async def memory(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            rss, pss = await asyncio.to_thread(_memory, self.pid)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            await asyncio.sleep(1.0)


def _run_row(database: Path) -> tuple[str, float, float, float, int, int] | None:
    """(status, started_at, last planned_at, last delivered_at, items, delivered) of the newest run."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        run = connection.execute("SELECT id, status, started_at FROM replay_runs ORDER BY id DESC LIMIT 1").fetchone()
        if run is None or run[1] != "completed":
            return None if run is None else (str(run[1]), float(run[2]), 0.0, 0.0, 0, 0)
        planned, delivered_at, items, delivered = connection.execute(
            "SELECT MAX(planned_at), MAX(delivered_at), COUNT(*), SUM(state = 'delivered') FROM replay_items"
            " WHERE run_id = ?",
            (run[0],),
        ).fetchone()
        return str(run[1]), float(run[2]), float(planned), float(delivered_at), int(items), int(delivered)
    finally:
        connection.close()


def _lost(database: Path) -> int:
    """Standby copies with no delivered journal item."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return int(
            connection.execute(
                "SELECT COUNT(*) FROM mailbox_messages mm WHERE NOT EXISTS (SELECT 1 FROM replay_items ri"
                " WHERE ri.queue_id = mm.queue_id AND ri.mailbox = mm.mailbox AND ri.state = 'delivered')"
            ).fetchone()[0]
        )
    finally:
        connection.close()


def _start_sink(port: int, counter: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    process = subprocess.Popen(
        [binary, "-c", "-u", "nobody", f"127.0.0.1:{port}", "256"],
        stdout=counter.open("wb"),
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return process


def _sink_count(counter: Path) -> int:
    numbers = re.findall(rb"\d+", counter.read_bytes())
    return int(numbers[-1]) if numbers else 0


async def _replay(work: Path, args: argparse.Namespace, sink_port: int, copies: int) -> dict[str, object]:
    smtp_port, web_port = free_port(), free_port()
    config = _config(work, sink_port, smtp_port, web_port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTINUITY_")}
    log = (work / "appliance.log").open("wb")
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "continuity", "--config", str(config), "serve"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    database = work / "appliance" / "continuity.db"
    watch = Watch(process.pid, web_port)
    stop = asyncio.Event()
    try:
        wait_for_port(web_port, timeout=120)
        pollers = [asyncio.create_task(watch.health(stop)), asyncio.create_task(watch.memory(stop))]
        deadline = time.monotonic() + args.timeout
        while True:
            row = await asyncio.to_thread(_run_row, database)
            if row is not None and row[0] == "completed":
                break
            if process.poll() is not None:
                raise SystemExit(f"continuity serve exited with {process.returncode}; see {work / 'appliance.log'}")
            if time.monotonic() > deadline:
                raise SystemExit("the replay did not complete in time")
            await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*pollers)
    finally:
        process.terminate()
        process.wait(timeout=60)
    _status, run_started, planned, last_delivery, items, delivered = row
    lost = await asyncio.to_thread(_lost, database)
    seconds = last_delivery - run_started
    latencies = sorted(watch.latencies)
    return {
        "copies": copies,
        "items": items,
        "delivered": delivered,
        "copies_lost": lost + max(0, copies - delivered),
        "start_to_first_run_s": round(run_started - started, 2),
        "planning_s": round(planned - run_started, 2),
        "replay_s": round(seconds, 2),
        "planning_share": round((planned - run_started) / seconds, 4),
        "copies_per_s": round(delivered / seconds),
        "max_rss_mb": round(watch.rss / 2**20),
        "max_pss_mb": round(watch.pss / 2**20),
        "healthz_worst_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "healthz_median_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "healthz_polls": len(latencies),
        "healthz_errors": watch.errors,
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    ensure_postfix()
    report: dict[str, object] = {
        "messages": args.messages, "size": args.size, "mailboxes": args.mailboxes,
        "multi_percent": args.multi_percent, "cpus": os.cpu_count(),
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.workdir) as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        sink_port = free_port()
        counter = work / "sink-counter"
        sink = _start_sink(sink_port, counter)
        try:
            store = await open_sqlite_store(work / "appliance" / "continuity.db", work / "appliance" / "blobs")
            try:
                print(f"seeding {args.messages} messages of {args.size} bytes over {args.mailboxes} mailboxes")
                began = time.perf_counter()
                copies = await _seed(store, args)
                report["seed_s"] = round(time.perf_counter() - began, 1)
                await _restoring(store)
            finally:
                await store.close()
            print(f"  {copies} standby copies in {report['seed_s']}s; replaying with continuity serve")
            replay = await _replay(work, args, sink_port, copies)
            replay["sink_transactions"] = _sink_count(counter)
            report["replay"] = replay
            print("  " + json.dumps(replay))
        finally:
            sink.terminate()
            sink.wait(timeout=10)
        if args.skip_postfix:
            return report
        shutil.rmtree(work / "appliance", ignore_errors=True)  # room for Postfix's queue
        flush_sink_port = free_port()
        flush_sink = _start_sink(flush_sink_port, work / "flush-counter")
        try:
            print("Postfix: queueing the same number of messages deferred, then postqueue -f into smtp-sink")
            flush_args = argparse.Namespace(messages=args.messages, size=args.size, mailboxes=1)
            seconds = await _postfix_flush(work, flush_args, flush_sink_port)
        finally:
            flush_sink.terminate()
            flush_sink.wait(timeout=10)
    report["postfix_flush"] = {"msgs_per_s": round(args.messages / seconds), "seconds": round(seconds, 2)}
    print(f"  {args.messages / seconds:.0f} msg/s ({seconds:.1f}s)")
    replay_rate = float(report["replay"]["copies_per_s"])  # type: ignore[index]
    report["ratio_replay_to_postfix_flush"] = round(replay_rate / (args.messages / seconds), 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=10_240, help="message size in bytes")
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--multi-percent", type=float, default=5.0, help="share of messages to two mailboxes")
    parser.add_argument("--timeout", type=float, default=6 * 3600.0, help="seconds the replay may take")
    parser.add_argument("--workdir", default=None, help="where the spool and Postfix's queue live")
    parser.add_argument("--skip-postfix", action="store_true", help="no reference (for a quick look only)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: Postfix needs it")
    report = asyncio.run(main_async(args))
    report["ratio_note"] = "replay copies/s over Postfix's postqueue -f msg/s of the same N, same run"
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = RESULTS / f"scale-{args.messages}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
