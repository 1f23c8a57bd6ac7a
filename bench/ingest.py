"""Durable SMTP ingest rate of the appliance as shipped against Postfix and Postfix with rspamd.

20 concurrent clients send 10 KB messages, first with one connection per message (the
headline), then over reused connections, to four servers on this machine:

* the appliance in its production default: the filters as shipped, the default log level,
  the log on stderr written to a file; the filters' DNS is a loopback BIND (no query leaves
  the machine, none waits for a time-out);
* the same appliance with ``[filters] enabled = false``;
* Postfix (from Debian, installed when missing) with a relay domain and a discard
  transport, so what it does per message is accept, write the queue file, fsync, answer 250;
* that Postfix with rspamd as its milter (Debian's rules; see bench/rspamd_instance.py),
  ``milter_default_action = tempfail``, rspamd's DNS on the same loopback BIND.

The servers are measured in alternating rounds and each one's median is kept, because
this machine is shared and noisy. After a round of the appliance, the next round waits
until the appliance's background work (indexing, learning) has finished.

Run as root (Postfix needs it):  .venv/bin/python -m bench.ingest [--liveness-json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.appliance_instance import ApplianceInstance, shipped_filters
from bench.loopback_dns import start_loopback_dns
from bench.postfix_instance import PostfixInstance, ensure_postfix
from bench.rspamd_instance import RspamdMilter, ensure_rspamd
from bench.smtp_load import LoadResult, run_load
from tests.support.ports import free_port

RECIPIENT = "bench@example.com"
RESULTS = Path(__file__).parent / "results"
MODES = {"one_connection_per_message": False, "reused_connections": True}
SERVERS = ("appliance", "appliance_filters_off", "postfix", "postfix_rspamd")
# (numerator, denominator, target): the ratios this benchmark is for.
TARGETS = (
    ("appliance", "postfix_rspamd", 1.0),
    ("appliance", "postfix", 0.75),
    ("appliance_filters_off", "postfix", 1.2),
)
# LIVENESS: the liveness test writes a JSON object of worst latencies under load; given with
# --liveness-json PATH, they are printed beside the ratios and kept in results/ingest.json
# (read_liveness below). Keys in this order first, then any others the file has.
LIVENESS_KEYS = ("healthz_worst_ms", "banner_worst_ms", "webmail_worst_ms", "ingest_worst_ms", "hostile_answer_worst_s")
POSTFIX_DISCARD = {
    "relay_domains": "example.com",
    "transport_maps": "inline:{ example.com=discard: }",
    "smtpd_relay_restrictions": "permit_auth_destination, reject",
}

Measure = Callable[[str, bool, int], Awaitable[LoadResult]]


async def _rounds(
    measure: Measure, appliances: dict[str, ApplianceInstance], args: argparse.Namespace, reuse: bool
) -> dict[str, object]:
    rates: dict[str, list[float]] = {name: [] for name in SERVERS}
    acknowledged = dict.fromkeys(SERVERS, 0)
    failed = dict.fromkeys(SERVERS, 0)
    for round_number in range(args.rounds):
        shift = round_number % len(SERVERS)
        for name in SERVERS[shift:] + SERVERS[:shift]:  # each server goes first in turn
            result = await measure(name, reuse, args.messages)
            rates[name].append(result.rate)
            acknowledged[name] += result.acknowledged
            failed[name] += result.failed
            print(
                f"  round {round_number + 1} {name:22} {result.rate:8.0f} msg/s "
                f"({result.acknowledged} in {result.seconds:.2f}s, {result.failed} refused)",
                flush=True,
            )
            if name in appliances:
                appliances[name].wait_until_idle()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "msgs_per_s": {name: round(rate) for name, rate in medians.items()},
        "ratios": {f"{top}/{bottom}": round(medians[top] / medians[bottom], 2) for top, bottom, _ in TARGETS},
        "acknowledged": acknowledged,
        "refused": failed,
    }


def _work_directory(args: argparse.Namespace) -> contextlib.AbstractContextManager[str]:
    """A temporary directory for every server's files, removed afterwards unless --keep."""
    if args.keep:
        return contextlib.nullcontext(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.workdir))
    return tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=args.workdir)


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    ensure_postfix()
    ensure_rspamd()
    with _work_directory(args) as tmp:
        work = Path(tmp)
        if args.keep:
            print(f"logs and stores are kept in {work}")
        work.chmod(0o755)  # Postfix's daemons run as the postfix user and must reach their queue
        dns = start_loopback_dns(work / "dns")
        resolver = f"127.0.0.1:{dns.port}"
        rspamd = RspamdMilter(work / "rspamd", resolver, args.rspamd_scanners)
        milter = {
            "smtpd_milters": f"inet:127.0.0.1:{rspamd.milter_port}",
            "milter_default_action": "tempfail",
            "milter_protocol": "6",
        }
        postfixes = {
            "postfix": PostfixInstance(work / "postfix", free_port(), POSTFIX_DISCARD),
            "postfix_rspamd": PostfixInstance(work / "postfix-rspamd", free_port(), POSTFIX_DISCARD | milter),
        }
        appliances = {
            "appliance": ApplianceInstance(work / "appliance", RECIPIENT, filters=True, resolver=resolver),
            "appliance_filters_off": ApplianceInstance(
                work / "appliance-off", RECIPIENT, filters=False, resolver=resolver
            ),
        }
        ports: dict[str, int] = {}
        try:
            print("starting rspamd (it compiles its rules first; this can take a minute)", flush=True)
            rspamd.start()
            for name, postfix in postfixes.items():
                postfix.start()
                ports[name] = postfix.port
            for name, appliance in appliances.items():
                appliance.start()
                ports[name] = appliance.port

            async def measure(name: str, reuse: bool, messages: int) -> LoadResult:
                return await run_load(
                    "127.0.0.1",
                    ports[name],
                    messages=messages,
                    clients=args.clients,
                    size=args.size,
                    recipient=RECIPIENT,
                    reuse_connections=reuse,
                )

            print(f"warming up every server ({args.warmup} messages each)", flush=True)
            for name in SERVERS:
                warm = await measure(name, False, args.warmup)
                if warm.failed:
                    raise SystemExit(f"{name} refused {warm.failed} of {args.warmup} warm-up messages; see {work}")
                if name in appliances:
                    appliances[name].wait_until_idle()
            before = {name: appliance.stored() for name, appliance in appliances.items()}
            report: dict[str, object] = {
                "clients": args.clients,
                "message_size": args.size,
                "messages_per_round": args.messages,
                "rounds": args.rounds,
                "cpus": os.cpu_count(),
                "appliance_filters": shipped_filters(),
                "rspamd": rspamd.describe(),
            }
            for label, reuse in MODES.items():
                print(f"{label.replace('_', ' ')}:", flush=True)
                report[label] = await _rounds(measure, appliances, args, reuse)
            _check_stored(report, appliances, before)
        finally:
            for appliance in appliances.values():
                appliance.stop()
            for postfix in postfixes.values():
                postfix.stop()
            rspamd.stop()
            dns.stop()
    return report


def _check_stored(report: dict[str, object], appliances: dict[str, ApplianceInstance], before: dict[str, int]) -> None:
    """Each appliance stored exactly the messages it acknowledged with 250 (250 means durable)."""
    for name, appliance in appliances.items():
        acknowledged = 0
        for label in MODES:
            row = report[label]
            assert isinstance(row, dict)
            acknowledged += row["acknowledged"][name]
        stored = appliance.stored() - before[name]
        report[f"{name}_stored"] = stored
        if stored != acknowledged:
            raise SystemExit(f"{name} acknowledged {acknowledged} messages but stored {stored}")


def read_liveness(path: Path | None) -> dict[str, object]:
    """The liveness test's worst latencies (its JSON file), or nothing when no file is given."""
    if path is None:
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a JSON object of worst latencies")
    ordered = [key for key in LIVENESS_KEYS if key in data] + [key for key in data if key not in LIVENESS_KEYS]
    return {key: data[key] for key in ordered}


def print_summary(report: dict[str, object], liveness: dict[str, object], liveness_path: Path | None) -> None:
    """Each server's msg/s, the ratios against their targets, and the liveness figures beside them."""
    print(f"\nappliance filters (as shipped): {report['appliance_filters']}")
    print(f"rspamd: {report['rspamd']}")
    for label in MODES:
        row = report[label]
        assert isinstance(row, dict)
        rates, ratios = row["msgs_per_s"], row["ratios"]
        print(f"\n{label.replace('_', ' ')} (median msg/s):")
        print("  " + "   ".join(f"{name} {rates[name]}" for name in SERVERS))
        for top, bottom, target in TARGETS:
            ratio = ratios[f"{top}/{bottom}"]
            verdict = "met" if ratio >= target else "NOT met"
            print(f"  {top + ' / ' + bottom:40} {ratio:5.2f}   target >= {target:.2f}: {verdict}")
        if any(row["refused"].values()):
            print(f"  refused: {row['refused']}")
    if liveness:
        print(f"\nliveness test's worst latencies ({liveness_path}):")
        for key, value in liveness.items():
            print(f"  {key:24} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--size", type=int, default=10_240, help="message size in bytes")
    parser.add_argument("--messages", type=int, default=4000, help="messages per measured round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--workdir", default=None, help="where every queue lives (same disk for all)")
    parser.add_argument(
        "--rspamd-scanners", type=int, default=None, help="rspamd's normal worker processes (default: as shipped, one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs, queues and stores afterwards")
    parser.add_argument(
        "--liveness-json",
        type=Path,
        default=None,
        help="the liveness test's JSON of worst latencies, shown beside the ratios",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: Postfix, the reference, needs it")
    liveness = read_liveness(args.liveness_json)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    report = asyncio.run(main_async(args))
    if liveness:
        report["liveness"] = liveness
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(report | {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2))
    print_summary(report, liveness, args.liveness_json)


if __name__ == "__main__":
    main()
