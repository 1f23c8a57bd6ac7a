"""The verification decides, whatever the provider says: a stale authoritative server keeps the switch incomplete.

The zone lists two name servers on the same port: ns1 (127.0.0.1) is the server the
provider changes (Knot DNS through RFC 2136, PowerDNS through its HTTP API), ns2 (::1) a
BIND that still serves the old MX. The provider answers OK and holds the new MX; the
switch is a loud partial failure, the state stays FAILING_OVER (as the RFC 2136 path
does with a stale secondary), and the controller's retry completes it once ns2 serves
the new MX.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.core.failover import FailoverEvent, FailoverState, Routing
from continuity.services.failover_wiring import FailoverServices
from continuity.store.protocol import Store
from tests.integration.dns.conftest import (
    PRIMARY_MX,
    RECORDS,
    STANDBY_MX,
    Deployment,
    failover_services,
    make_settings,
    signed_update,
    start_deployment,
)
from tests.support.bind import BindServer, TsigKey, free_port_on, zone_text

pytestmark = pytest.mark.slow

NAME_SERVERS = {"ns1": "127.0.0.1", "ns2": "::1"}


@pytest.fixture(params=["knot", "powerdns"])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Deployment, BindServer, TsigKey]]:
    """The provider's server as ns1 and a BIND with its own copy of the zone (the old MX) as ns2."""
    port = free_port_on(tuple(NAME_SERVERS.values()))
    provider = start_deployment(str(request.param), tmp_path, port=port, name_servers=NAME_SERVERS)
    key = TsigKey.generate("stale-copy-key")
    text = zone_text("example.com", RECORDS, ttl=60, name_servers=NAME_SERVERS)
    stale = BindServer(tmp_path / "stale", {"example.com": text}, key, address="::1", port=port)
    try:
        stale.start()
        yield provider, stale, key
    finally:
        stale.stop()
        provider.stop()


def _state(services: FailoverServices) -> FailoverState:
    return services.controller.record.state


async def test_a_stale_authoritative_server_keeps_the_failover_incomplete(
    tmp_path: Path, servers: tuple[Deployment, BindServer, TsigKey], store: Store
) -> None:
    provider, stale, key = servers
    ns2 = f"[::1]:{provider.port}"
    services = await failover_services(make_settings(tmp_path, {**provider.dns, "verify_timeout": 1.5}), store)
    controller = services.controller

    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    # The provider did its part; ns2 still serves the primary's MX.
    assert provider.served_mx() == [STANDBY_MX] and stale.query("example.com", "MX") == [PRIMARY_MX]
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "1 of 2 authoritative servers do not serve it" in record.last_error, record.last_error
    assert f"{ns2}: serves [{PRIMARY_MX}]" in record.last_error and "(MX updated)" in record.last_error
    failed = next(e for e in await store.audit.list() if e.record.action == "failover.switch_failed")
    evidence: Any = json.loads(failed.record.details_json)["evidence"]
    assert evidence["domains"] == [] and set(evidence["failed"]) == {"example.com"}
    (unverified,) = evidence["unverified"]
    assert unverified["verified_on"] == [f"127.0.0.1:{provider.port}"]
    assert unverified["not_serving"] == {ns2: f"serves [{PRIMARY_MX}]"}

    # ns2 catches up: the controller's retry finds the MX already changed at the provider, verifies, completes.
    signed_update(key, provider.port, [STANDBY_MX], address="::1")
    await asyncio.sleep(0.3)  # past the controller's retry back-off
    await controller.reconcile()
    assert _state(services) is FailoverState.FAILED_OVER, controller.record.last_error
    switched = next(e for e in await store.audit.list() if e.record.action == "failover.switch_succeeded")
    (domain,) = json.loads(switched.record.details_json)["evidence"]["domains"]
    assert domain["updated"] is False and domain["verified_on"] == [f"127.0.0.1:{provider.port}", ns2]
