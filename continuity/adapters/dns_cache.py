"""DNS lookups for mail authentication: dnspython with a timeout and a TTL-bounded answer cache.

The SPF (pyspf), DKIM (dkimpy) and DMARC (authheaders) libraries are synchronous and
call a lookup function; the filter pipeline runs them in worker threads, so this
resolver is synchronous and thread-safe. Answers (including "no such name") are cached
for their TTL, clamped to [min_ttl, max_ttl], so a burst of mail from one sender costs
one set of lookups. A timeout or a server failure raises :class:`DnsTempError` and is
not cached.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from continuity.config.types import HostPort

_FAILURE_TTL = 5.0


class DnsTempError(Exception):
    """The lookup could not be answered now (timeout, SERVFAIL, no server)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One answer record: its owner name, type and value.

    value is text for names (CNAME, MX exchange, PTR), the address for A/AAAA, a tuple
    of byte strings for TXT, and (preference, exchange) for MX.
    """

    name: str
    rtype: str
    value: object


def _value(rdata: object, rtype: str) -> object:
    if rtype in ("A", "AAAA"):
        return str(rdata.address)  # type: ignore[attr-defined]
    if rtype in ("TXT", "SPF"):
        return tuple(rdata.strings)  # type: ignore[attr-defined]
    if rtype == "MX":
        return (int(rdata.preference), rdata.exchange.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
    if rtype in ("CNAME", "PTR"):
        return rdata.target.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
    return rdata.to_text()  # type: ignore[attr-defined]


class CachingResolver:
    """Synchronous, thread-safe lookups through the configured (or system) servers, cached."""

    def __init__(
        self,
        nameservers: Sequence[HostPort] = (),
        *,
        timeout: float = 5.0,
        cache_size: int = 20_000,
        min_ttl: int = 30,
        max_ttl: int = 3600,
    ) -> None:
        self._resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = [server.host for server in nameservers]
            self._resolver.port = nameservers[0].port
        self._resolver.lifetime = timeout
        self._resolver.timeout = min(timeout, 2.0)
        self.timeout = timeout
        self._cache: OrderedDict[tuple[str, str], tuple[float, tuple[Record, ...]]] = OrderedDict()
        self._cache_size = cache_size
        self._min_ttl = min_ttl
        self._max_ttl = max_ttl
        self._failures: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()
        self.queries = 0
        self.hits = 0

    def lookup(self, name: str, rtype: str) -> tuple[Record, ...]:
        """Answer records for name (CNAME chain records included); () for no such name or no data."""
        key = (name.lower().rstrip("."), rtype.upper())
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                self._cache.move_to_end(key)
                self.hits += 1
                return cached[1]
            failed = self._failures.get(key)
            if failed is not None and failed[0] > now:
                self.hits += 1
                raise DnsTempError(failed[1])
        try:
            records, ttl = self._query(key[0], key[1])
        except DnsTempError as exc:
            # RFC 2308 7.1: a server failure may be cached briefly (here 5 s), so a burst
            # of mail from one domain does not wait for a failing server again and again.
            with self._lock:
                self._failures[key] = (now + _FAILURE_TTL, str(exc))
                if len(self._failures) > 10_000:
                    self._failures.clear()
            raise
        if self._cache_size:
            with self._lock:
                self._cache[key] = (now + min(max(ttl, self._min_ttl), self._max_ttl), records)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return records

    def _query(self, name: str, rtype: str) -> tuple[tuple[Record, ...], int]:
        self.queries += 1
        try:
            answer = self._resolver.resolve(name, rtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return (), self._min_ttl
        except (dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.LifetimeTimeout) as exc:
            raise DnsTempError(f"DNS lookup of {name} {rtype} failed: {exc}") from exc
        except (dns.exception.DNSException, ValueError) as exc:
            # A name that cannot be queried (empty or over-long label) has no records.
            if isinstance(exc, dns.name.EmptyLabel | dns.name.LabelTooLong | dns.name.NameTooLong | ValueError):
                return (), self._min_ttl
            raise DnsTempError(f"DNS lookup of {name} {rtype} failed: {exc}") from exc
        response = answer.response
        records: list[Record] = []
        ttl = self._max_ttl
        if isinstance(response, dns.message.Message):
            for rrset in response.answer:
                rrset_type = dns.rdatatype.to_text(rrset.rdtype)
                ttl = min(ttl, int(rrset.ttl))
                owner = rrset.name.to_text(omit_final_dot=True).lower()
                records.extend(Record(owner, rrset_type, _value(rdata, rrset_type)) for rdata in rrset)
        if not records:
            ttl = self._min_ttl
        return tuple(records), ttl

    def txt(self, name: str) -> list[bytes]:
        """TXT records of name, each as the concatenation of its strings."""
        return [b"".join(record.value) for record in self.lookup(name, "TXT") if record.rtype == "TXT"]  # type: ignore[arg-type]
