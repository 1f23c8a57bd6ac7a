"""What the tests of the cloud providers (route53, cloudflare, azure) share: zones and the [dns] table."""

from __future__ import annotations

from typing import Any

from tests.integration.dns.conftest import PRIMARY_MX, RECORDS, STANDBY_MX

# The zones the service holds and its name servers (a real BIND) serve; example.net is added by some tests.
ZONES = {"example.com": RECORDS, "example.net": [f"@ IN MX {PRIMARY_MX}"]}


def cloud_dns(provider: str, port: int, api: dict[str, Any]) -> dict[str, Any]:
    """The [dns] table for provider with its API settings; the name servers (BIND) answer on 127.0.0.1:port."""
    return {
        "provider": provider,
        provider: api,
        "server": f"127.0.0.1:{port}",
        "verify_port": port,
        "primary_mx": [PRIMARY_MX],
        "standby_mx": [STANDBY_MX],
        "ttl": 60,
        "verify_timeout": 3,
        "attempts": 2,
        "query_timeout": 2,
    }
