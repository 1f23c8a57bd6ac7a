"""What every DNS provider does for a switch, and the verification they all share.

A provider (RFC 2136, PowerDNS's HTTP API, ...) reads a domain's MX set as it holds it and
replaces it by compare-and-swap: only when it is exactly the side being left, with the
provider's own precondition where it has one (RFC 2136 prerequisites; a Route 53 change
batch that DELETEs the exact old set) and otherwise read, compare, write and read again.
A provider's "OK" is never the end of it: :class:`MxVerifier` then queries every
authoritative server of the zone directly until all serve the new set, the same way for
every provider. :class:`MxUpdater` joins the two for the switcher.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from continuity.config.dns import DnsSettings
from continuity.config.types import HostPort, parse_host_port
from continuity.dns.errors import DnsUpdateError, DnsVerifyError, canonical_mx, describe, show_mx
from continuity.dns.queries import DnsReader


@dataclass(frozen=True, slots=True)
class DomainSwitch:
    """What happened to one domain's MX."""

    domain: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    updated: bool
    verified_servers: tuple[str, ...] = field(default=())

    def evidence(self) -> dict[str, object]:
        """For the audit log."""
        return {
            "domain": self.domain,
            "before": list(self.before),
            "after": list(self.after),
            "updated": self.updated,
            "verified_on": list(self.verified_servers),
        }


class DnsProvider(Protocol):
    """Where a domain's MX records are changed: one implementation per protocol or API."""

    @property
    def name(self) -> str:
        """The provider's name as [dns] provider spells it."""
        ...

    async def access(self, domain: str) -> str:
        """Prove the credentials are valid and reach domain's zone; says what was found, DnsUpdateError if not."""
        ...

    async def current_mx(self, domain: str) -> tuple[str, ...]:
        """The MX set as the provider holds it, sorted, in lower case."""
        ...

    async def replace_mx(self, domain: str, expected: Sequence[str], target: Sequence[str]) -> DomainSwitch:
        """Compare-and-swap expected -> target; already target is a success without change.

        Anything but expected or target raises DnsUpdateError and changes nothing.
        """
        ...

    async def test_change(self, domain: str) -> None:
        """Add and remove a TXT record _continuity-check.<zone>: the credentials may write the zone."""
        ...


def zone_of(settings: DnsSettings, domain: str) -> dns.name.Name:
    """The zone a domain's MX lives in (the domain itself unless [dns] zones says otherwise)."""
    return dns.name.from_text(settings.zones.get(domain, domain))


class MxVerifier:
    """Finds the zone's name servers and waits until every one serves the new MX.

    The names are the zone's NS records as [dns] server serves them, unless the provider
    lists them itself (``name_servers``: a DNS service without a server of ours to ask, such
    as Route 53's delegation set); their addresses come from [dns] server or the resolver.
    """

    def __init__(
        self,
        settings: DnsSettings,
        reader: DnsReader,
        name_servers: Callable[[str], Awaitable[Sequence[str]]] | None = None,
    ) -> None:
        self._settings = settings
        self._reader = reader
        self._server, self._port = settings.server_address
        self._listed = name_servers

    async def _name_server_names(self, zone: str) -> list[str]:
        if self._listed is not None:
            names = sorted({dns.name.from_text(name).to_text() for name in await self._listed(zone)})
        else:
            response = await self._reader.query(zone, "NS", self._server, self._port)
            names = sorted({str(rdata.target) for rrset in response.answer for rdata in rrset})
        if not names:
            where = "the provider" if self._listed is not None else str(HostPort(self._server, self._port))
            raise DnsUpdateError(f"{where} lists no NS records for zone {zone}")
        return names

    async def authoritative_servers(self, domain: str) -> list[str]:
        """Addresses of every name server of domain's zone (see the class for where the names come from).

        A name server inside the zone is found on that server (its glue); one outside it
        (a DNS provider's ns1.provider.net) through the recursive resolver of [dns] resolver.
        """
        zone = zone_of(self._settings, domain).to_text()
        addresses: list[str] = []
        for name in await self._name_server_names(zone):
            found = await self._addresses_on_server(name)
            if not found:
                found = await self._addresses_from_resolver(name)
            if not found:
                raise DnsUpdateError(
                    f"name server {name} of zone {zone} has no address, neither on {self._server} "
                    "nor through the resolver ([dns] resolver)"
                )
            addresses += found
        return sorted(set(addresses))

    async def _addresses_on_server(self, name: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._reader.query(name, rdtype, self._server, self._port)
            except DnsUpdateError:
                return []
            if answer.rcode() != dns.rcode.NOERROR:
                return []  # REFUSED or NXDOMAIN: the server is not authoritative for it
            found += [
                str(rdata)
                for rrset in answer.answer
                if rrset.rdtype == dns.rdatatype.from_text(rdtype)
                for rdata in rrset
            ]
        return found

    async def _addresses_from_resolver(self, name: str) -> list[str]:
        resolver = dns.asyncresolver.Resolver(configure=not self._settings.resolver)
        if self._settings.resolver:
            servers = [parse_host_port(item) for item in self._settings.resolver]
            resolver.nameservers = [server.host for server in servers]
            resolver.port = servers[0].port
        resolver.lifetime = self._settings.query_timeout
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(name, rdtype)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as exc:
                raise DnsUpdateError(f"cannot resolve name server {name}: {describe(exc)}") from exc
            found += [str(rdata) for rdata in answer]
        return found

    async def mx_ttls(self, domain: str) -> dict[str, int | None]:
        """The MX TTL each authoritative server (host:port) serves, None where it serves no MX."""
        port = self._settings.verify_port
        return {
            str(HostPort(server, port)): await self._reader.mx_ttl(domain, server, port)
            for server in await self.authoritative_servers(domain)
        }

    async def verify(self, domain: str, target: Sequence[str]) -> tuple[str, ...]:
        """Wait until every authoritative server serves target for domain; returns the servers checked.

        Raises :class:`DnsVerifyError` (which servers serve it, what the others serve) when
        some do not by ``verify_timeout``: a secondary that missed the change, or is down.
        """
        servers = await self.authoritative_servers(domain)
        port = self._settings.verify_port
        deadline = time.monotonic() + self._settings.verify_timeout
        wanted = canonical_mx(target)
        pending = list(servers)
        last: dict[str, str] = {}
        while pending:
            for server in list(pending):
                try:
                    served = await self._reader.mx(domain, server, port)
                except DnsUpdateError as exc:
                    last[server] = str(exc)
                    continue
                if canonical_mx(served) == wanted:
                    pending.remove(server)
                else:
                    last[server] = f"serves {show_mx(served)}"
            if not pending:
                break
            if time.monotonic() >= deadline:
                not_serving = {str(HostPort(server, port)): last.get(server, "no answer") for server in pending}
                detail = "; ".join(f"{server}: {why}" for server, why in not_serving.items())
                raise DnsVerifyError(
                    f"{domain} MX is {show_mx(target)} at the provider but {len(pending)} of {len(servers)} "
                    f"authoritative servers do not serve it after {self._settings.verify_timeout:g}s ({detail})",
                    tuple(str(HostPort(server, port)) for server in servers if server not in pending),
                    not_serving,
                )
            await asyncio.sleep(0.5)
        return tuple(str(HostPort(server, port)) for server in servers)


class MxUpdater:
    """A provider's compare-and-swap joined with the shared verification: what the DNS switcher drives."""

    def __init__(self, provider: DnsProvider, verifier: MxVerifier, reader: DnsReader) -> None:
        self.provider = provider
        self.verifier = verifier
        self.reader = reader

    @property
    def unsigned_servers(self) -> tuple[str, ...]:
        """The servers read with unsigned queries because they would not take the TSIG key."""
        return self.reader.unsigned_servers

    async def replace_mx(self, domain: str, expected: Sequence[str], target: Sequence[str]) -> DomainSwitch:
        """The provider's compare-and-swap (see :meth:`DnsProvider.replace_mx`)."""
        return await self.provider.replace_mx(domain, expected, target)

    async def verify(self, domain: str, target: Sequence[str]) -> tuple[str, ...]:
        """Every authoritative server serves target (see :meth:`MxVerifier.verify`)."""
        return await self.verifier.verify(domain, target)
