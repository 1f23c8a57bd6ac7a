"""BIND with the update-policy docs/dns-providers.md gives: dns check passes and the failover works.

The policy is read from the page itself, so the documentation cannot drift from what
works. The grant of the MX alone (what docs/troubleshooting.md once suggested) lets a
switch through but fails ``dns check``: its test TXT record is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from continuity.core.failover import FailoverEvent, FailoverState
from continuity.services.dns_check import check_dns
from continuity.store.protocol import Store
from tests.integration.dns.conftest import PRIMARY_MX, RECORDS, STANDBY_MX, failover_services, make_settings
from tests.support.bind import BindServer, TsigKey, zone_text

pytestmark = pytest.mark.slow

DOCS = Path(__file__).parents[3] / "docs" / "dns-providers.md"
KEY_NAME = "standby-update."


def documented_policy() -> str:
    """The statements inside the page's update-policy { ... }; block."""
    match = re.search(r"update-policy \{\n(?P<body>.*?)\n\s*\};", DOCS.read_text(), re.S)
    assert match is not None, "docs/dns-providers.md shows no update-policy block"
    return " ".join(match["body"].split())


def _bind(tmp_path: Path, key: TsigKey, policy: str) -> BindServer:
    zones = {"example.com": zone_text("example.com", RECORDS, ttl=60)}
    return BindServer(tmp_path / "bind", zones, key, update_policy=policy)


def _dns(bind: BindServer, key: TsigKey) -> dict[str, object]:
    return {
        "server": f"127.0.0.1:{bind.port}",
        "verify_port": bind.port,
        "primary_mx": [PRIMARY_MX],
        "standby_mx": [STANDBY_MX],
        "tsig_key_name": key.name,
        "tsig_secret": key.secret,
        "ttl": 60,
        "verify_timeout": 5,
        "attempts": 1,
        "query_timeout": 2,
    }


async def test_the_documented_policy_passes_dns_check_and_switches(tmp_path: Path, store: Store) -> None:
    policy = documented_policy()
    assert "name example.com. MX" in policy and "name _continuity-check.example.com. TXT" in policy
    key = TsigKey(KEY_NAME, TsigKey.generate().secret)
    bind = _bind(tmp_path, key, policy)
    bind.start()
    try:
        settings = make_settings(tmp_path, _dns(bind, key))
        failed = [check for check in await check_dns(settings) if not check.ok]
        assert failed == []
        services = await failover_services(settings, store)
        await services.controller.fire(FailoverEvent.OPERATOR_FAILOVER, actor="test", reason="exchange down")
        assert services.controller.record.state is FailoverState.FAILED_OVER, services.controller.record.last_error
        assert bind.query("example.com", "MX") == [STANDBY_MX]
    finally:
        bind.stop()


async def test_a_grant_of_the_mx_alone_fails_the_check(tmp_path: Path) -> None:
    key = TsigKey(KEY_NAME, TsigKey.generate().secret)
    bind = _bind(tmp_path, key, f"grant {KEY_NAME} name example.com. MX;")
    bind.start()
    try:
        checks = {check.name: check for check in await check_dns(make_settings(tmp_path, _dns(bind, key)))}
        refused = checks["example.com: key may update the zone"]
        assert not refused.ok
        assert "add TXT _continuity-check.example.com." in refused.detail and "REFUSED" in refused.detail
    finally:
        bind.stop()
