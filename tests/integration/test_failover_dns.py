"""DNS switching against a real BIND9 with a TSIG key: failover, verification, failback, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest
import tomli_w

from continuity.config.dns import DnsSettings
from continuity.config.settings import Settings
from continuity.core.failover import FailoverEvent, FailoverState, Routing
from continuity.services.failover_wiring import FailoverServices, build_failover
from continuity.store.protocol import Store
from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import clean_env
from tests.support.bind import BindServer, TsigKey, zone_text

PRIMARY_MX = "10 mail.example.com."
STANDBY_MX = "10 standby.example.com."
RECORDS = [f"@ IN MX {PRIMARY_MX}", "mail IN A 127.0.0.2", "standby IN A 127.0.0.3"]

pytestmark = pytest.mark.slow


@pytest.fixture
def key() -> TsigKey:
    return TsigKey.generate()


@pytest.fixture
def bind(tmp_path: Path, key: TsigKey) -> Iterator[BindServer]:
    server = BindServer(tmp_path / "bind", {"example.com": zone_text("example.com", RECORDS, ttl=60)}, key)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _dns(bind: BindServer, key: TsigKey, **overrides: Any) -> dict[str, Any]:
    return {
        "server": f"127.0.0.1:{bind.port}",
        "verify_port": bind.port,
        "primary_mx": [PRIMARY_MX],
        "standby_mx": [STANDBY_MX],
        "tsig_key_name": key.name,
        "tsig_secret": key.secret,
        "ttl": 60,
        "verify_timeout": 5,
        "attempts": 2,
        "query_timeout": 2,
        **overrides,
    }


def _settings(tmp_path: Path, dns: dict[str, Any]) -> Settings:
    return Settings(data_dir=tmp_path / "data", domains=["example.com"], dns=DnsSettings(**dns))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_sqlite_store(tmp_path / "data" / "continuity.db", tmp_path / "data" / "blobs")
    try:
        yield opened
    finally:
        await opened.close()


async def _services(settings: Settings, store: Store) -> FailoverServices:
    services = build_failover(settings, store, background=False)
    await services.controller.load()
    return services


def _state(services: FailoverServices) -> FailoverState:
    return services.controller.record.state


async def test_failover_replaces_the_mx_and_failback_restores_it(
    tmp_path: Path, bind: BindServer, key: TsigKey, store: Store
) -> None:
    services = await _services(_settings(tmp_path, _dns(bind, key)), store)
    controller = services.controller
    step = await controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    assert step.record.state is FailoverState.FAILING_OVER
    assert controller.record.state is FailoverState.FAILED_OVER and controller.record.routing is Routing.STANDBY
    assert bind.query("example.com", "MX") == [STANDBY_MX]
    # The switch is in the audit log with the DNS change as evidence.
    entries = await store.audit.list()
    switched = next(e for e in entries if e.record.action == "failover.switch_succeeded")
    domain = switched.details["evidence"]["domains"][0]  # type: ignore[index]
    assert domain["before"] == [PRIMARY_MX] and domain["after"] == [STANDBY_MX] and domain["updated"] is True
    assert domain["verified_on"] == [f"127.0.0.1:{bind.port}"]
    # A second switch to the standby is a verified no-op (e.g. a retry after a crash).
    repeat = await controller._switcher.switch(Routing.STANDBY)  # type: ignore[union-attr]
    assert repeat.evidence["domains"][0]["updated"] is False  # type: ignore[index]

    await controller.fire(FailoverEvent.OPERATOR_FAILBACK, actor="test", reason="exchange back")
    assert _state(services) is FailoverState.RESTORING
    # Nothing waits for replay: the replay step completes and the MX is switched back.
    sentence = await controller.reconcile()
    assert "replay complete" in sentence
    assert _state(services) is FailoverState.NORMAL and services.controller.record.routing.value == "primary"
    assert bind.query("example.com", "MX") == [PRIMARY_MX]
    history = [(t.previous.value, t.state.value) for t in await store.failover.history()]
    assert history == [
        ("NORMAL", "FAILING_OVER"),
        ("FAILING_OVER", "FAILED_OVER"),
        ("FAILED_OVER", "RESTORING"),
        ("RESTORING", "FAILING_BACK"),
        ("FAILING_BACK", "NORMAL"),
    ]
    assert (await store.audit.verify()).ok


async def test_wrong_key_is_reported_and_changes_nothing(
    tmp_path: Path, bind: BindServer, key: TsigKey, store: Store
) -> None:
    wrong = TsigKey(key.name, TsigKey.generate().secret)
    services = await _services(_settings(tmp_path, _dns(bind, wrong)), store)
    await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = services.controller.record
    assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
    assert "refused our TSIG key" in record.last_error and "PeerBadSignature" in record.last_error
    assert bind.query("example.com", "MX") == [PRIMARY_MX]
    failures = [e for e in await store.audit.list() if e.record.action == "failover.switch_failed"]
    assert len(failures) == 1 and "example.com" in failures[0].details["evidence"]["failed"]  # type: ignore[index]


async def test_changed_rrset_fails_the_prerequisite_and_changes_nothing(
    tmp_path: Path, bind: BindServer, key: TsigKey, store: Store
) -> None:
    services = await _services(_settings(tmp_path, _dns(bind, key)), store)
    # Someone else points the MX elsewhere.
    changed = await services.controller._switcher._updater.replace_mx(  # type: ignore[union-attr]
        "example.com", [PRIMARY_MX], ["20 elsewhere.example.org."]
    )
    assert changed.updated
    await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
    record = services.controller.record
    assert record.state is FailoverState.FAILING_OVER
    assert "prerequisite failed (NXRRSET)" in record.last_error and "someone changed it" in record.last_error
    assert bind.query("example.com", "MX") == ["20 elsewhere.example.org."]


async def test_unverifiable_server_is_a_loud_partial_failure(tmp_path: Path, key: TsigKey, store: Store) -> None:
    # The zone names a second authoritative server where nothing answers.
    records = [*RECORDS, "@ IN NS ns2.example.com.", "ns2 IN A 127.0.0.9"]
    bind = BindServer(tmp_path / "bind2", {"example.com": zone_text("example.com", records)}, key)
    bind.start()
    try:
        services = await _services(_settings(tmp_path, _dns(bind, key, verify_timeout=1.5)), store)
        await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
        record = services.controller.record
        assert record.state is FailoverState.FAILING_OVER and record.routing is Routing.PRIMARY
        assert "1 of 2 authoritative servers do not serve it" in record.last_error
        assert "127.0.0.9" in record.last_error
    finally:
        bind.stop()


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "continuity", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )


def test_dns_check_passes_with_the_key_and_fails_without(tmp_path: Path, bind: BindServer, key: TsigKey) -> None:
    config = tmp_path / "continuity.toml"
    data: dict[str, Any] = {"data_dir": str(tmp_path / "data"), "domains": ["example.com"]}
    config.write_text(tomli_w.dumps({**data, "dns": _dns(bind, key)}))
    good = _cli(config, "dns", "check")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "key may update the zone" in good.stdout and "points at the primary" in good.stdout
    assert "standby host standby.example.com. resolves" in good.stdout and "127.0.0.3" in good.stdout
    config.write_text(
        tomli_w.dumps({**data, "dns": _dns(bind, TsigKey(key.name, TsigKey.generate().secret), max_ttl=30)})
    )
    bad = _cli(config, "dns", "check")
    assert bad.returncode == 1
    assert "refused our TSIG key" in bad.stdout and "60s (at most 30s wanted)" in bad.stdout
    assert bind.query("_continuity-check.example.com", "TXT") == []


def test_cli_orders_exit_1_when_the_switch_is_refused(tmp_path: Path, bind: BindServer, key: TsigKey) -> None:
    # docs/operations.md: exit 1 when the operation failed or partly failed. The CLI carries the
    # orders out itself (no server runs); BIND refuses the guarded update with NXRRSET.
    config = tmp_path / "continuity.toml"
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "domains": ["example.com"],
        "dns": _dns(bind, key),
        # No probes run here: an operator's failback may go ahead only with an explicit zero hold-down.
        "monitor": {"hold_down": 0},
    }
    config.write_text(tomli_w.dumps(data))
    elsewhere = "20 elsewhere.example.org."

    def someone_points_the_mx_at(records: list[str]) -> None:
        current = bind.query("example.com", "MX")
        update = dns.update.UpdateMessage("example.com", keyring=dns.tsigkeyring.from_text({key.name: key.secret}))
        update.replace("example.com.", 60, "MX", *records)
        response = dns.query.tcp(update, "127.0.0.1", port=bind.port, timeout=5)
        assert response.rcode() == dns.rcode.NOERROR, current

    someone_points_the_mx_at([elsewhere])
    refused = _cli(config, "failover", "--reason", "outage", "--note", "exchange down")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Failover (outage) carried out, but switching mail failed; the state is now FAILING_OVER" in refused.stderr
    assert "prerequisite failed (NXRRSET)" in refused.stderr and refused.stdout == ""
    assert bind.query("example.com", "MX") == [elsewhere]

    # Put the zone back: the next order completes the switch (the state is still FAILING_OVER, so resume it
    # through a pause) and exits 0.
    someone_points_the_mx_at([PRIMARY_MX])
    assert _cli(config, "pause", "--note", "fixing the zone").returncode == 0
    resumed = _cli(config, "resume", "--note", "zone fixed")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "Resumed; the state is now FAILED_OVER."
    assert bind.query("example.com", "MX") == [STANDBY_MX]

    # The failback: nothing waits for replay, so the switch back follows at once, and is refused.
    someone_points_the_mx_at([elsewhere])
    failback = _cli(config, "failback", "--note", "exchange back")
    assert failback.returncode == 1, failback.stdout + failback.stderr
    assert "Failback started, but switching mail failed; the state is now FAILING_BACK" in failback.stderr
    assert "prerequisite failed (NXRRSET)" in failback.stderr
    status = _cli(config, "status", "--json")
    assert '"state": "FAILING_BACK"' in status.stdout


async def test_the_mx_is_read_and_verified_with_signed_queries(tmp_path: Path, key: TsigKey, store: Store) -> None:
    # This server answers only queries signed with the key: unsigned UDP reads are refused, so
    # the switch completes only if every read before and after the update is signed.
    zones = {"example.com": zone_text("example.com", RECORDS, ttl=60)}
    bind = BindServer(tmp_path / "bind-signed", zones, key, allow_query=[f'key "{key.name}"'])
    bind.start()
    try:
        assert bind.query("example.com", "MX") == []  # refused unsigned
        services = await _services(_settings(tmp_path, _dns(bind, key)), store)
        await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
        record = services.controller.record
        assert record.state is FailoverState.FAILED_OVER, record.last_error
        switched = next(e for e in await store.audit.list() if e.record.action == "failover.switch_succeeded")
        evidence: Any = json.loads(switched.record.details_json)["evidence"]
        assert evidence["read_unsigned"] == []
        assert evidence["domains"][0]["verified_on"] == [f"127.0.0.1:{bind.port}"]
        assert evidence["domains"][0]["after"] == [STANDBY_MX]
    finally:
        bind.stop()


async def test_signed_reads_can_be_required(tmp_path: Path, bind: BindServer, key: TsigKey, store: Store) -> None:
    # A server that does not know the key: with verify_signing = "require" the switch is not verified.
    other = TsigKey("another-key", TsigKey.generate().secret)
    zones = {"example.com": zone_text("example.com", RECORDS, ttl=60)}
    keyless = BindServer(tmp_path / "bind-keyless", zones, other)
    keyless.start()
    try:
        settings = _settings(tmp_path, _dns(keyless, key, verify_signing="require", attempts=1))
        services = await _services(settings, store)
        await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
        record = services.controller.record
        assert record.state is FailoverState.FAILING_OVER
        assert "did not answer example.com MX signed with TSIG key" in record.last_error
        assert "PeerBadKey" in record.last_error
    finally:
        keyless.stop()
