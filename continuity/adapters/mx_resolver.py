"""Finding where to deliver mail for a domain: MX records, then addresses (dnspython).

RFC 5321 section 5.1: MX hosts in order of preference (equal preferences shuffled),
the domain itself when it has no MX (implicit MX), and RFC 7505: a null MX ("0 .")
means the domain accepts no mail.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from continuity.config.types import HostPort


class MxLookupError(Exception):
    """DNS could not say where to deliver; permanent says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class MailHost:
    """One host to try: its name (for TLS and logs) and its addresses."""

    name: str
    addresses: tuple[str, ...]


class MxResolver:
    """MX and address lookups through the configured (or system) DNS servers."""

    def __init__(self, nameservers: list[HostPort], timeout: float = 10.0) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = [server.host for server in nameservers]
            self._resolver.port = nameservers[0].port
        self._resolver.lifetime = timeout

    async def _addresses(self, name: str) -> tuple[str, ...]:
        found: list[str] = []
        for record_type in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(name, record_type)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            found.extend(str(record) for record in answer)
        return tuple(found)

    async def mail_hosts(self, domain: str) -> list[MailHost]:
        """The hosts to try for domain, best first; MxLookupError when there are none."""
        try:
            answer = await self._resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN:
            raise MxLookupError(f"domain {domain} does not exist", permanent=True) from None
        except dns.resolver.NoAnswer:
            addresses = await self._lookup_addresses(domain)
            if not addresses:
                raise MxLookupError(f"domain {domain} has no MX and no address", permanent=True) from None
            return [MailHost(domain, addresses)]
        except dns.exception.DNSException as exc:
            raise MxLookupError(f"MX lookup for {domain} failed: {exc}", permanent=False) from None
        records = sorted(answer, key=lambda record: (record.preference, random.random()))
        if len(records) == 1 and str(records[0].exchange) == ".":
            raise MxLookupError(f"domain {domain} accepts no mail (null MX, RFC 7505)", permanent=True)
        hosts = []
        for record in records:
            name = str(record.exchange).rstrip(".")
            addresses = await self._lookup_addresses(name)
            if addresses:
                hosts.append(MailHost(name, addresses))
        if not hosts:
            raise MxLookupError(f"no MX host of {domain} has an address", permanent=False)
        return hosts

    async def _lookup_addresses(self, name: str) -> tuple[str, ...]:
        try:
            return await self._addresses(name)
        except dns.exception.DNSException as exc:
            raise MxLookupError(f"address lookup for {name} failed: {exc}", permanent=False) from None
