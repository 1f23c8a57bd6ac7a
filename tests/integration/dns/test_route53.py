"""The route53 provider against moto's Route 53 on loopback, with a real BIND as Route 53's name servers.

dns check, failover, failback, the compare-and-swap refusal after a hand edit, an API
error in the middle of a switch, and the verification deciding: when the change is not
copied to the name servers (moto says INSYNC, BIND keeps the old MX), the state stays
FAILING_OVER with an error naming the server and what it serves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from continuity.core.failover import FailoverEvent, FailoverState, Routing
from continuity.services.failover_wiring import FailoverServices
from continuity.store.protocol import Store
from tests.integration.dns.cloud_common import ZONES, cloud_dns
from tests.integration.dns.conftest import (
    ELSEWHERE_MX,
    PRIMARY_MX,
    STANDBY_MX,
    failover_services,
    make_settings,
    run_cli,
)
from tests.support.cloud_name_servers import CloudNameServers
from tests.support.moto_route53 import ACCESS_KEY_ID, NAME_SERVERS, SECRET_ACCESS_KEY, MotoRoute53, Route53Mirror

pytestmark = pytest.mark.slow

EXAMPLE_COM = [
    ("@", "MX", [PRIMARY_MX]),
    ("mail", "A", ["127.0.0.2"]),
    ("standby", "A", ["127.0.0.3"]),
]


def _state(services: FailoverServices) -> FailoverState:
    return services.controller.record.state


@dataclass
class Route53:
    """moto with example.com, BIND as its name servers, the mirror between them, and the [dns] table."""

    moto: MotoRoute53
    name_servers: CloudNameServers
    dns: dict[str, Any]

    def served_mx(self, origin: str = "example.com") -> list[str]:
        return self.name_servers.query(origin, "MX")

    def held_mx(self, origin: str = "example.com.") -> list[str]:
        client = self.moto.client()
        (zone,) = [z for z in client.list_hosted_zones()["HostedZones"] if z["Name"] == origin]
        sets = client.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
        return sorted(item["Value"] for s in sets if s["Type"] == "MX" for item in s.get("ResourceRecords", []))


@pytest.fixture
def route53(tmp_path: Path) -> Iterator[Route53]:
    moto = MotoRoute53()
    moto.start()
    name_servers = CloudNameServers(tmp_path / "bind", ZONES, NAME_SERVERS)
    name_servers.start()
    mirror = Route53Mirror(moto, name_servers)
    try:
        moto.create_zone("example.com", EXAMPLE_COM)
        mirror.start()
        api = {
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET_ACCESS_KEY,
            "endpoint_url": moto.endpoint_url,
        }
        yield Route53(moto, name_servers, cloud_dns("route53", name_servers.port, api))
    finally:
        mirror.stop()
        moto.stop()
        name_servers.stop()


def test_dns_check_passes_and_says_when_the_api_is_down(tmp_path: Path, route53: Route53) -> None:
    good = run_cli(tmp_path, route53.dns, "dns", "check")
    assert good.returncode == 0, good.stdout + good.stderr
    output = " ".join(good.stdout.split())
    for line in (
        "route53 provider configured",
        "credentials valid, zone found",
        "test TXT record added and removed",
        "points at the primary",
        f"MX TTL on 127.0.0.1:{route53.name_servers.port}",
        "standby host standby.example.com. resolves",
    ):
        assert line in output, (line, output)
    client = route53.moto.client()
    (zone,) = client.list_hosted_zones()["HostedZones"]
    sets = client.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    assert [s["Name"] for s in sets if s["Type"] == "TXT"] == []

    route53.moto.stop()
    down = run_cli(tmp_path, {**route53.dns, "max_ttl": 30}, "dns", "check")
    output = " ".join(down.stdout.split())
    assert down.returncode == 1 and "Could not connect to the endpoint URL" in output, output
    # The API is down, the name servers still answer: the TTL is checked where they can be listed.
    assert route53.served_mx() == [PRIMARY_MX]


async def test_dns_check_names_a_missing_hosted_zone(tmp_path: Path, route53: Route53) -> None:
    from continuity.services.dns_check import check_dns

    checks = {c.name: c for c in await check_dns(make_settings(tmp_path, route53.dns, ("example.com", "example.net")))}
    assert checks["example.com: credentials valid, zone found"].ok
    missing = checks["example.net: credentials valid, zone found"]
    assert not missing.ok and "has no public hosted zone example.net." in missing.detail, missing.detail


async def test_failover_switches_and_verifies(tmp_path: Path, route53: Route53, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, route53.dns), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILED_OVER and record.routing is Routing.STANDBY, record.last_error
    assert route53.held_mx() == [STANDBY_MX] and route53.served_mx() == [STANDBY_MX]
    switched = next(e for e in await store.audit.list() if e.record.action == "failover.switch_succeeded")
    (domain,) = json.loads(switched.record.details_json)["evidence"]["domains"]
    assert domain["before"] == [PRIMARY_MX] and domain["after"] == [STANDBY_MX] and domain["updated"] is True
    # Every name of the delegation set resolves to the one BIND.
    assert domain["verified_on"] == [f"127.0.0.1:{route53.name_servers.port}"]
    repeat = await controller._switcher.switch(Routing.STANDBY)  # type: ignore[union-attr]
    assert repeat.evidence["domains"][0]["updated"] is False  # type: ignore[index]


async def test_failback_restores_the_primary_mx(tmp_path: Path, route53: Route53, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, route53.dns), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert controller.record.state is FailoverState.FAILED_OVER, controller.record.last_error
    await controller.fire(FailoverEvent.OPERATOR_FAILBACK, actor="test", reason="exchange back")
    assert "replay complete" in await controller.reconcile()
    assert _state(services) is FailoverState.NORMAL, controller.record.last_error
    assert route53.held_mx() == [PRIMARY_MX] and route53.served_mx() == [PRIMARY_MX]


async def test_a_hand_edited_mx_is_not_overwritten(tmp_path: Path, route53: Route53, store: Store) -> None:
    route53.moto.edit_by_hand("example.com", "MX", [ELSEWHERE_MX])
    services = await failover_services(make_settings(tmp_path, route53.dns), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "someone changed it and nothing was updated" in record.last_error, record.last_error
    assert ELSEWHERE_MX in record.last_error
    assert route53.held_mx() == [ELSEWHERE_MX]

    route53.moto.edit_by_hand("example.com", "MX", [PRIMARY_MX])
    outcome = await controller._switcher.switch(Routing.STANDBY)  # type: ignore[union-attr]
    assert outcome.evidence["domains"][0]["updated"] is True  # type: ignore[index]
    assert route53.held_mx() == [STANDBY_MX]


async def test_an_api_error_mid_switch_leaves_failing_over_until_the_retry_completes(
    tmp_path: Path, route53: Route53, store: Store
) -> None:
    # example.net has no hosted zone (yet): example.com switches, example.net fails.
    settings = make_settings(tmp_path, route53.dns, domains=("example.com", "example.net"))
    services = await failover_services(settings, store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "switched and verified: example.com" in record.last_error, record.last_error
    assert "has no public hosted zone example.net." in record.last_error
    failed = next(e for e in await store.audit.list() if e.record.action == "failover.switch_failed")
    evidence: Any = json.loads(failed.record.details_json)["evidence"]
    assert [item["domain"] for item in evidence["domains"]] == ["example.com"]
    assert set(evidence["failed"]) == {"example.net"}

    route53.moto.create_zone("example.net", [("@", "MX", [PRIMARY_MX])])
    await asyncio.sleep(0.3)  # past the controller's retry back-off
    await controller.reconcile()
    assert controller.record.state is FailoverState.FAILED_OVER, controller.record.last_error
    assert route53.held_mx("example.net.") == [STANDBY_MX] and route53.served_mx("example.net") == [STANDBY_MX]


async def test_the_verification_decides_when_the_name_servers_miss_the_change(
    tmp_path: Path, route53: Route53, store: Store
) -> None:
    route53.name_servers.copying = False
    services = await failover_services(make_settings(tmp_path, {**route53.dns, "verify_timeout": 1.5}), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    # Route 53 holds the new MX and called the change INSYNC; its name servers still serve the old one.
    assert route53.held_mx() == [STANDBY_MX] and route53.served_mx() == [PRIMARY_MX]
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    server = f"127.0.0.1:{route53.name_servers.port}"
    assert "1 of 1 authoritative servers do not serve it" in record.last_error, record.last_error
    assert f"{server}: serves [{PRIMARY_MX}]" in record.last_error

    route53.name_servers.copying = True
    await asyncio.sleep(0.5)  # the mirror copies the change, past the controller's retry back-off
    await controller.reconcile()
    assert controller.record.state is FailoverState.FAILED_OVER, controller.record.last_error
