"""Direct, non-recursive DNS queries to one server: how every provider's MX is read and verified.

The queries are signed with the TSIG key where one is configured and sent over TCP
(``[dns] verify_signing``), so an answer forged on the path cannot make a switch look
done: a server that does not take the key (a secondary or a provider's server without
it) is queried unsigned, with a warning once per server, unless signing is required. A
server that has answered signed once is never asked unsigned again by the same reader (a
stripped signature is an error, not a reason to downgrade). Without a key (an HTTP API
provider) every query is unsigned UDP, TCP when truncated.
"""

from __future__ import annotations

import logging

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.tsig

from continuity.config.dns import DnsSettings, VerifySigning
from continuity.config.types import HostPort
from continuity.dns.errors import DnsUpdateError, describe
from continuity.dns.tsig import TsigCredentials

log = logging.getLogger("continuity.dns")


class _SigningRefusedError(Exception):
    """A server did not answer a TSIG-signed query over TCP (it does not know the key, ignores TSIG, or no TCP).

    ``lasting`` is False for a timeout, which may pass: only that query goes unsigned.
    """

    def __init__(self, message: str, *, lasting: bool = True) -> None:
        super().__init__(message)
        self.lasting = lasting


class DnsReader:
    """Asks one server at a time, signed with the TSIG key where it takes it (see the module)."""

    def __init__(self, settings: DnsSettings, credentials: TsigCredentials | None) -> None:
        self._settings = settings
        self._credentials = credentials
        # Servers (host:port) that answered a signed query, and those that would not take the key.
        self._signed: set[str] = set()
        self._unsigned: set[str] = set()
        self._warned: set[str] = set()

    @property
    def unsigned_servers(self) -> tuple[str, ...]:
        """The servers (host:port) read with unsigned queries so far, because they would not take the key."""
        return tuple(sorted(self._warned - self._signed))

    async def query(self, name: str, rdtype: str, where: str, port: int) -> dns.message.Message:
        """A non-recursive query to one server: TSIG-signed over TCP where it takes the key (see the module)."""
        server = str(HostPort(where, port))
        mode = self._settings.verify_signing
        credentials = self._credentials
        if credentials is not None and mode is not VerifySigning.OFF and server not in self._unsigned:
            try:
                response = await self._signed_query(credentials, name, rdtype, where, port)
            except _SigningRefusedError as exc:
                if mode is VerifySigning.REQUIRE or server in self._signed:
                    raise DnsUpdateError(
                        f"{server} did not answer {name} {rdtype} signed with TSIG key '{credentials.name}': "
                        f"{exc}" + ("" if mode is VerifySigning.REQUIRE else " (it did before)")
                    ) from exc
                if server not in self._warned:
                    self._warned.add(server)
                    log.warning(
                        "DNS server %s does not answer queries signed with TSIG key '%s' over TCP (%s); reading %s "
                        "there with unsigned UDP queries, which anyone on the path could forge",
                        server,
                        credentials.name,
                        exc,
                        name,
                    )
                if exc.lasting:
                    self._unsigned.add(server)
            else:
                self._signed.add(server)
                return response
        return await self._unsigned_query(name, rdtype, where, port)

    async def mx(self, domain: str, where: str, port: int) -> tuple[str, ...]:
        """The MX RRset as one server serves it, sorted, in lower case."""
        response = await self.query(domain, "MX", where, port)
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsUpdateError(f"{HostPort(where, port)} answers {dns.rcode.to_text(rcode)} for {domain} MX")
        return tuple(sorted(str(rdata).lower() for rrset in response.answer for rdata in rrset))

    async def mx_ttl(self, domain: str, where: str, port: int) -> int | None:
        """The TTL of the MX RRset on one server, or None when there is none."""
        response = await self.query(domain, "MX", where, port)
        return next((rrset.ttl for rrset in response.answer if rrset.rdtype == dns.rdatatype.MX), None)

    def _request(self, name: str, rdtype: str) -> dns.message.QueryMessage:
        request = dns.message.make_query(name, rdtype)
        request.flags &= ~dns.flags.RD
        return request

    async def _signed_query(
        self, credentials: TsigCredentials, name: str, rdtype: str, where: str, port: int
    ) -> dns.message.Message:
        request = self._request(name, rdtype)
        request.use_tsig(credentials.keyring(), keyname=credentials.name, algorithm=credentials.algorithm)
        try:
            return await dns.asyncquery.tcp(request, where, timeout=self._settings.query_timeout, port=port)
        except dns.tsig.PeerError as exc:
            # The server answered, unsigned, that it does not know or accept our key (BADKEY, BADSIG, BADTIME).
            raise _SigningRefusedError(describe(exc)) from exc
        except dns.exception.FormError as exc:
            # An unsigned answer to a signed query: the server ignores TSIG on queries.
            raise _SigningRefusedError(describe(exc)) from exc
        except OSError as exc:
            # No TCP (a firewall that lets only UDP through).
            raise _SigningRefusedError(f"no TCP: {describe(exc)}") from exc
        except dns.exception.Timeout as exc:
            # TCP dropped on the way, or the server is busy: this query only.
            raise _SigningRefusedError(f"no answer over TCP: {describe(exc)}", lasting=False) from exc
        except dns.exception.DNSException as exc:
            # An answer whose signature does not verify (forged?): nothing to fall back on.
            raise DnsUpdateError(
                f"no answer from {HostPort(where, port)} for {name} {rdtype}: {describe(exc)}"
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
                f"no answer from {HostPort(where, port)} for {name} {rdtype}: {describe(exc)}"
            ) from exc
        return response
