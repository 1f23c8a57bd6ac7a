"""Replay rate of the appliance: 20,000 queued 10 KB messages into Dovecot over IMAP and into an SMTP sink.

The reference is Postfix flushing the same 20,000 messages from its queue (``postqueue -f``)
into the same sink (Postfix's smtp-sink), measured in the same run on the same machine.
Both sides make each delivery durable on their side (Postfix removes the queue file after
the sink's 250; the replay commits the journal outcome, fsynced, after it), and the replay
also runs the filter pipeline on every message again, as it does in production.

Steps: queue the messages in a fresh appliance data directory (through the store, as
ingest would have left them), replay them over IMAP into a Dovecot (the primary stand-in)
and time it, reset the journal and replay them over SMTP into smtp-sink and time it, then
queue the same messages in a private Postfix with deferred delivery, flush and time it.

Run as root (Postfix and Dovecot need it):  .venv/bin/python -m bench.replay

``--throttled`` runs the per-mailbox benchmark instead: 1,000 mailboxes x 20 messages into
Dovecot behind the throttling proxy (tests.support.imap_throttle, in its own process), which
lets each mailbox take 4 APPENDs per second and answers sooner ones as Exchange Online does
("Request is throttled. Suggested Backoff Time: N milliseconds"). The replay runs with
``mailbox_rate`` 4 and one connection per mailbox. The floor is every mailbox's 20 messages
at 4 msg/s (5 s), ``concurrency`` mailboxes at a time: ceil(1000 / concurrency) x 5 s; the
benchmark prints the drained time against it (target: within 1.2x). The filter pipeline is
off there: what is measured is the flow control, not the filters (the run above measures them).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.postfix_instance import PostfixInstance, ensure_postfix
from bench.smtp_load import make_body, run_load
from continuity.config.settings import Settings
from continuity.core.failover import FailoverRecord, FailoverState
from continuity.core.models import AcceptedRecipient, IncomingMessage
from continuity.core.queue_ids import new_queue_id
from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import RunStatus
from continuity.services.filter_setup import FilterService
from continuity.services.replayer import ReplayService
from continuity.store.sqlite import SqliteStore, open_sqlite_store
from tests.support.imap_throttle import ThrottlingImapProxy
from tests.support.ports import free_port, wait_for_port
from tests.support.primary import MASTER_USER, PrimaryStandIn

RESULTS = Path(__file__).parent / "results"
DOMAIN = "example.com"


def _mailboxes(count: int) -> list[str]:
    return [f"user{number:02d}@{DOMAIN}" for number in range(count)]


def _bodies(args: argparse.Namespace) -> list[tuple[str, bytes]]:
    mailboxes = _mailboxes(args.mailboxes)
    return [
        (mailboxes[index % len(mailboxes)], make_body(index, args.size, mailboxes[index % len(mailboxes)]))
        for index in range(args.messages)
    ]


async def _queue(store: SqliteStore, bodies: list[tuple[str, bytes]]) -> None:
    """Commit the messages as ingest would: bodies and rows in group commits."""
    now = time.time()
    for start in range(0, len(bodies), 500):
        batch = []
        for mailbox, body in bodies[start : start + 500]:
            message = IncomingMessage(
                queue_id=new_queue_id(now), sender="load@bench.test",
                recipients=(AcceptedRecipient(mailbox, mailbox),), content=body,
                trace_header=b"Received: from load.bench.test ([127.0.0.1])\r\n\tby standby.bench.test\r\n",
                received_at=now, client_address="127.0.0.1", client_helo="load.bench.test",
                message_id="", subject="load", sha256=hashlib.sha256(body).hexdigest(),
            )  # fmt: skip
            batch.append(message)
        await store.messages.commit(batch)


def _settings(work: Path, replay: dict[str, Any], primary: dict[str, Any], *, filtering: bool = True) -> Settings:
    # No DNS here: every stage but mail authentication runs (as in the test suite).
    return Settings.model_validate(
        {
            "data_dir": work / "appliance",
            "domains": [DOMAIN],
            "smtp": {"hostname": "standby.bench.test"},
            "primary": primary,
            "filters": {"enabled": filtering, "auth": {"enabled": False}},
            "replay": {"rate": 0, "poll": 0.2, "stragglers": False, **replay},
        }
    )


async def _replay(settings: Settings, store: SqliteStore) -> tuple[float, float]:
    """Replay everything queued; returns (seconds until drained, seconds to verify and complete)."""
    filters = FilterService(settings, store.filter_memory, store.mailboxes) if settings.filters.enabled else None
    if filters is not None:
        await filters.start(background=False)
    record = FailoverRecord(state=FailoverState.RESTORING, since=0.0)
    pipeline = filters.pipeline if filters is not None else None
    service = ReplayService(settings, store, state=lambda: record, pipeline=pipeline)
    started_wall = time.time()
    started = time.perf_counter()
    try:
        # No polling of the journal while it runs: on two cores, counting 20,000 items every
        # few milliseconds took a tenth of a core from the replay being measured.
        await service.run_until_complete()
        finished = time.perf_counter() - started
        run = await store.replay.latest_run()
        if run is None or run.status is not RunStatus.COMPLETED:
            raise SystemExit(f"the replay did not complete: {run} ({service.detail})")
        progress = await store.replay.progress(run.id)
        delivered = sum(p.count(ItemState.DELIVERED) for p in progress)
        if delivered != sum(p.total for p in progress):
            raise SystemExit(f"only {delivered} of {sum(p.total for p in progress)} delivered")
        # Drained: the last delivery's outcome (committed in the same group commit, ms later).
        drained = min(finished, _last_delivery_at(settings.database_path, run.id) - started_wall)
    finally:
        await service.close()
        if filters is not None:
            await filters.stop()
    return drained, finished - drained


def _last_delivery_at(database: Path, run_id: int) -> float:
    import sqlite3

    connection = sqlite3.connect(database)
    try:
        row = connection.execute("SELECT MAX(delivered_at) FROM replay_items WHERE run_id = ?", (run_id,)).fetchone()
    finally:
        connection.close()
    return float(row[0])


def _reset(database: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(database)
    try:
        connection.executescript(
            "BEGIN; DELETE FROM replay_items; DELETE FROM replay_runs; UPDATE messages SET state = 'queued'; COMMIT;"
        )
    finally:
        connection.close()


def _start_sink(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    process = subprocess.Popen(
        [binary, "-u", "nobody", f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_for_port(port)
    return process


def _queue_files(postfix: PostfixInstance) -> int:
    spool = postfix.root / "spool"
    return sum(
        len(files) for sub in ("incoming", "active", "deferred", "maildrop") for _, _, files in os.walk(spool / sub)
    )


async def _postfix_flush(work: Path, args: argparse.Namespace, sink_port: int) -> float:
    """Queue the messages in Postfix (delivery deferred), then time `postqueue -f` until the queue is empty."""
    postfix = PostfixInstance(
        work / "postfix",
        free_port(),
        {
            "relay_domains": DOMAIN,
            "relayhost": f"[127.0.0.1]:{sink_port}",
            "smtpd_relay_restrictions": "permit_auth_destination, reject",
            "defer_transports": "relay",
            "smtp_tls_security_level": "none",
        },
    )
    postfix.start()
    try:
        wait_for_port(postfix.port)
        mailboxes = _mailboxes(args.mailboxes)
        load = await run_load(
            "127.0.0.1", postfix.port, messages=args.messages, clients=20, size=args.size,
            recipient=mailboxes[0], reuse_connections=True,
        )  # fmt: skip
        if load.acknowledged != args.messages:
            raise SystemExit(f"Postfix accepted {load.acknowledged} of {args.messages} messages")
        deadline = time.monotonic() + 300
        while _queue_files(postfix) < args.messages or _active(postfix):
            if time.monotonic() > deadline:
                raise SystemExit("Postfix did not queue every message as deferred")
            await asyncio.sleep(0.5)
        config = str(postfix.config_dir)
        subprocess.run(["postconf", "-c", config, "-e", "defer_transports ="], check=True)
        subprocess.run(["postfix", "-c", config, "reload"], check=True, capture_output=True)
        await asyncio.sleep(1.0)
        started = time.perf_counter()
        subprocess.run(["postqueue", "-c", config, "-f"], check=True)
        while _queue_files(postfix) > 0:
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        sent = (postfix.root / "maillog").read_text(errors="replace").count("status=sent")
        if sent < args.messages:
            raise SystemExit(f"Postfix logged {sent} of {args.messages} deliveries as sent")
        return seconds
    finally:
        postfix.stop()


def _serve_proxy(upstream: int, tls: tuple[Path, Path, Path], rate: float, port: Any) -> None:
    """The throttling proxy in its own process (it must not take CPU from the replay's event loop)."""

    async def serve() -> None:
        proxy = ThrottlingImapProxy(upstream, *tls)
        proxy.mailbox_rate = rate
        await proxy.start()
        port.put(proxy.port)
        await asyncio.Event().wait()

    asyncio.run(serve())


async def throttled_async(args: argparse.Namespace) -> dict[str, object]:
    """1,000 mailboxes x 20 messages behind a per-mailbox limit of 4 APPENDs/s: drained time against the floor."""
    mailboxes = [f"user{number:04d}@{DOMAIN}" for number in range(args.throttled_mailboxes)]
    bodies = [
        (mailbox, make_body(index * len(mailboxes) + n, args.size, mailbox))
        for index in range(args.throttled_messages)
        for n, mailbox in enumerate(mailboxes)
    ]
    per_mailbox = args.throttled_messages / args.mailbox_limit
    floor = math.ceil(len(mailboxes) / args.concurrency) * per_mailbox
    report: dict[str, object] = {
        "mailboxes": len(mailboxes), "messages_per_mailbox": args.throttled_messages, "size": args.size,
        "mailbox_limit": args.mailbox_limit, "concurrency": args.concurrency, "cpus": os.cpu_count(),
        "floor_seconds": floor,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-replay-throttled-", dir=args.workdir) as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        primary = PrimaryStandIn([DOMAIN], dict.fromkeys(mailboxes, "secret"))
        primary.start()
        spawn = multiprocessing.get_context("spawn")
        ports = spawn.SimpleQueue()
        tls = (primary.cert_file, primary.key_file, primary.ca_file)
        proxy = spawn.Process(
            target=_serve_proxy, args=(primary.imaps_port, tls, args.mailbox_limit, ports), daemon=True
        )
        proxy.start()
        try:
            proxy_port = int(str(ports.get()))
            settings = _settings(
                work,
                {"master_user": MASTER_USER, "master_password": primary.master_password,
                 "ca_file": str(primary.ca_file), "concurrency": args.concurrency, "connections_per_mailbox": 1,
                 "mailbox_rate": args.mailbox_limit, "batch": args.throttled_messages, "timeout": 60},
                {"host": "127.0.0.1", "imap_port": proxy_port, "smtp_port": free_port()},
                filtering=False,
            )  # fmt: skip
            store = await open_sqlite_store(settings.database_path, settings.blob_path, recover=True)
            try:
                print(f"queueing {len(bodies)} messages for {len(mailboxes)} mailboxes")
                await _queue(store, bodies)
                print(f"replaying behind a limit of {args.mailbox_limit:g} APPENDs/s per mailbox (floor {floor:.0f}s)")
                seconds, verify = await _replay(settings, store)
            finally:
                await store.close()
        finally:
            proxy.terminate()
            proxy.join(10)
            primary.close()
    report |= {"seconds": round(seconds, 2), "verify_seconds": round(verify, 2), "ratio": round(seconds / floor, 2)}
    print(f"  drained in {seconds:.1f}s against a floor of {floor:.0f}s: {seconds / floor:.2f}x (target 1.2x)")
    return report


def _active(postfix: PostfixInstance) -> int:
    return sum(len(files) for _, _, files in os.walk(postfix.root / "spool" / "active"))


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    ensure_postfix()
    bodies = _bodies(args)
    report: dict[str, object] = {"messages": args.messages, "size": args.size, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-replay-", dir=args.workdir) as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        primary = PrimaryStandIn([DOMAIN], dict.fromkeys(_mailboxes(args.mailboxes), "secret"))
        primary.start()
        sink_port = free_port()
        sink = _start_sink(sink_port)
        try:
            imap = _settings(
                work,
                {"master_user": MASTER_USER, "master_password": primary.master_password,
                 "ca_file": str(primary.ca_file), "concurrency": args.concurrency,
                 "connections_per_mailbox": args.per_mailbox, "batch": 100},
                {"host": "127.0.0.1", "imap_port": primary.imaps_port, "smtp_port": sink_port},
            )  # fmt: skip
            store = await open_sqlite_store(imap.database_path, imap.blob_path, recover=True)
            try:
                print(f"queueing {args.messages} messages of {args.size} bytes in the appliance")
                await _queue(store, bodies)
                print("replaying over IMAP into Dovecot")
                seconds, verify = await _replay(imap, store)
                report["imap_replay"] = {
                    "msgs_per_s": round(args.messages / seconds),
                    "seconds": round(seconds, 2),
                    "verify_seconds": round(verify, 2),
                }
                print(f"  {args.messages / seconds:.0f} msg/s ({seconds:.1f}s; verification {verify:.1f}s)")
            finally:
                await store.close()
            for label, filtering in (("smtp_replay", True), ("smtp_replay_without_filters", False)):
                _reset(imap.database_path)
                smtp = _settings(
                    work,
                    {"method": "smtp", "smtp_tls": "none", "concurrency": args.concurrency, "batch": 100},
                    {"host": "127.0.0.1", "imap_port": primary.imaps_port, "smtp_port": sink_port},
                    filtering=filtering,
                )
                store = await open_sqlite_store(smtp.database_path, smtp.blob_path, recover=True)
                try:
                    print(
                        f"replaying over SMTP into smtp-sink ({'with' if filtering else 'without'} the filter pipeline)"
                    )
                    seconds, _verify = await _replay(smtp, store)
                    report[label] = {"msgs_per_s": round(args.messages / seconds), "seconds": round(seconds, 2)}
                    print(f"  {args.messages / seconds:.0f} msg/s ({seconds:.1f}s)")
                finally:
                    await store.close()
            print("Postfix: queueing the same messages deferred, then postqueue -f into smtp-sink")
            seconds = await _postfix_flush(work, args, sink_port)
            report["postfix_flush"] = {"msgs_per_s": round(args.messages / seconds), "seconds": round(seconds, 2)}
            print(f"  {args.messages / seconds:.0f} msg/s ({seconds:.1f}s)")
        finally:
            sink.terminate()
            sink.wait(timeout=10)
            primary.close()
    postfix_rate = float(report["postfix_flush"]["msgs_per_s"])  # type: ignore[index]
    for label in ("smtp_replay", "smtp_replay_without_filters"):
        rate = float(report[label]["msgs_per_s"])  # type: ignore[index]
        report[f"ratio_{label}_to_postfix_flush"] = round(rate / postfix_rate, 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=10_240, help="message size in bytes")
    parser.add_argument("--mailboxes", type=int, default=10, help="mailboxes the messages are spread over")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=20,
        help="[replay] concurrency (20: Postfix's default_destination_concurrency_limit)",
    )
    parser.add_argument("--per-mailbox", type=int, default=4, help="[replay] connections_per_mailbox")
    parser.add_argument("--workdir", default=None, help="where the queues live (same disk for all)")
    parser.add_argument("--throttled", action="store_true", help="run the per-mailbox throttling benchmark instead")
    parser.add_argument("--throttled-mailboxes", type=int, default=1000)
    parser.add_argument("--throttled-messages", type=int, default=20, help="messages per mailbox (--throttled)")
    parser.add_argument("--mailbox-limit", type=float, default=4.0, help="APPENDs/s per mailbox (--throttled)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: Postfix and Dovecot need it")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    RESULTS.mkdir(exist_ok=True)
    if args.throttled:
        if args.concurrency == 20:
            args.concurrency = 64  # the most [replay] concurrency allows
        throttled = asyncio.run(throttled_async(args))
        stamp = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (RESULTS / "replay_throttled.json").write_text(json.dumps(throttled | stamp, indent=2))
        return
    report = asyncio.run(main_async(args))
    (RESULTS / "replay.json").write_text(json.dumps(report | {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2))
    print()
    rows = [
        ("IMAP replay into Dovecot (filters on)", report["imap_replay"]),
        ("SMTP replay into smtp-sink (filters on)", report["smtp_replay"]),
        ("SMTP replay into smtp-sink (filters off)", report["smtp_replay_without_filters"]),
        ("Postfix flush (postqueue -f) into smtp-sink", report["postfix_flush"]),
    ]
    for label, row in rows:
        assert isinstance(row, dict)
        print(f"{label:46} {row['msgs_per_s']:>6} msg/s")
    print(
        f"ratio SMTP replay / Postfix flush: {report['ratio_smtp_replay_to_postfix_flush']:.2f} with the filter "
        f"pipeline, {report['ratio_smtp_replay_without_filters_to_postfix_flush']:.2f} without"
    )


if __name__ == "__main__":
    main()
