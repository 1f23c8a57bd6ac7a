"""The ``rfc2136`` provider: RFC 2136 updates of the MX records, signed with TSIG (dnspython).

A switch replaces the MX RRset of each domain with the other side's, guarded by a
prerequisite that the current RRset is exactly the side we switch away from (RFC 2136
section 2.4.2): if someone changed the records, the server refuses with NXRRSET and
nothing changes. A switch to where the records already point is a success without an
update (so a retry after a crash is safe). Each update is retried with backoff.
The records are read on the update server with :class:`DnsReader` (signed with the same
key where the server takes it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import dns.asyncquery
import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.update

from continuity.config.dns import DnsSettings
from continuity.config.types import HostPort
from continuity.dns.errors import DnsUpdateError, canonical_mx, describe, show_mx
from continuity.dns.provider import DomainSwitch, zone_of
from continuity.dns.queries import DnsReader
from continuity.dns.tsig import TsigCredentials

log = logging.getLogger("continuity.dns")


def mx_rdataset(records: Sequence[str], ttl: int) -> dns.rdataset.Rdataset:
    """An MX rdataset from texts such as '10 mail.example.com.'."""
    rdatas = [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.MX, text) for text in records]
    return dns.rdataset.from_rdata_list(ttl, rdatas)


class Rfc2136Provider:
    """Replaces MX RRsets through one update server, guarded by RFC 2136 prerequisites."""

    name = "rfc2136"

    def __init__(self, settings: DnsSettings, credentials: TsigCredentials, reader: DnsReader) -> None:
        self._settings = settings
        self._credentials = credentials
        self._reader = reader
        self._server, self._port = settings.server_address

    async def access(self, domain: str) -> str:
        """The update server serves the zone's SOA (the key itself is proven by :meth:`test_change`)."""
        zone = zone_of(self._settings, domain).to_text()
        response = await self._reader.query(zone, "SOA", self._server, self._port)
        if response.rcode() != dns.rcode.NOERROR or not response.answer:
            raise DnsUpdateError(
                f"{HostPort(self._server, self._port)} does not serve zone {zone} "
                f"({dns.rcode.to_text(response.rcode())}); check [dns] server and zones"
            )
        return f"zone {zone} on {HostPort(self._server, self._port)}, TSIG key '{self._credentials.name}'"

    async def current_mx(self, domain: str) -> tuple[str, ...]:
        """The MX RRset as the update server serves it."""
        return await self._reader.mx(domain, self._server, self._port)

    async def _send(self, update: dns.update.UpdateMessage) -> dns.rcode.Rcode:
        try:
            response = await dns.asyncquery.tcp(
                update, self._server, timeout=self._settings.query_timeout, port=self._port
            )
        except dns.tsig.PeerError as exc:
            # Knot answers BADKEY also when its ACL does not allow the change (update-type, update-owner).
            acl = (
                "; or its ACL does not allow this change (Knot answers so)"
                if isinstance(exc, dns.tsig.PeerBadKey)
                else ""
            )
            raise DnsUpdateError(
                f"the server refused our TSIG key '{self._credentials.name}': {describe(exc)}{acl}"
            ) from exc
        except dns.exception.FormError as exc:
            if "requires a TSIG" not in str(exc):
                raise DnsUpdateError(f"update to {HostPort(self._server, self._port)} failed: {describe(exc)}") from exc
            # PowerDNS answers a wrong key or secret with an unsigned REFUSED (not BADSIG, RFC 8945 5.2).
            raise DnsUpdateError(
                f"the server refused our TSIG key '{self._credentials.name}': its answer was not signed "
                "(PowerDNS answers a wrong key name or secret so)"
            ) from exc
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsUpdateError(f"update to {HostPort(self._server, self._port)} failed: {describe(exc)}") from exc
        return response.rcode()

    def _new_update(self, zone: dns.name.Name) -> dns.update.UpdateMessage:
        credentials = self._credentials
        return dns.update.UpdateMessage(
            zone,
            keyring=credentials.keyring(),
            keyname=dns.name.from_text(credentials.name),
            keyalgorithm=credentials.algorithm,
        )

    async def replace_mx(self, domain: str, expected: Sequence[str], target: Sequence[str]) -> DomainSwitch:
        """Replace domain's MX RRset expected -> target, guarded by the server-side prerequisite.

        When the prerequisite fails, the records are read: already target is a success
        without change (a repeated switch), anything else is an error and nothing changed.
        Transport failures are retried with backoff; refusals are not.
        """
        settings = self._settings
        owner = dns.name.from_text(domain)
        delay = 1.0
        last = ""
        for attempt in range(1, settings.attempts + 1):
            update = self._new_update(zone_of(settings, domain))
            # Value-dependent prerequisite (RFC 2136 2.4.2, TTL 0): the RRset is exactly `expected`.
            update.present(owner, mx_rdataset(expected, 0))
            update.replace(owner, mx_rdataset(target, settings.ttl))
            try:
                before = await self.current_mx(domain)
                rcode = await self._send(update)
            except DnsUpdateError as exc:
                if "TSIG" in str(exc):
                    raise
                last = str(exc)
            else:
                if rcode == dns.rcode.NOERROR:
                    return DomainSwitch(domain, before, await self.current_mx(domain), updated=True)
                if rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN):
                    current = await self.current_mx(domain)
                    if canonical_mx(current) == canonical_mx(target):
                        return DomainSwitch(domain, current, current, updated=False)
                    raise DnsUpdateError(
                        f"the prerequisite failed ({dns.rcode.to_text(rcode)}): {domain} MX is {show_mx(current)}, "
                        f"not the expected {show_mx(expected)}; someone changed it and nothing was updated"
                    )
                if rcode in (dns.rcode.NOTAUTH, dns.rcode.REFUSED, dns.rcode.NOTZONE, dns.rcode.FORMERR):
                    raise DnsUpdateError(
                        f"{HostPort(self._server, self._port)} refused the update of {domain} "
                        f"({dns.rcode.to_text(rcode)}); "
                        "check the TSIG key and the zone's allow-update (or update-policy, Knot's acl)"
                    )
                last = f"the server answered {dns.rcode.to_text(rcode)}"
            log.warning("MX update of %s, attempt %d of %d: %s", domain, attempt, settings.attempts, last)
            if attempt < settings.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        raise DnsUpdateError(f"could not update {domain} MX after {settings.attempts} attempts: {last}")

    async def test_change(self, domain: str) -> None:
        """Prove the key may update the zone: add and remove a TXT record under _continuity-check."""
        zone = zone_of(self._settings, domain)
        owner = dns.name.from_text("_continuity-check", zone)
        add = self._new_update(zone)
        add.replace(owner, 60, "TXT", f'"dns check {int(time.time())}"')
        remove = self._new_update(zone)
        remove.delete(owner, "TXT")
        for update, what in ((add, "add"), (remove, "remove")):
            rcode = await self._send(update)
            if rcode != dns.rcode.NOERROR:
                raise DnsUpdateError(f"a test update ({what} TXT {owner}) was refused with {dns.rcode.to_text(rcode)}")
