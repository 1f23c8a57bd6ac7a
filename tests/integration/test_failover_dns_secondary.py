"""DNS switching verified on every authoritative server: a real BIND9 primary and a secondary fed by NOTIFY + IXFR.

The primary (ns1, 127.0.0.1) takes the signed updates; the secondary (ns2, ::1, the same
port) transfers the zone from it. A switch is complete only when both serve the new MX;
a secondary that misses the change (transfers refused) or does not answer makes the
switch a loud partial failure that leaves the state in its switching state, and the
monitor's retry completes it once the secondary serves the new MX.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.config.dns import DnsSettings
from continuity.config.failover import FailoverSettings
from continuity.config.settings import Settings
from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState, Routing
from continuity.services.failover_status import collect_status, routing_sentence
from continuity.services.failover_wiring import FailoverServices, build_failover
from continuity.store.protocol import Store
from continuity.store.sqlite import open_sqlite_store
from tests.support.bind import BindServer, TsigKey, start_pair

PRIMARY_MX = "10 mail.example.com."
STANDBY_MX = "10 standby.example.com."
RECORDS = [f"@ IN MX {PRIMARY_MX}", "mail IN A 127.0.0.2", "standby IN A 127.0.0.3"]

pytestmark = pytest.mark.slow


@pytest.fixture
def key() -> TsigKey:
    return TsigKey.generate()


@pytest.fixture
def pair(tmp_path: Path, key: TsigKey) -> Iterator[tuple[BindServer, BindServer]]:
    primary, secondary = start_pair(tmp_path / "bind", "example.com", RECORDS, key, ttl=60)
    try:
        yield primary, secondary
    finally:
        secondary.stop()
        primary.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_sqlite_store(tmp_path / "data" / "continuity.db", tmp_path / "data" / "blobs")
    try:
        yield opened
    finally:
        await opened.close()


async def _services(tmp_path: Path, store: Store, primary: BindServer, key: TsigKey, **dns: Any) -> FailoverServices:
    settings = Settings(
        data_dir=tmp_path / "data",
        domains=["example.com"],
        failover=FailoverSettings(retry_initial=0.2),
        dns=DnsSettings(
            **{
                "server": f"127.0.0.1:{primary.port}",
                "verify_port": primary.port,
                "primary_mx": [PRIMARY_MX],
                "standby_mx": [STANDBY_MX],
                "tsig_key_name": key.name,
                "tsig_secret": key.secret,
                "ttl": 60,
                "verify_timeout": 5,
                "attempts": 2,
                "query_timeout": 1,
                **dns,
            }
        ),
    )
    services = build_failover(settings, store, background=False)
    await services.controller.load()
    return services


def _served(*servers: BindServer) -> list[list[str]]:
    return [server.query("example.com", "MX") for server in servers]


async def _audit(store: Store, action: str) -> list[dict[str, Any]]:
    entries = await store.audit.list(1000)
    return [json.loads(entry.record.details_json) for entry in entries if entry.record.action == action]


def _record(services: FailoverServices) -> FailoverRecord:
    return services.controller.record


async def test_failover_and_failback_are_verified_on_the_primary_and_the_secondary(
    tmp_path: Path, pair: tuple[BindServer, BindServer], key: TsigKey, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="continuity.dns")
    primary, secondary = pair
    both = [f"127.0.0.1:{primary.port}", f"[::1]:{primary.port}"]
    assert _served(primary, secondary) == [[PRIMARY_MX], [PRIMARY_MX]]
    serial = secondary.serial("example.com")
    services = await _services(tmp_path, store, primary, key)
    controller = services.controller

    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert controller.record.state is FailoverState.FAILED_OVER and controller.record.routing is Routing.STANDBY
    # The secondary got the change by NOTIFY and a zone transfer, not from us.
    assert _served(primary, secondary) == [[STANDBY_MX], [STANDBY_MX]]
    assert secondary.serial("example.com") > serial
    (switched,) = await _audit(store, "failover.switch_succeeded")
    (domain,) = switched["evidence"]["domains"]
    assert domain["verified_on"] == both and domain["updated"] is True
    assert switched["evidence"]["unverified"] == [] and switched["evidence"]["failed"] == {}
    # The primary takes the TSIG key and answers signed; the secondary has no key: read unsigned, said once.
    assert switched["evidence"]["read_unsigned"] == [f"[::1]:{primary.port}"]
    warnings = [r.getMessage() for r in caplog.records if "does not answer queries signed" in r.getMessage()]
    assert len(warnings) == 1 and f"[::1]:{primary.port}" in warnings[0] and "PeerBadKey" in warnings[0]

    await controller.fire(FailoverEvent.OPERATOR_FAILBACK, actor="test", reason="exchange back")
    assert "replay complete" in await controller.reconcile()
    assert _record(services).state is FailoverState.NORMAL and _record(services).routing is Routing.PRIMARY
    assert _served(primary, secondary) == [[PRIMARY_MX], [PRIMARY_MX]]
    back = (await _audit(store, "failover.switch_succeeded"))[-1]
    assert back["evidence"]["to"] == "primary" and back["evidence"]["domains"][0]["verified_on"] == both
    assert (await store.audit.verify()).ok


async def test_stale_secondary_is_a_loud_partial_failure_until_it_serves_the_new_mx(
    tmp_path: Path,
    pair: tuple[BindServer, BindServer],
    key: TsigKey,
    store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary, secondary = pair
    stale = f"[::1]:{primary.port}"
    # The primary stops letting the secondary transfer the zone (a broken allow-transfer or ACL).
    primary.reconfigure(allow_transfer=[])
    assert not primary.may_transfer("example.com", "127.0.0.1")
    services = await _services(tmp_path, store, primary, key, verify_timeout=2)
    controller = services.controller

    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    # The primary serves the standby's MX; the secondary still the primary's (it was NOTIFYed, its IXFR refused).
    assert _served(primary, secondary) == [[STANDBY_MX], [PRIMARY_MX]]
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "1 of 2 authoritative servers do not serve it after 2s" in record.last_error
    assert f"{stale}: serves [{PRIMARY_MX}]" in record.last_error and "(MX updated)" in record.last_error
    # Loud: an error in the log and an audited switch_failed whose evidence says exactly what is where.
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("is partial" in message and stale in message for message in errors)
    (failed,) = await _audit(store, "failover.switch_failed")
    evidence = failed["evidence"]
    assert evidence["domains"] == [] and set(evidence["failed"]) == {"example.com"}
    assert evidence["unverified"] == [
        {
            "domain": "example.com",
            "before": [PRIMARY_MX],
            "after": [STANDBY_MX],
            "updated": True,
            "verified_on": [f"127.0.0.1:{primary.port}"],
            "not_serving": {stale: f"serves [{PRIMARY_MX}]"},
        }
    ]
    # Not ambiguous: what the status says is what is true.
    status = await collect_status(store)
    assert status.record.state is FailoverState.FAILING_OVER and status.record.last_error == record.last_error
    assert routing_sentence(status.record) == (
        "the primary (the last completed switch); the switch to the standby is not complete"
    )

    # The transfer is allowed again: the secondary catches up on its retry timer, and the monitor's
    # retry of the switch finds the MX already changed, verifies it on both servers and completes.
    primary.reconfigure(allow_transfer=["127.0.0.1", "::1"])
    deadline = time.monotonic() + 15
    while secondary.query("example.com", "MX") != [STANDBY_MX]:
        assert time.monotonic() < deadline, "the secondary did not catch up"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # past the controller's retry back-off
    await controller.reconcile()
    assert _record(services).state is FailoverState.FAILED_OVER and _record(services).routing is Routing.STANDBY
    assert _record(services).last_error == ""
    (switched,) = await _audit(store, "failover.switch_succeeded")
    (domain,) = switched["evidence"]["domains"]
    assert domain["updated"] is False and domain["verified_on"] == [f"127.0.0.1:{primary.port}", stale]
    history = [(t.previous.value, t.state.value) for t in await store.failover.history()]
    assert history == [
        ("NORMAL", "FAILING_OVER"),
        ("FAILING_OVER", "FAILING_OVER"),
        ("FAILING_OVER", "FAILED_OVER"),
    ]


async def test_secondary_down_during_failback_keeps_failing_back(
    tmp_path: Path, pair: tuple[BindServer, BindServer], key: TsigKey, store: Store
) -> None:
    primary, secondary = pair
    services = await _services(tmp_path, store, primary, key, verify_timeout=1.5)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert controller.record.state is FailoverState.FAILED_OVER

    secondary.stop()
    await controller.fire(FailoverEvent.OPERATOR_FAILBACK, actor="test", reason="exchange back")
    await controller.reconcile()
    record = controller.record
    # The update server has the primary's MX again, but the switch back is not claimed.
    assert primary.query("example.com", "MX") == [PRIMARY_MX]
    assert record.state is FailoverState.FAILING_BACK and record.routing is Routing.STANDBY
    assert f"[::1]:{primary.port}: no answer from [::1]:{primary.port}" in record.last_error
    assert routing_sentence(record) == (
        "the standby (the last completed switch); the switch back to the primary is not complete"
    )
    (failed,) = await _audit(store, "failover.switch_failed")
    (unverified,) = failed["evidence"]["unverified"]
    assert unverified["after"] == [PRIMARY_MX] and unverified["verified_on"] == [f"127.0.0.1:{primary.port}"]
