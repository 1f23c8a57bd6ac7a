"""Durable SMTP ingest rate of the appliance against Postfix on the same machine.

20 concurrent clients send 10 KB messages, first with one connection per message, then
over reused connections. Postfix (from Debian, installed when missing) runs with a relay
domain and a discard transport, so what it does per message is what the appliance does:
accept, write the queue file, fsync, answer 250. Each side is measured in alternating
rounds and the median is kept, because this machine is shared and noisy.

Run as root (Postfix needs it):  .venv/bin/python -m bench.ingest
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.postfix_instance import PostfixInstance, ensure_postfix
from bench.smtp_load import LoadResult, run_load
from tests.support.ports import free_port, wait_for_port

RECIPIENT = "bench@example.com"
RESULTS = Path(__file__).parent / "results"


def _start_appliance(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port, web_port = free_port(), free_port()
    config = work / "continuity.toml"
    config.write_text(
        f'data_dir = "{work / "appliance"}"\ndomains = ["example.com"]\nlog_level = "warning"\n'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\nhostname = "standby.bench.test"\n'
        'limit_exempt_networks = ["127.0.0.0/8"]\n'
        f'[web]\nlisten = "127.0.0.1:{web_port}"\n'
        # Raw durable ingest is measured; the filter pipeline has its own benchmark (bench/filters.py).
        "[filters]\nenabled = false\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTINUITY_")}
    command = [sys.executable, "-m", "continuity", "--config", str(config)]
    subprocess.run([*command, "mailbox", "add", RECIPIENT, "--name", "Bench"], check=True, env=env, capture_output=True)
    log = (work / "appliance.log").open("wb")
    process = subprocess.Popen([*command, "serve"], stdout=log, stderr=subprocess.STDOUT, env=env)
    wait_for_port(port)
    wait_for_port(web_port)
    return process, port


def _stored_count(work: Path) -> int:
    import sqlite3

    connection = sqlite3.connect(work / "appliance" / "continuity.db")
    try:
        return int(connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    finally:
        connection.close()


async def _measure(port: int, args: argparse.Namespace, reuse: bool, messages: int) -> LoadResult:
    return await run_load(
        "127.0.0.1",
        port,
        messages=messages,
        clients=args.clients,
        size=args.size,
        recipient=RECIPIENT,
        reuse_connections=reuse,
    )


async def _compare(appliance_port: int, postfix_port: int, args: argparse.Namespace, reuse: bool) -> dict[str, object]:
    ours: list[float] = []
    theirs: list[float] = []
    failures = 0
    for round_number in range(args.rounds):
        order = [("appliance", appliance_port), ("postfix", postfix_port)]
        if round_number % 2:
            order.reverse()
        for name, port in order:
            result = await _measure(port, args, reuse, args.messages)
            failures += result.failed
            (ours if name == "appliance" else theirs).append(result.rate)
            print(
                f"  round {round_number + 1} {name:9} {result.rate:8.0f} msg/s "
                f"({result.acknowledged} in {result.seconds:.2f}s)"
            )
    appliance_rate, postfix_rate = statistics.median(ours), statistics.median(theirs)
    return {
        "appliance_msgs_per_s": round(appliance_rate),
        "postfix_msgs_per_s": round(postfix_rate),
        "ratio": round(appliance_rate / postfix_rate, 2),
        "failed": failures,
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    ensure_postfix()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=args.workdir) as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # Postfix's daemons run as the postfix user and must reach their queue
        postfix = PostfixInstance(
            work / "postfix",
            free_port(),
            {
                "relay_domains": "example.com",
                "transport_maps": "inline:{ example.com=discard: }",
                "smtpd_relay_restrictions": "permit_auth_destination, reject",
            },
        )
        postfix.start()
        process, port = _start_appliance(work)
        try:
            print(f"warming up both servers ({args.warmup} messages each)")
            for target in (port, postfix.port):
                await _measure(target, args, False, args.warmup)
            before = _stored_count(work)
            report: dict[str, object] = {
                "clients": args.clients,
                "message_size": args.size,
                "messages_per_round": args.messages,
                "rounds": args.rounds,
                "cpus": os.cpu_count(),
            }
            for label, reuse in (("one_connection_per_message", False), ("reused_connections", True)):
                print(f"{label.replace('_', ' ')}:")
                report[label] = await _compare(port, postfix.port, args, reuse)
            stored = _stored_count(work) - before
            expected = args.rounds * args.messages * 2
            report["appliance_stored"] = stored
            if stored != expected:
                raise SystemExit(f"appliance acknowledged {expected} messages but stored {stored}")
        finally:
            process.terminate()
            process.wait(timeout=60)
            postfix.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--size", type=int, default=10_240, help="message size in bytes")
    parser.add_argument("--messages", type=int, default=4000, help="messages per measured round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--workdir", default=None, help="where both queues live (same disk for both)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: Postfix, the reference, needs it")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    report = asyncio.run(main_async(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(report | {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2))
    print()
    for label in ("one_connection_per_message", "reused_connections"):
        row = report[label]
        assert isinstance(row, dict)
        print(
            f"{label.replace('_', ' '):28} appliance {row['appliance_msgs_per_s']:>6} msg/s   "
            f"postfix {row['postfix_msgs_per_s']:>6} msg/s   ratio appliance/postfix {row['ratio']:.2f}"
        )


if __name__ == "__main__":
    main()
