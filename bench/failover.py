"""Failover time: from the moment the primary stops answering to the MX served by BIND being the standby's.

A primary stand-in (Postfix + Dovecot + HTTPS health server) and a private BIND9 with a
TSIG key run on loopback; the appliance runs as `continuity serve` with the default
health policy at a 5 s probe interval and DNS switching. Each round stops the primary,
polls BIND every 50 ms until it serves the standby's MX, then restarts the primary and
waits for the automatic failback (the hold-down, which only delays failback, is
shortened to 10 s so rounds can follow each other).

The reference is the physical floor measured in the same run: the policy's minimum
detection time (failures_to_down cycles spanning down_after, on cycle boundaries) plus
the DNS update round trip (a guarded UPDATE and its verification on every authoritative
server, timed with the appliance's own updater against the same BIND).

Run as root (Postfix and Dovecot need it):  .venv/bin/python -m bench.failover [--rounds N]
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

import tomli_w

from continuity.config.dns import DnsSettings
from continuity.config.monitor import MonitorSettings
from continuity.dns.factory import build_mx_updater
from tests.support.bind import BindServer, TsigKey, zone_text
from tests.support.ports import free_port, wait_for_port
from tests.support.primary import PrimaryStandIn

RESULTS = Path(__file__).parent / "results"
PRIMARY_MX = "10 mail.example.com."
STANDBY_MX = "10 standby.example.com."
INTERVAL = 5.0


def _dns_settings(bind: BindServer, key: TsigKey) -> dict[str, object]:
    return {
        "server": f"127.0.0.1:{bind.port}",
        "verify_port": bind.port,
        "primary_mx": [PRIMARY_MX],
        "standby_mx": [STANDBY_MX],
        "tsig_key_name": key.name,
        "tsig_secret": key.secret,
    }


async def _dns_round_trip(bind: BindServer, key: TsigKey, samples: int = 7) -> float:
    """Median time of a guarded MX replacement plus its verification, on a zone of its own."""
    settings = DnsSettings(**_dns_settings(bind, key))  # type: ignore[arg-type]
    updater = build_mx_updater(settings)
    times = []
    sides = [[PRIMARY_MX], [STANDBY_MX]]
    for index in range(samples):
        expected, target = sides[index % 2], sides[(index + 1) % 2]
        started = time.perf_counter()
        await updater.replace_mx("floor.test", expected, target)
        await updater.verify("floor.test", target)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _wait_mx(bind: BindServer, wanted: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bind.query("example.com", "MX") == [wanted]:
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"BIND did not serve {wanted} within {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    key = TsigKey.generate()
    records = [f"@ IN MX {PRIMARY_MX}", "mail IN A 127.0.0.2", "standby IN A 127.0.0.3"]
    bind = BindServer(
        work / "bind",
        {
            "example.com": zone_text("example.com", records, ttl=60),
            "floor.test": zone_text("floor.test", [f"@ IN MX {PRIMARY_MX}"]),
        },
        key,
    )
    primary = PrimaryStandIn(["example.com"], {"canary@example.com": "canary-pw"})
    bind.start()
    primary.start()
    process: subprocess.Popen[bytes] | None = None
    try:
        round_trip = asyncio.run(_dns_round_trip(bind, key))
        policy = MonitorSettings(interval=INTERVAL).policy()
        detection = policy.minimum_detection_time(INTERVAL)
        floor = detection + round_trip
        settings = primary.settings("canary@example.com")
        settings["monitor"]["interval"] = INTERVAL
        # Only the failback waits for the hold-down; shortened so the rounds can follow each other
        # (detection, which is what is measured, keeps the default policy).
        settings["monitor"]["hold_down"] = 2 * INTERVAL
        web_port, smtp_port = free_port(), free_port()
        config = work / "continuity.toml"
        config.write_text(
            tomli_w.dumps(
                {
                    "data_dir": str(work / "data"),
                    "domains": ["example.com"],
                    "smtp": {"listen": f"127.0.0.1:{smtp_port}", "hostname": "standby.example.com"},
                    "web": {"listen": f"127.0.0.1:{web_port}"},
                    **settings,
                    "failover": {"mode": "dns", "command_poll": 0.2},
                    "dns": _dns_settings(bind, key),
                }
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONTINUITY_")}
        log = (work / "serve.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "continuity", "--config", str(config), "serve"], stdout=log, stderr=log, env=env
        )
        wait_for_port(smtp_port, timeout=30)
        times = []
        for number in range(1, args.rounds + 1):
            # Let the monitor see the primary healthy first.
            time.sleep(2 * INTERVAL)
            primary.stop()
            stopped = time.monotonic()
            switched = _wait_mx(bind, STANDBY_MX, detection + 10 * INTERVAL)
            times.append(switched - stopped)
            print(f"round {number}: MX switched {switched - stopped:.1f}s after the primary stopped answering")
            primary.start()
            # The failover was automatic: after the (shortened) hold-down the appliance fails back by itself.
            _wait_mx(bind, PRIMARY_MX, 120)
        median = statistics.median(times)
        report = {
            "probe_interval_s": INTERVAL,
            "failover_s": round(median, 2),
            "rounds": [round(t, 2) for t in times],
            "floor_s": round(floor, 3),
            "detection_floor_s": detection,
            "dns_round_trip_ms": round(round_trip * 1000, 1),
            "ratio": round(median / floor, 3),
        }
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "failover.json").write_text(
            json.dumps(report | {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2)
        )
        print()
        print(
            f"failover time (median of {len(times)}): {median:.1f}s at a {INTERVAL:g}s probe interval, default policy"
        )
        print(
            f"physical floor: {floor:.2f}s = detection {detection:g}s "
            f"({policy.failures_to_down} failed cycles spanning {policy.down_after:g}s) "
            f"+ DNS update round trip {round_trip * 1000:.0f} ms"
        )
        print(f"ratio to the floor: {median / floor:.3f}")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=60)
        primary.close()
        bind.stop()


if __name__ == "__main__":
    main()
