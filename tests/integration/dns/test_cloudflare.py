"""The cloudflare provider against a stand-in of Cloudflare's API v4, whose records a real BIND serves.

dns check (and a refused token, a zone the token cannot see), failover, failback, the
compare-and-swap refusal after a hand edit, an API error in the middle of a switch (the
second zone's batch answers 500), a 429 answered after its Retry-After, and the
verification deciding when the name servers do not get the change.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.core.failover import FailoverEvent, FailoverState, Routing
from continuity.services.dns_check import check_dns
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
from tests.support.cloudflare_api import NAME_SERVERS, CloudflareApi

pytestmark = pytest.mark.slow

RECORDS: list[tuple[str, str, str, int | None]] = [
    ("example.com", "MX", "mail.example.com", 10),
    ("mail.example.com", "A", "127.0.0.2", None),
    ("standby.example.com", "A", "127.0.0.3", None),
]


def _state(services: FailoverServices) -> FailoverState:
    return services.controller.record.state


@pytest.fixture
def cloudflare(tmp_path: Path) -> Iterator[CloudflareApi]:
    name_servers = CloudNameServers(tmp_path / "bind", ZONES, NAME_SERVERS)
    name_servers.start()
    api = CloudflareApi(name_servers)
    api.start()
    try:
        api.add_zone("example.com", RECORDS)
        yield api
    finally:
        api.stop()
        name_servers.stop()


def _dns(api: CloudflareApi, **settings: Any) -> dict[str, Any]:
    return cloud_dns(
        "cloudflare", api.name_servers.port, {"api_url": api.api_url, **(settings or {"api_token": api.token})}
    )


def test_dns_check_passes_and_names_a_refused_token(tmp_path: Path, cloudflare: CloudflareApi) -> None:
    good = run_cli(tmp_path, _dns(cloudflare), "dns", "check")
    output = " ".join(good.stdout.split())
    assert good.returncode == 0, good.stdout + good.stderr
    for line in (
        "cloudflare provider configured",
        "credentials valid, zone found",
        "test TXT record added and removed",
        "points at the primary",
        f"MX TTL on 127.0.0.1:{cloudflare.name_servers.port}",
        "standby host standby.example.com. resolves",
    ):
        assert line in output, (line, output)
    assert cloudflare.txt_owners("example.com") == []

    token_file = tmp_path / "cloudflare-token"
    token_file.write_text("not-the-token\n")
    bad = run_cli(tmp_path, {**_dns(cloudflare, credential_file=str(token_file)), "max_ttl": 30}, "dns", "check")
    output = " ".join(bad.stdout.split())
    assert bad.returncode == 1, output
    assert "the API token was refused (403, 10000: Authentication error; 9109: Invalid access token)" in output
    assert "dns.cloudflare.credential_file (a token with Zone:DNS:Edit and Zone:Zone:Read" in output, output
    assert cloudflare.mx("example.com") == [PRIMARY_MX]


async def test_dns_check_names_a_zone_the_token_cannot_see(tmp_path: Path, cloudflare: CloudflareApi) -> None:
    settings = make_settings(tmp_path, _dns(cloudflare), ("example.com", "example.net"))
    checks = {check.name: check for check in await check_dns(settings)}
    assert checks["example.com: credentials valid, zone found"].ok
    missing = checks["example.net: credentials valid, zone found"]
    assert not missing.ok and "has no zone example.net that this token may read" in missing.detail, missing.detail


async def test_failover_switches_and_verifies(tmp_path: Path, cloudflare: CloudflareApi, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, _dns(cloudflare)), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILED_OVER and record.routing is Routing.STANDBY, record.last_error
    assert cloudflare.mx("example.com") == [STANDBY_MX]
    assert cloudflare.name_servers.query("example.com", "MX") == [STANDBY_MX]
    batches = [r for r in cloudflare.server.requests if r.path.endswith("/dns_records/batch")]
    assert len(batches) == 1 and len(batches[0].body["deletes"]) == 1 and len(batches[0].body["posts"]) == 1
    switched = next(e for e in await store.audit.list() if e.record.action == "failover.switch_succeeded")
    (domain,) = json.loads(switched.record.details_json)["evidence"]["domains"]
    assert domain["updated"] is True and domain["verified_on"] == [f"127.0.0.1:{cloudflare.name_servers.port}"]


async def test_failback_restores_the_primary_mx(tmp_path: Path, cloudflare: CloudflareApi, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, _dns(cloudflare)), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert _state(services) is FailoverState.FAILED_OVER, controller.record.last_error
    await controller.fire(FailoverEvent.OPERATOR_FAILBACK, actor="test", reason="exchange back")
    assert "replay complete" in await controller.reconcile()
    assert _state(services) is FailoverState.NORMAL, controller.record.last_error
    assert cloudflare.mx("example.com") == [PRIMARY_MX]
    assert cloudflare.name_servers.query("example.com", "MX") == [PRIMARY_MX]


async def test_a_hand_edited_mx_is_not_overwritten(tmp_path: Path, cloudflare: CloudflareApi, store: Store) -> None:
    cloudflare.edit_mx_by_hand("example.com", [ELSEWHERE_MX])
    services = await failover_services(make_settings(tmp_path, _dns(cloudflare)), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "someone changed it and nothing was updated" in record.last_error and ELSEWHERE_MX in record.last_error
    assert cloudflare.mx("example.com") == [ELSEWHERE_MX]
    assert not [r for r in cloudflare.server.requests if r.path.endswith("/batch")]

    cloudflare.edit_mx_by_hand("example.com", [PRIMARY_MX])
    outcome = await controller._switcher.switch(Routing.STANDBY)  # type: ignore[union-attr]
    assert outcome.evidence["domains"][0]["updated"] is True  # type: ignore[index]
    assert cloudflare.mx("example.com") == [STANDBY_MX]


async def test_an_api_error_mid_switch_leaves_failing_over_until_the_retry_completes(
    tmp_path: Path, cloudflare: CloudflareApi, store: Store
) -> None:
    cloudflare.add_zone("example.net", [("example.net", "MX", "mail.example.com", 10)])
    cloudflare.fail(f"/zones/{cloudflare.zone_id('example.net')}/dns_records/batch")
    settings = make_settings(tmp_path, _dns(cloudflare), domains=("example.com", "example.net"))
    services = await failover_services(settings, store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "switched and verified: example.com" in record.last_error, record.last_error
    assert "could not complete the MX update of example.net after 2 attempts" in record.last_error
    assert "answered 500: 10001: Internal server error" in record.last_error
    assert cloudflare.mx("example.com") == [STANDBY_MX] and cloudflare.mx("example.net") == [PRIMARY_MX]

    cloudflare.fail("")
    await asyncio.sleep(0.3)  # past the controller's retry back-off
    await controller.reconcile()
    assert _state(services) is FailoverState.FAILED_OVER, controller.record.last_error
    assert cloudflare.name_servers.query("example.net", "MX") == [STANDBY_MX]


async def test_a_rate_limit_is_waited_out(tmp_path: Path, cloudflare: CloudflareApi, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, _dns(cloudflare)), store)
    cloudflare.throttle(1, retry_after=2)
    started = time.monotonic()
    await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert _state(services) is FailoverState.FAILED_OVER, services.controller.record.last_error
    assert time.monotonic() - started >= 2.0
    assert cloudflare.mx("example.com") == [STANDBY_MX]


async def test_the_verification_decides_when_the_name_servers_miss_the_change(
    tmp_path: Path, cloudflare: CloudflareApi, store: Store
) -> None:
    cloudflare.name_servers.copying = False
    services = await failover_services(make_settings(tmp_path, {**_dns(cloudflare), "verify_timeout": 1.5}), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert cloudflare.mx("example.com") == [STANDBY_MX]
    assert cloudflare.name_servers.query("example.com", "MX") == [PRIMARY_MX]
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "1 of 1 authoritative servers do not serve it" in record.last_error, record.last_error
    assert f"serves [{PRIMARY_MX}]" in record.last_error


async def test_a_zone_added_again_is_found_under_its_new_id(
    tmp_path: Path, cloudflare: CloudflareApi, store: Store
) -> None:
    services = await failover_services(make_settings(tmp_path, _dns(cloudflare)), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert _state(services) is FailoverState.FAILED_OVER, controller.record.last_error
    cloudflare.renumber_zone("example.com")
    await controller.fire(FailoverEvent.OPERATOR_FAILBACK, actor="test", reason="exchange back")
    await controller.reconcile()
    # The id the provider kept is gone (7003); the retry looks the zone up again.
    assert _state(services) is FailoverState.FAILING_BACK
    assert "7003: Could not route to /zones/" in controller.record.last_error, controller.record.last_error
    await asyncio.sleep(0.3)  # past the controller's retry back-off
    await controller.reconcile()
    assert _state(services) is FailoverState.NORMAL, controller.record.last_error
    assert cloudflare.mx("example.com") == [PRIMARY_MX]
