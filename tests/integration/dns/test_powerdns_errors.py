"""The powerdns provider's errors against a real PowerDNS: each names what to fix, and none claims a switch.

A refused API key names the setting it came from; a zone PowerDNS does not have is named;
an API error in the middle of a switch (the second domain's zone is missing, or the API
is down) leaves the state in FAILING_OVER with what was done per domain, as the RFC 2136
path does, and the controller's retry completes the switch once the cause is gone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.core.failover import FailoverEvent, FailoverState, Routing
from continuity.services.dns_check import check_dns
from continuity.services.failover_wiring import FailoverServices
from continuity.store.protocol import Store
from tests.integration.dns.conftest import (
    PRIMARY_MX,
    RECORDS,
    STANDBY_MX,
    failover_services,
    make_settings,
)
from tests.support.bind import zone_text
from tests.support.powerdns import PowerDnsServer

pytestmark = pytest.mark.slow


@pytest.fixture
def pdns(tmp_path: Path) -> Iterator[PowerDnsServer]:
    server = PowerDnsServer(tmp_path / "pdns", {"example.com": zone_text("example.com", RECORDS, ttl=60)})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _dns(pdns: PowerDnsServer, **api: Any) -> dict[str, Any]:
    return {
        "provider": "powerdns",
        "powerdns": {"url": pdns.api_url, **(api or {"api_key": pdns.api_key})},
        "server": f"127.0.0.1:{pdns.port}",
        "verify_port": pdns.port,
        "primary_mx": [PRIMARY_MX],
        "standby_mx": [STANDBY_MX],
        "ttl": 60,
        "verify_timeout": 5,
        "attempts": 2,
        "query_timeout": 2,
    }


def _state(services: FailoverServices) -> FailoverState:
    return services.controller.record.state


@pytest.mark.parametrize("source", ["api_key", "api_key_file"])
async def test_a_refused_api_key_names_its_setting(
    tmp_path: Path, pdns: PowerDnsServer, store: Store, source: str
) -> None:
    key_file = tmp_path / "pdns-api-key"
    key_file.write_text("not-the-key\n")
    api = {"api_key": "not-the-key"} if source == "api_key" else {"api_key_file": str(key_file)}
    services = await failover_services(make_settings(tmp_path, _dns(pdns, **api)), store)
    await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = services.controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert f"refused the API key (401): check dns.powerdns.{source} " in record.last_error, record.last_error
    assert pdns.query("example.com", "MX") == [PRIMARY_MX]


async def test_dns_check_names_a_missing_zone_and_an_unreadable_key_file(tmp_path: Path, pdns: PowerDnsServer) -> None:
    settings = make_settings(tmp_path, _dns(pdns), domains=("example.com", "example.net"))
    checks = {check.name: check for check in await check_dns(settings)}
    assert checks["example.com: credentials valid, zone found"].ok
    missing = checks["example.net: credentials valid, zone found"]
    assert not missing.ok and "has no zone example.net. (404" in missing.detail, missing.detail
    # No test change is tried on a zone that is not there.
    assert "example.net: key may update the zone" not in checks

    unreadable = make_settings(tmp_path, _dns(pdns, api_key_file=str(tmp_path / "absent")))
    (configured,) = await check_dns(unreadable)
    assert not configured.ok and "dns.powerdns.api_key_file: cannot read" in configured.detail


async def test_an_api_error_mid_switch_leaves_failing_over_until_the_retry_completes(
    tmp_path: Path, pdns: PowerDnsServer, store: Store
) -> None:
    # example.net's zone is not (yet) on this PowerDNS: example.com switches, example.net fails.
    settings = make_settings(tmp_path, _dns(pdns), domains=("example.com", "example.net"))
    services = await failover_services(settings, store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "switched and verified: example.com" in record.last_error, record.last_error
    assert "example.net: PowerDNS API" in record.last_error and "has no zone example.net." in record.last_error
    failed = next(e for e in await store.audit.list() if e.record.action == "failover.switch_failed")
    evidence: Any = json.loads(failed.record.details_json)["evidence"]
    assert [item["domain"] for item in evidence["domains"]] == ["example.com"] and set(evidence["failed"]) == {
        "example.net"
    }
    assert pdns.query("example.com", "MX") == [STANDBY_MX]

    # The zone is created: the retry finds example.com done, switches example.net, and completes.
    pdns.add_zone("example.net", zone_text("example.net", [f"@ IN MX {PRIMARY_MX}"], ttl=60))
    await asyncio.sleep(0.3)  # past the controller's retry back-off
    await controller.reconcile()
    assert _state(services) is FailoverState.FAILED_OVER, controller.record.last_error
    assert pdns.query("example.net", "MX") == [STANDBY_MX]


async def test_the_api_down_during_a_switch_changes_nothing_and_says_so(
    tmp_path: Path, pdns: PowerDnsServer, store: Store
) -> None:
    services = await failover_services(make_settings(tmp_path, _dns(pdns)), store)
    pdns.stop()
    await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = services.controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "could not update example.com MX after 2 attempts" in record.last_error, record.last_error
    assert f"PowerDNS API {pdns.api_url}: GET zone example.com. failed: ConnectError" in record.last_error
