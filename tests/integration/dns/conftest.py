"""The DNS servers the providers are tested against, started on loopback, and what the tests share.

A :class:`Deployment` is one real server holding example.com, with the ``[dns]`` table that
switches it and the ways to look at it: BIND and Knot DNS through the ``rfc2136``
provider, PowerDNS Authoritative through the ``powerdns`` provider (its HTTP API).
``name_servers`` lets a test list a second authoritative server (on ::1, the same port)
that it runs itself.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest
import tomli_w

from continuity.config.dns import DnsSettings
from continuity.config.failover import FailoverSettings
from continuity.config.settings import Settings
from continuity.services.failover_wiring import FailoverServices, build_failover
from continuity.store.protocol import Store
from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import clean_env
from tests.support.bind import BindServer, TsigKey, zone_text
from tests.support.knot import KnotServer
from tests.support.powerdns import PowerDnsServer

PRIMARY_MX = "10 mail.example.com."
STANDBY_MX = "10 standby.example.com."
ELSEWHERE_MX = "20 elsewhere.example.org."
RECORDS = [f"@ IN MX {PRIMARY_MX}", "mail IN A 127.0.0.2", "standby IN A 127.0.0.3"]
KINDS = ("bind", "knot", "powerdns")


@dataclass
class Deployment:
    """One authoritative server for example.com and how the appliance reaches it."""

    kind: str
    port: int
    dns: dict[str, Any]
    # The same [dns] table with credentials the server refuses.
    bad_credentials: dict[str, Any]
    query: Callable[[str, str], list[str]]
    # Points the MX elsewhere the way an administrator of this server does it.
    edit_mx_by_hand: Callable[[list[str]], None]
    stop: Callable[[], None]

    def served_mx(self) -> list[str]:
        """The MX this server answers for example.com."""
        return self.query("example.com", "MX")


def _common(port: int) -> dict[str, Any]:
    return {
        "server": f"127.0.0.1:{port}",
        "verify_port": port,
        "primary_mx": [PRIMARY_MX],
        "standby_mx": [STANDBY_MX],
        "ttl": 60,
        "verify_timeout": 5,
        "attempts": 2,
        "query_timeout": 2,
    }


def start_deployment(
    kind: str, workdir: Path, *, port: int | None = None, name_servers: Mapping[str, str] | None = None
) -> Deployment:
    """Start a server of this kind for example.com on 127.0.0.1 (Debian packages bind9, knot, pdns-server)."""
    text = zone_text("example.com", RECORDS, ttl=60, name_servers=name_servers)
    key = TsigKey.generate()
    wrong_key = {"tsig_key_name": key.name, "tsig_secret": TsigKey.generate().secret}
    tsig = {"tsig_key_name": key.name, "tsig_secret": key.secret}
    if kind == "bind":
        bind = BindServer(workdir / "bind", {"example.com": text}, key, port=port)
        bind.start()

        def bind_edit(records: list[str]) -> None:
            # BIND's zones that take updates are edited with nsupdate (a signed UPDATE), not in the file.
            signed_update(key, bind.port, records)

        return Deployment(
            kind,
            bind.port,
            {**_common(bind.port), **tsig},
            {**_common(bind.port), **wrong_key},
            bind.query,
            bind_edit,
            bind.stop,
        )
    if kind == "knot":
        knot = KnotServer(workdir / "knot", "example.com", text, key, port=port)
        knot.start()
        return Deployment(
            kind,
            knot.port,
            {**_common(knot.port), **tsig},
            {**_common(knot.port), **wrong_key},
            knot.query,
            lambda records: knot.edit_by_hand("@", "MX", 60, records),
            knot.stop,
        )
    assert kind == "powerdns", kind
    pdns = PowerDnsServer(workdir / "pdns", {"example.com": text}, port=port)
    pdns.start()
    api = {"provider": "powerdns", "powerdns": {"url": pdns.api_url, "api_key": pdns.api_key}}
    wrong_api = {"provider": "powerdns", "powerdns": {"url": pdns.api_url, "api_key": "not-the-key"}}
    return Deployment(
        kind,
        pdns.port,
        {**_common(pdns.port), **api},
        {**_common(pdns.port), **wrong_api},
        pdns.query,
        lambda records: pdns.edit_by_hand("example.com", "@", "MX", 60, records),
        pdns.stop,
    )


def signed_update(key: TsigKey, port: int, records: list[str], address: str = "127.0.0.1") -> None:
    """Replace example.com's MX with an UPDATE signed with key (what nsupdate does)."""
    update = dns.update.UpdateMessage("example.com", keyring=dns.tsigkeyring.from_text({key.name: key.secret}))
    update.replace("example.com.", 60, "MX", *records)
    response = dns.query.tcp(update, address, port=port, timeout=5)
    assert response.rcode() == dns.rcode.NOERROR


@pytest.fixture(params=KINDS)
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Each server in turn, started for one test."""
    started = start_deployment(str(request.param), tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_sqlite_store(tmp_path / "data" / "continuity.db", tmp_path / "data" / "blobs")
    try:
        yield opened
    finally:
        await opened.close()


def make_settings(tmp_path: Path, dns: dict[str, Any], domains: tuple[str, ...] = ("example.com",)) -> Settings:
    """Settings for switching these domains with this [dns] table; the controller retries a failed switch soon."""
    return Settings(
        data_dir=tmp_path / "data",
        domains=list(domains),
        dns=DnsSettings(**dns),
        failover=FailoverSettings(retry_initial=0.2),
    )


async def failover_services(settings: Settings, store: Store) -> FailoverServices:
    """The failover services as the CLI builds them (no background tasks), loaded from the store."""
    services = build_failover(settings, store, background=False)
    await services.controller.load()
    return services


def run_cli(tmp_path: Path, dns: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """`continuity --config FILE ARGS...` with a configuration holding this [dns] table."""
    config = tmp_path / "continuity.toml"
    data = {"data_dir": str(tmp_path / "data"), "domains": ["example.com"], "dns": dns}
    config.write_text(tomli_w.dumps(data))
    return subprocess.run(
        [sys.executable, "-m", "continuity", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=clean_env(),
    )
