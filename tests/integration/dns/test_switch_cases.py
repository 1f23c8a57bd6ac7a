"""The four cases on every real server: dns check, failover, failback, the compare-and-swap refusal after a hand edit.

BIND and Knot DNS are switched through the ``rfc2136`` provider (Knot with the ACL that
docs/dns-providers.md gives), PowerDNS Authoritative twice: through the ``powerdns``
provider (its HTTP API) and, as ``powerdns-rfc2136``, through the ``rfc2136`` provider
(``dnsupdate=yes`` with a TSIG key allowed by the zone's ``TSIG-ALLOW-DNSUPDATE``
metadata). Every switch is verified by querying the server directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.core.failover import FailoverEvent, FailoverState, Routing
from continuity.services.failover_wiring import FailoverServices
from continuity.store.protocol import Store
from tests.integration.dns.conftest import (
    ELSEWHERE_MX,
    KINDS,
    PRIMARY_MX,
    RECORDS,
    STANDBY_MX,
    Deployment,
    failover_services,
    make_settings,
    run_cli,
    start_deployment,
)
from tests.support.bind import TsigKey, zone_text
from tests.support.powerdns import PowerDnsServer

pytestmark = pytest.mark.slow


def start_powerdns_rfc2136(workdir: Path) -> Deployment:
    """PowerDNS Authoritative for example.com, switched through the rfc2136 provider (DNS UPDATE with TSIG)."""
    key = TsigKey.generate()
    text = zone_text("example.com", RECORDS, ttl=60)
    pdns = PowerDnsServer(workdir / "pdns", {"example.com": text}, update_key=key)
    pdns.start()
    common = {
        "server": f"127.0.0.1:{pdns.port}",
        "verify_port": pdns.port,
        "primary_mx": [PRIMARY_MX],
        "standby_mx": [STANDBY_MX],
        "ttl": 60,
        "verify_timeout": 5,
        "attempts": 2,
        "query_timeout": 2,
    }
    return Deployment(
        "powerdns-rfc2136",
        pdns.port,
        {**common, "provider": "rfc2136", "tsig_key_name": key.name, "tsig_secret": key.secret},
        {**common, "provider": "rfc2136", "tsig_key_name": key.name, "tsig_secret": TsigKey.generate().secret},
        pdns.query,
        lambda records: pdns.edit_by_hand("example.com", "@", "MX", 60, records),
        pdns.stop,
    )


@pytest.fixture(params=(*KINDS, "powerdns-rfc2136"))
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Each server in turn, started for one test; PowerDNS also as an RFC 2136 server."""
    kind = str(request.param)
    started = start_powerdns_rfc2136(tmp_path) if kind == "powerdns-rfc2136" else start_deployment(kind, tmp_path)
    try:
        yield started
    finally:
        started.stop()


def _state(services: FailoverServices) -> FailoverState:
    return services.controller.record.state


def test_dns_check_passes_and_names_what_is_wrong(tmp_path: Path, deployment: Deployment) -> None:
    good = run_cli(tmp_path, deployment.dns, "dns", "check")
    assert good.returncode == 0, good.stdout + good.stderr
    provider = "powerdns" if deployment.kind == "powerdns" else "rfc2136"
    for line in (
        f"{provider} provider configured",
        "credentials valid, zone found",
        "key may update the zone",
        "test TXT record added and removed",
        "points at the primary",
        f"MX TTL on 127.0.0.1:{deployment.port}",
        "standby host standby.example.com. resolves",
    ):
        assert line in good.stdout, (line, good.stdout)
    # The test record is gone again.
    assert deployment.query("_continuity-check.example.com", "TXT") == []

    bad = run_cli(tmp_path, {**deployment.bad_credentials, "max_ttl": 30}, "dns", "check")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    output = " ".join(bad.stdout.split())  # the table wraps long details
    if deployment.kind == "powerdns":
        assert "refused the API key (401): check dns.powerdns.api_key" in output, output
    elif deployment.kind == "powerdns-rfc2136":
        # PowerDNS 4.7 answers an UPDATE whose signature fails with a plain REFUSED that carries
        # no TSIG record (not BADSIG as RFC 8945 5.2 asks); the check names the key all the same.
        assert "key may update the zone │ FAILED" in output, output
        assert "refused our TSIG key" in output and "answer was not signed" in output, output
    else:
        assert "refused our TSIG key" in output, output
    # The credentials are wrong, the records are still readable: the TTL is checked on every server.
    assert "60s (at most 30s wanted)" in output, output
    assert deployment.served_mx() == [PRIMARY_MX]


async def test_failover_switches_and_verifies(tmp_path: Path, deployment: Deployment, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, deployment.dns), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILED_OVER and record.routing is Routing.STANDBY, record.last_error
    assert deployment.served_mx() == [STANDBY_MX]
    switched = next(e for e in await store.audit.list() if e.record.action == "failover.switch_succeeded")
    evidence: Any = json.loads(switched.record.details_json)["evidence"]
    domain = evidence["domains"][0]
    assert domain["before"] == [PRIMARY_MX] and domain["after"] == [STANDBY_MX] and domain["updated"] is True
    assert domain["verified_on"] == [f"127.0.0.1:{deployment.port}"]
    # A second switch to the standby is a verified no-op (a retry after a crash).
    repeat = await controller._switcher.switch(Routing.STANDBY)  # type: ignore[union-attr]
    assert repeat.evidence["domains"][0]["updated"] is False  # type: ignore[index]


async def test_failback_restores_the_primary_mx(tmp_path: Path, deployment: Deployment, store: Store) -> None:
    services = await failover_services(make_settings(tmp_path, deployment.dns), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert controller.record.state is FailoverState.FAILED_OVER, controller.record.last_error
    await controller.fire(FailoverEvent.OPERATOR_FAILBACK, actor="test", reason="exchange back")
    assert _state(services) is FailoverState.RESTORING
    # Nothing waits for replay: the replay step completes and the MX is switched back.
    assert "replay complete" in await controller.reconcile()
    assert _state(services) is FailoverState.NORMAL and controller.record.routing is Routing.PRIMARY
    assert deployment.served_mx() == [PRIMARY_MX]
    history = [(t.previous.value, t.state.value) for t in await store.failover.history()]
    assert history == [
        ("NORMAL", "FAILING_OVER"),
        ("FAILING_OVER", "FAILED_OVER"),
        ("FAILED_OVER", "RESTORING"),
        ("RESTORING", "FAILING_BACK"),
        ("FAILING_BACK", "NORMAL"),
    ]
    assert (await store.audit.verify()).ok


async def test_a_hand_edited_mx_is_not_overwritten(tmp_path: Path, deployment: Deployment, store: Store) -> None:
    deployment.edit_mx_by_hand([ELSEWHERE_MX])
    services = await failover_services(make_settings(tmp_path, deployment.dns), store)
    controller = services.controller
    await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "someone changed it and nothing was updated" in record.last_error, record.last_error
    assert ELSEWHERE_MX in record.last_error
    if deployment.kind != "powerdns":
        assert "prerequisite failed (NXRRSET)" in record.last_error
    assert deployment.served_mx() == [ELSEWHERE_MX]
    failures = [e for e in await store.audit.list() if e.record.action == "failover.switch_failed"]
    assert len(failures) == 1 and "example.com" in failures[0].details["evidence"]["failed"]  # type: ignore[index]

    # Put back by hand, the monitor's next attempt completes the switch.
    deployment.edit_mx_by_hand([PRIMARY_MX])
    outcome = await controller._switcher.switch(Routing.STANDBY)  # type: ignore[union-attr]
    assert outcome.evidence["domains"][0]["updated"] is True  # type: ignore[index]
    assert deployment.served_mx() == [STANDBY_MX]
