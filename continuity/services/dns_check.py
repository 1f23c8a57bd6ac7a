"""``continuity dns check``: is DNS switching ready, ahead of an outage?

Checks, for each protected domain: the TSIG key may update the zone (a test TXT record
is added and removed), the MX TTL on every authoritative server is low enough for a
quick switch, the current MX is one of the two configured sides; and that every
standby MX host resolves.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception

from continuity.adapters.dns_tsig import TsigCredentials
from continuity.adapters.dns_update import DnsUpdateError, MxUpdater
from continuity.config.settings import Settings
from continuity.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check."""

    name: str
    ok: bool
    detail: str


async def _resolvable(updater: MxUpdater, settings: Settings, host: str) -> Check:
    name = f"standby host {host} resolves"
    server, port = settings.dns.server_address
    for rdtype in ("A", "AAAA"):
        try:
            response = await updater.query(host, rdtype, server, port)
        except DnsUpdateError:
            continue
        addresses = [str(rdata) for rrset in response.answer for rdata in rrset]
        if addresses:
            return Check(name, True, f"{', '.join(addresses)} (on {server}:{port})")
    try:
        answer = await dns.asyncresolver.resolve(host, "A", lifetime=settings.dns.query_timeout)
    except dns.exception.DNSException as exc:
        return Check(name, False, f"no address for {host}: {type(exc).__name__}")
    return Check(name, True, ", ".join(str(rdata) for rdata in answer) + " (system resolver)")


async def check_dns(settings: Settings) -> list[Check]:
    """Run every readiness check; never raises for a failed check."""
    dns_settings = settings.dns
    checks: list[Check] = []
    try:
        credentials = TsigCredentials.from_settings(dns_settings)
    except ConfigError as exc:
        return [Check("TSIG key configured", False, str(exc))]
    checks.append(Check("TSIG key configured", True, f"{credentials.name} ({credentials.algorithm})"))
    if not dns_settings.primary_mx or not dns_settings.standby_mx:
        checks.append(Check("MX of both sides configured", False, "set [dns] primary_mx and standby_mx"))
        return checks
    updater = MxUpdater(dns_settings, credentials)
    primary = {" ".join(item.lower().split()) for item in dns_settings.primary_mx}
    standby = {" ".join(item.lower().split()) for item in dns_settings.standby_mx}
    for domain in settings.domains:
        try:
            await updater.test_key(domain)
            checks.append(Check(f"{domain}: key may update the zone", True, "test TXT record added and removed"))
        except DnsUpdateError as exc:
            checks.append(Check(f"{domain}: key may update the zone", False, str(exc)))
        try:
            current = set(await updater.current_mx(domain))
            side = "primary" if current == primary else "standby" if current == standby else ""
            checks.append(
                Check(
                    f"{domain}: MX is a configured side",
                    bool(side),
                    f"points at the {side}: {sorted(current)}" if side else f"unexpected MX {sorted(current)}",
                )
            )
            for server in await updater.authoritative_servers(domain):
                ttl = await updater.mx_ttl(domain, server, dns_settings.verify_port)
                ok = ttl is not None and ttl <= dns_settings.max_ttl
                checks.append(
                    Check(
                        f"{domain}: MX TTL on {server}",
                        ok,
                        f"{ttl}s (at most {dns_settings.max_ttl}s wanted)" if ttl is not None else "no MX served",
                    )
                )
        except DnsUpdateError as exc:
            checks.append(Check(f"{domain}: MX readable on every authoritative server", False, str(exc)))
    for host in sorted({item.split()[1] for item in dns_settings.standby_mx}):
        checks.append(await _resolvable(updater, settings, host))
    return checks
