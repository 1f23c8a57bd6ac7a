"""An in-process resolver fed from test-suite zone data (the RFC 7208 SPF suite's YAML).

The suite's zone data holds records no real DNS server would serve (time-outs, invalid
UTF-8, control characters, empty TXT strings), so, as the suite's own harness does, its
answers come from a dictionary; the code under test is the appliance's own glue
(continuity.filters.auth.check_spf over a resolver's lookup()).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from continuity.adapters.dns_cache import DnsTempError, Record


def _rdata(entries: list[Any], name: str) -> list[tuple[str, Any]]:
    """The suite's records of one name as (type, value); SPF records also serve as TXT when no TXT is given."""
    records: list[tuple[str, Any]] = []
    generated: list[tuple[str, Any]] = []
    has_txt = any(isinstance(entry, dict) and "TXT" in entry for entry in entries)
    for entry in entries:
        if entry == "TIMEOUT":
            records.append(("TIMEOUT", None))
            continue
        for rtype, value in entry.items():
            if rtype in ("TXT", "SPF") and isinstance(value, str):
                value = [value]
            if rtype == "SPF" and not has_txt:
                generated.append(("TXT", value))
            if value != ["NONE"]:
                records.append((rtype, value))
    return records + generated


class ZoneResolver:
    """lookup(name, type) answered from the suite's zone data."""

    def __init__(self, zonedata: dict[str, list[Any]]) -> None:
        self._zone = {name.lower(): _rdata(entries, name) for name, entries in zonedata.items()}

    def lookup(self, name: str, rtype: str, depth: int = 0) -> tuple[Record, ...]:
        key = name.lower().rstrip(".")
        entries = self._zone.get(key)
        if entries is None:
            if key.startswith("error."):
                raise DnsTempError("DNS timeout")
            return ()
        if any(kind == "TIMEOUT" for kind, _ in entries) and not any(kind == rtype for kind, _ in entries):
            raise DnsTempError("DNS timeout")
        found: list[Record] = []
        for kind, value in entries:
            if kind == rtype:
                if value == "TIMEOUT":
                    raise DnsTempError("DNS timeout")
                found.append(Record(key, kind, self._value(kind, value)))
            elif kind == "CNAME" and depth < 5:
                found.extend(Record(key, r.rtype, r.value) for r in self.lookup(str(value), rtype, depth + 1))
        return tuple(found)

    @staticmethod
    def _value(kind: str, value: Any) -> object:
        if kind in ("TXT", "SPF"):
            return tuple(part.encode("utf-8", "surrogateescape") for part in value)
        if kind == "MX":
            return (int(value[0]), str(value[1]))
        if kind in ("A", "AAAA"):
            return str(ipaddress.ip_address(value))
        return str(value)
