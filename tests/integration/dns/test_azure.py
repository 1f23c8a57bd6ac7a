"""The azure provider against a stand-in of Entra ID's token endpoint and Azure DNS, whose records a real BIND serves.

dns check (and a refused client secret), failover, failback, the compare-and-swap
refusal after a hand edit, the etag precondition (a portal edit between the read and the
PUT is answered 412 and nothing changes), an API error in the middle of a switch (the
second zone is missing), a 429 waited out, and the verification deciding when the name
servers do not get the change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
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
from tests.support.azure_dns_api import CLIENT_ID, NAME_SERVERS, RESOURCE_GROUP, SUBSCRIPTION, TENANT, AzureDnsApi
from tests.support.cloud_name_servers import CloudNameServers

pytestmark = pytest.mark.slow


def _state(services: FailoverServices) -> FailoverState:
    return services.controller.record.state


@pytest.fixture
def azure(tmp_path: Path) -> Iterator[AzureDnsApi]:
    name_servers = CloudNameServers(tmp_path / "bind", ZONES, NAME_SERVERS)
    name_servers.start()
    api = AzureDnsApi(name_servers)
    api.start()
    try:
        api.add_zone("example.com", [PRIMARY_MX])
        yield api
    finally:
        api.stop()
        name_servers.stop()


def _dns(api: AzureDnsApi, **secret: Any) -> dict[str, Any]:
    settings = {
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "subscription_id": SUBSCRIPTION,
        "resource_group": RESOURCE_GROUP,
        "authority_url": api.url,
        "management_url": api.url,
        **(secret or {"client_secret": api.client_secret}),
    }
    return cloud_dns("azure", api.name_servers.port, settings)


def test_dns_check_passes_and_names_a_refused_secret(tmp_path: Path, azure: AzureDnsApi) -> None:
    good = run_cli(tmp_path, _dns(azure), "dns", "check")
    output = " ".join(good.stdout.split())
    assert good.returncode == 0, good.stdout + good.stderr
    for line in (
        "azure provider configured",
        "credentials valid, zone found",
        "test TXT record added and removed",
        "points at the primary",
        f"MX TTL on 127.0.0.1:{azure.name_servers.port}",
        "standby host standby.example.com. resolves",
    ):
        assert line in output, (line, output)
    assert azure.txt_names("example.com") == []

    bad = run_cli(tmp_path, _dns(azure, client_secret="not-the-secret"), "dns", "check")
    output = " ".join(bad.stdout.split())
    assert bad.returncode == 1, output
    assert "Entra ID refused the client credentials (invalid_client: AADSTS7000215" in output, output
    assert "dns.azure.client_secret" in output
    assert azure.mx("example.com") == [PRIMARY_MX]


async def test_failover_switches_and_verifies(tmp_path: Path, azure: AzureDnsApi, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, _dns(azure)), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILED_OVER and record.routing is Routing.STANDBY, record.last_error
    assert azure.mx("example.com") == [STANDBY_MX]
    assert azure.name_servers.query("example.com", "MX") == [STANDBY_MX]
    (put,) = [r for r in azure.server.requests if r.method == "PUT"]
    assert put.headers.get("if-match") and put.path.endswith("/dnsZones/example.com/MX/@")
    tokens = [r for r in azure.server.requests if r.path.endswith("/token")]
    assert len(tokens) == 1  # kept until it expires


async def test_failback_restores_the_primary_mx(tmp_path: Path, azure: AzureDnsApi, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, _dns(azure)), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert _state(services) is FailoverState.FAILED_OVER, controller.record.last_error
    await controller.fire(FailoverEvent.OPERATOR_FAILBACK, actor="test", reason="exchange back")
    assert "replay complete" in await controller.reconcile()
    assert _state(services) is FailoverState.NORMAL, controller.record.last_error
    assert azure.mx("example.com") == [PRIMARY_MX]
    assert azure.name_servers.query("example.com", "MX") == [PRIMARY_MX]


async def test_a_hand_edited_mx_is_not_overwritten(tmp_path: Path, azure: AzureDnsApi, store: Store) -> None:
    azure.edit_mx_by_hand("example.com", [ELSEWHERE_MX])
    services = await failover_services(make_settings(tmp_path, _dns(azure)), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "someone changed it and nothing was updated" in record.last_error and ELSEWHERE_MX in record.last_error
    assert azure.mx("example.com") == [ELSEWHERE_MX]

    azure.edit_mx_by_hand("example.com", [PRIMARY_MX])
    outcome = await controller._switcher.switch(Routing.STANDBY)  # type: ignore[union-attr]
    assert outcome.evidence["domains"][0]["updated"] is True  # type: ignore[index]
    assert azure.mx("example.com") == [STANDBY_MX]


async def test_an_edit_between_read_and_write_is_refused_by_the_etag(
    tmp_path: Path, azure: AzureDnsApi, store: Store
) -> None:
    azure.edit_mx_before_next_put("example.com", [ELSEWHERE_MX])
    services = await failover_services(make_settings(tmp_path, _dns(azure)), store)
    await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = services.controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "answered 412 Precondition Failed (PreconditionFailed:" in record.last_error, record.last_error
    assert f"changed since it was read and is now [{ELSEWHERE_MX}]" in record.last_error
    assert azure.mx("example.com") == [ELSEWHERE_MX]
    assert azure.name_servers.query("example.com", "MX") == [ELSEWHERE_MX]


async def test_an_api_error_mid_switch_leaves_failing_over_until_the_retry_completes(
    tmp_path: Path, azure: AzureDnsApi, store: Store
) -> None:
    settings = make_settings(tmp_path, _dns(azure), domains=("example.com", "example.net"))
    services = await failover_services(settings, store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "switched and verified: example.com" in record.last_error, record.last_error
    assert f"Azure DNS has no zone example.net in resource group {RESOURCE_GROUP}" in record.last_error
    assert azure.mx("example.com") == [STANDBY_MX]

    azure.add_zone("example.net", [PRIMARY_MX])
    await asyncio.sleep(0.3)  # past the controller's retry back-off
    await controller.reconcile()
    assert _state(services) is FailoverState.FAILED_OVER, controller.record.last_error
    assert azure.name_servers.query("example.net", "MX") == [STANDBY_MX]


async def test_a_rate_limit_is_waited_out(tmp_path: Path, azure: AzureDnsApi, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, _dns(azure)), store)
    azure.throttle(1, retry_after=2)
    started = time.monotonic()
    await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert _state(services) is FailoverState.FAILED_OVER, services.controller.record.last_error
    assert time.monotonic() - started >= 2.0


async def test_the_verification_decides_when_the_name_servers_miss_the_change(
    tmp_path: Path, azure: AzureDnsApi, store: Store
) -> None:
    azure.name_servers.copying = False
    services = await failover_services(make_settings(tmp_path, {**_dns(azure), "verify_timeout": 1.5}), store)
    await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert azure.mx("example.com") == [STANDBY_MX]
    record = services.controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "1 of 1 authoritative servers do not serve it" in record.last_error, record.last_error
    assert f"serves [{PRIMARY_MX}]" in record.last_error


async def test_a_revoked_token_is_replaced(tmp_path: Path, azure: AzureDnsApi, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, _dns(azure)), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert _state(services) is FailoverState.FAILED_OVER, controller.record.last_error
    azure.revoke_tokens()
    await controller.fire(FailoverEvent.OPERATOR_FAILBACK, actor="test", reason="exchange back")
    assert "replay complete" in await controller.reconcile()
    assert _state(services) is FailoverState.NORMAL, controller.record.last_error
    answered = list(zip(azure.server.requests, azure.server.statuses, strict=True))
    assert [request.path for request, status in answered if status == 401] == [
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/dnsZones/"
        "example.com/MX/@"
    ]
    assert len([r for r in azure.server.requests if r.path.endswith("/token")]) == 2
    assert azure.mx("example.com") == [PRIMARY_MX]
