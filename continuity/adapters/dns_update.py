"""RFC 2136 updates of the protected domains' MX records, signed with TSIG (dnspython), and their verification.

A switch replaces the MX RRset of each domain with the other side's, guarded by a
prerequisite that the current RRset is exactly the side we switch away from (RFC 2136
section 2.4.2): if someone changed the records, the server refuses with NXRRSET and
nothing changes. A switch to where the records already point is a success without an
update (so a retry after a crash is safe). Each update is retried with backoff; then
every authoritative server of the zone (its NS records) is queried until all serve the
new RRset.
The queries that read and verify the records are signed with the same TSIG key and sent
over TCP (``[dns] verify_signing``), so an answer forged on the path cannot make a switch
look done: a server that does not take the key (a secondary or a provider's server
without it) is queried unsigned, with a warning once per server, unless signing is
required. A server that has answered signed once is never asked unsigned again by the
same updater (a stripped signature is an error, not a reason to downgrade).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.resolver
import dns.tsig
import dns.tsigkeyring
import dns.update

from continuity.adapters.dns_tsig import TsigCredentials
from continuity.config.dns import DnsSettings, VerifySigning
from continuity.config.types import HostPort, parse_host_port

log = logging.getLogger("continuity.dns")


class DnsUpdateError(Exception):
    """An update or a verification failed; the message says which domain, what and why."""


class _SigningRefusedError(Exception):
    """A server did not answer a TSIG-signed query over TCP (it does not know the key, ignores TSIG, or no TCP).

    ``lasting`` is False for a timeout, which may pass: only that query goes unsigned.
    """

    def __init__(self, message: str, *, lasting: bool = True) -> None:
        super().__init__(message)
        self.lasting = lasting


class DnsVerifyError(DnsUpdateError):
    """The update server has the new MX, but some authoritative servers did not serve it in time.

    ``serving`` are the servers (``host:port``) that serve it, ``not_serving`` says for each
    of the others what it served instead or why it did not answer.
    """

    def __init__(self, message: str, serving: tuple[str, ...], not_serving: dict[str, str]) -> None:
        super().__init__(message)
        self.serving = serving
        self.not_serving = not_serving


def mx_rdataset(records: Sequence[str], ttl: int) -> dns.rdataset.Rdataset:
    """An MX rdataset from texts such as '10 mail.example.com.'."""
    rdatas = [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.MX, text) for text in records]
    return dns.rdataset.from_rdata_list(ttl, rdatas)


def _canonical(records: Sequence[str]) -> frozenset[str]:
    return frozenset(str(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.MX, text)).lower() for text in records)


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


class MxUpdater:
    """Replaces and verifies MX RRsets through one update server."""

    def __init__(self, settings: DnsSettings, credentials: TsigCredentials) -> None:
        self._settings = settings
        self._credentials = credentials
        self._server, self._port = settings.server_address
        # Servers (host:port) that answered a signed query, and those that would not take the key.
        self._signed: set[str] = set()
        self._unsigned: set[str] = set()
        self._warned: set[str] = set()

    @property
    def unsigned_servers(self) -> tuple[str, ...]:
        """The servers (host:port) read with unsigned queries so far, because they would not take the key."""
        return tuple(sorted(self._warned - self._signed))

    def zone_of(self, domain: str) -> dns.name.Name:
        """The zone a domain's MX lives in (the domain itself unless [dns] zones says otherwise)."""
        return dns.name.from_text(self._settings.zones.get(domain, domain))

    async def query(self, name: str, rdtype: str, where: str, port: int) -> dns.message.Message:
        """A non-recursive query to one server: TSIG-signed over TCP where it takes the key (see the module)."""
        server = str(HostPort(where, port))
        mode = self._settings.verify_signing
        if mode is not VerifySigning.OFF and server not in self._unsigned:
            try:
                response = await self._signed_query(name, rdtype, where, port)
            except _SigningRefusedError as exc:
                if mode is VerifySigning.REQUIRE or server in self._signed:
                    raise DnsUpdateError(
                        f"{server} did not answer {name} {rdtype} signed with TSIG key '{self._credentials.name}': "
                        f"{exc}" + ("" if mode is VerifySigning.REQUIRE else " (it did before)")
                    ) from exc
                if server not in self._warned:
                    self._warned.add(server)
                    log.warning(
                        "DNS server %s does not answer queries signed with TSIG key '%s' over TCP (%s); reading %s "
                        "there with unsigned UDP queries, which anyone on the path could forge",
                        server,
                        self._credentials.name,
                        exc,
                        name,
                    )
                if exc.lasting:
                    self._unsigned.add(server)
            else:
                self._signed.add(server)
                return response
        return await self._unsigned_query(name, rdtype, where, port)

    def _request(self, name: str, rdtype: str) -> dns.message.QueryMessage:
        request = dns.message.make_query(name, rdtype)
        request.flags &= ~dns.flags.RD
        return request

    async def _signed_query(self, name: str, rdtype: str, where: str, port: int) -> dns.message.Message:
        credentials = self._credentials
        request = self._request(name, rdtype)
        request.use_tsig(credentials.keyring(), keyname=credentials.name, algorithm=credentials.algorithm)
        try:
            return await dns.asyncquery.tcp(request, where, timeout=self._settings.query_timeout, port=port)
        except dns.tsig.PeerError as exc:
            # The server answered, unsigned, that it does not know or accept our key (BADKEY, BADSIG, BADTIME).
            raise _SigningRefusedError(_describe(exc)) from exc
        except dns.exception.FormError as exc:
            # An unsigned answer to a signed query: the server ignores TSIG on queries.
            raise _SigningRefusedError(_describe(exc)) from exc
        except OSError as exc:
            # No TCP (a firewall that lets only UDP through).
            raise _SigningRefusedError(f"no TCP: {_describe(exc)}") from exc
        except dns.exception.Timeout as exc:
            # TCP dropped on the way, or the server is busy: this query only.
            raise _SigningRefusedError(f"no answer over TCP: {_describe(exc)}", lasting=False) from exc
        except dns.exception.DNSException as exc:
            # An answer whose signature does not verify (forged?): nothing to fall back on.
            raise DnsUpdateError(
                f"no answer from {HostPort(where, port)} for {name} {rdtype}: {_describe(exc)}"
            ) from exc

    async def _unsigned_query(self, name: str, rdtype: str, where: str, port: int) -> dns.message.Message:
        request = self._request(name, rdtype)
        timeout = self._settings.query_timeout
        try:
            response = await dns.asyncquery.udp(request, where, timeout=timeout, port=port)
            if response.flags & dns.flags.TC:
                response = await dns.asyncquery.tcp(request, where, timeout=timeout, port=port)
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsUpdateError(
                f"no answer from {HostPort(where, port)} for {name} {rdtype}: {_describe(exc)}"
            ) from exc
        return response

    async def current_mx(self, domain: str, where: str | None = None, port: int | None = None) -> tuple[str, ...]:
        """The MX RRset as one server serves it (the update server by default), sorted."""
        response = await self.query(domain, "MX", where or self._server, port or self._port)
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsUpdateError(f"{where or self._server} answers {dns.rcode.to_text(rcode)} for {domain} MX")
        return tuple(sorted(str(rdata).lower() for rrset in response.answer for rdata in rrset))

    async def mx_ttl(self, domain: str, where: str, port: int) -> int | None:
        """The TTL of the MX RRset on one server, or None when there is none."""
        response = await self.query(domain, "MX", where, port)
        return next((rrset.ttl for rrset in response.answer if rrset.rdtype == dns.rdatatype.MX), None)

    async def _send(self, update: dns.update.UpdateMessage) -> dns.rcode.Rcode:
        try:
            response = await dns.asyncquery.tcp(
                update, self._server, timeout=self._settings.query_timeout, port=self._port
            )
        except dns.tsig.PeerError as exc:
            raise DnsUpdateError(
                f"the server refused our TSIG key '{self._credentials.name}': {_describe(exc)}"
            ) from exc
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsUpdateError(f"update to {HostPort(self._server, self._port)} failed: {_describe(exc)}") from exc
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
            update = self._new_update(self.zone_of(domain))
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
                    if _canonical(current) == _canonical(target):
                        return DomainSwitch(domain, current, current, updated=False)
                    raise DnsUpdateError(
                        f"the prerequisite failed ({dns.rcode.to_text(rcode)}): {domain} MX is {_show(current)}, "
                        f"not the expected {_show(expected)}; someone changed it and nothing was updated"
                    )
                if rcode in (dns.rcode.NOTAUTH, dns.rcode.REFUSED, dns.rcode.NOTZONE, dns.rcode.FORMERR):
                    raise DnsUpdateError(
                        f"{HostPort(self._server, self._port)} refused the update of {domain} "
                        f"({dns.rcode.to_text(rcode)}); "
                        "check the TSIG key and the zone's allow-update"
                    )
                last = f"the server answered {dns.rcode.to_text(rcode)}"
            log.warning("MX update of %s, attempt %d of %d: %s", domain, attempt, settings.attempts, last)
            if attempt < settings.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        raise DnsUpdateError(f"could not update {domain} MX after {settings.attempts} attempts: {last}")

    async def authoritative_servers(self, domain: str) -> list[str]:
        """Addresses of every name server of domain's zone, as the update server lists them.

        A name server inside the zone is found on the update server (its glue); one outside
        it (a DNS provider's ns1.provider.net) through the recursive resolver of [dns] resolver.
        """
        zone = self.zone_of(domain).to_text()
        response = await self.query(zone, "NS", self._server, self._port)
        names = sorted({str(rdata.target) for rrset in response.answer for rdata in rrset})
        if not names:
            raise DnsUpdateError(f"{self._server} lists no NS records for zone {zone}")
        addresses: list[str] = []
        for name in names:
            found = await self._addresses_on_update_server(name)
            if not found:
                found = await self._addresses_from_resolver(name)
            if not found:
                raise DnsUpdateError(
                    f"name server {name} of zone {zone} has no address, neither on {self._server} "
                    "nor through the resolver ([dns] resolver)"
                )
            addresses += found
        return sorted(set(addresses))

    async def _addresses_on_update_server(self, name: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.query(name, rdtype, self._server, self._port)
            except DnsUpdateError:
                return []
            if answer.rcode() != dns.rcode.NOERROR:
                return []  # REFUSED or NXDOMAIN: the update server is not authoritative for it
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
                raise DnsUpdateError(f"cannot resolve name server {name}: {_describe(exc)}") from exc
            found += [str(rdata) for rdata in answer]
        return found

    async def verify(self, domain: str, target: Sequence[str]) -> tuple[str, ...]:
        """Wait until every authoritative server serves target for domain; returns the servers checked.

        Raises :class:`DnsVerifyError` (which servers serve it, what the others serve) when
        some do not by ``verify_timeout``: a secondary that missed the change, or is down.
        """
        servers = await self.authoritative_servers(domain)
        port = self._settings.verify_port
        deadline = time.monotonic() + self._settings.verify_timeout
        wanted = _canonical(target)
        pending = list(servers)
        last: dict[str, str] = {}
        while pending:
            for server in list(pending):
                try:
                    served = await self.current_mx(domain, server, port)
                except DnsUpdateError as exc:
                    last[server] = str(exc)
                    continue
                if _canonical(served) == wanted:
                    pending.remove(server)
                else:
                    last[server] = f"serves {_show(served)}"
            if not pending:
                break
            if time.monotonic() >= deadline:
                not_serving = {str(HostPort(server, port)): last.get(server, "no answer") for server in pending}
                detail = "; ".join(f"{server}: {why}" for server, why in not_serving.items())
                raise DnsVerifyError(
                    f"{domain} MX is {_show(target)} on the update server but {len(pending)} of {len(servers)} "
                    f"authoritative servers do not serve it after {self._settings.verify_timeout:g}s ({detail})",
                    tuple(str(HostPort(server, port)) for server in servers if server not in pending),
                    not_serving,
                )
            await asyncio.sleep(0.5)
        return tuple(str(HostPort(server, port)) for server in servers)

    async def test_key(self, domain: str) -> None:
        """Prove the key may update the zone: add and remove a TXT record under _continuity-check."""
        zone = self.zone_of(domain)
        owner = dns.name.from_text("_continuity-check", zone)
        add = self._new_update(zone)
        add.replace(owner, 60, "TXT", f'"dns check {int(time.time())}"')
        remove = self._new_update(zone)
        remove.delete(owner, "TXT")
        for update, what in ((add, "add"), (remove, "remove")):
            rcode = await self._send(update)
            if rcode != dns.rcode.NOERROR:
                raise DnsUpdateError(f"a test update ({what} TXT {owner}) was refused with {dns.rcode.to_text(rcode)}")


def _show(records: Sequence[str]) -> str:
    return "[" + ", ".join(sorted(records)) + "]" if records else "[nothing]"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
