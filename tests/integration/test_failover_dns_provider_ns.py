"""Verification when the zone's name servers are named outside it (a DNS provider's ns.provider.test).

The update server is not authoritative for provider.test and does not recurse, so the
name server's address comes from the recursive resolver of ``[dns] resolver`` (here a
second real BIND serving provider.test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from continuity.config.dns import DnsSettings
from continuity.dns.errors import DnsUpdateError
from continuity.dns.factory import build_mx_updater
from continuity.dns.provider import MxUpdater
from tests.support.bind import BindServer, TsigKey, zone_text

pytestmark = pytest.mark.slow

PRIMARY_MX = "10 mail.example.com."
STANDBY_MX = "10 standby.example.com."

# example.com delegated to a provider's name server, which is (on loopback) the update server itself.
EXAMPLE_ZONE = (
    "$ORIGIN example.com.\n$TTL 60\n"
    "@ IN SOA ns.provider.test. hostmaster.example.com. 1 3600 600 86400 60\n"
    "@ IN NS ns.provider.test.\n"
    f"@ IN MX {PRIMARY_MX}\nmail IN A 127.0.0.2\nstandby IN A 127.0.0.3\n"
)


@pytest.fixture
def key() -> TsigKey:
    return TsigKey.generate()


@pytest.fixture
def servers(tmp_path: Path, key: TsigKey) -> Iterator[tuple[BindServer, BindServer]]:
    authoritative = BindServer(tmp_path / "example", {"example.com": EXAMPLE_ZONE}, key)
    provider = BindServer(tmp_path / "provider", {"provider.test": zone_text("provider.test", ["ns IN A 127.0.0.1"])})
    authoritative.start()
    provider.start()
    try:
        yield authoritative, provider
    finally:
        provider.stop()
        authoritative.stop()


def _updater(authoritative: BindServer, key: TsigKey, resolver: list[str]) -> MxUpdater:
    settings = DnsSettings(
        server=f"127.0.0.1:{authoritative.port}",
        verify_port=authoritative.port,
        primary_mx=[PRIMARY_MX],
        standby_mx=[STANDBY_MX],
        tsig_key_name=key.name,
        tsig_secret=SecretStr(key.secret),
        ttl=60,
        verify_timeout=5,
        query_timeout=2,
        resolver=resolver,
    )
    return build_mx_updater(settings)


@pytest.fixture
async def switched(servers: tuple[BindServer, BindServer], key: TsigKey) -> AsyncIterator[None]:
    authoritative, provider = servers
    updater = _updater(authoritative, key, [f"127.0.0.1:{provider.port}"])
    await updater.replace_mx("example.com", [PRIMARY_MX], [STANDBY_MX])
    yield


async def test_out_of_zone_name_servers_are_found_through_the_resolver(
    servers: tuple[BindServer, BindServer], key: TsigKey, switched: None
) -> None:
    authoritative, provider = servers
    updater = _updater(authoritative, key, [f"127.0.0.1:{provider.port}"])
    assert await updater.verifier.authoritative_servers("example.com") == ["127.0.0.1"]
    verified = await updater.verify("example.com", [STANDBY_MX])
    assert verified == (f"127.0.0.1:{authoritative.port}",)


async def test_an_unresolvable_name_server_is_named_in_the_error(
    servers: tuple[BindServer, BindServer], key: TsigKey
) -> None:
    authoritative, _provider = servers
    # A resolver that knows nothing of provider.test: the authoritative server itself.
    updater = _updater(authoritative, key, [f"127.0.0.1:{authoritative.port}"])
    with pytest.raises(DnsUpdateError, match=r"cannot resolve name server ns\.provider\.test\.: .*REFUSED"):
        await updater.verifier.authoritative_servers("example.com")
