"""``continuity dns check``: is DNS switching ready, ahead of an outage?

Checks, for each protected domain and whichever provider ``[dns] provider`` names: the
credentials are valid and reach the zone, they may change it (a test TXT record
``_continuity-check.<zone>`` is added and removed), the current MX is one of the two
configured sides, and the MX TTL on every authoritative server (queried directly) is low
enough for a quick switch; and that every standby MX host resolves.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception

from continuity.config.dns import DnsProviderName
from continuity.config.settings import Settings
from continuity.dns.errors import DnsUpdateError, canonical_mx
from continuity.dns.factory import build_mx_updater
from continuity.dns.provider import MxUpdater
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
            response = await updater.reader.query(host, rdtype, server, port)
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


async def _domain_checks(updater: MxUpdater, settings: Settings, domain: str) -> list[Check]:
    dns_settings = settings.dns
    provider = updater.provider
    checks: list[Check] = []
    try:
        checks.append(Check(f"{domain}: credentials valid, zone found", True, await provider.access(domain)))
    except DnsUpdateError as exc:
        checks.append(Check(f"{domain}: credentials valid, zone found", False, str(exc)))
    if checks[-1].ok:
        # Without access to the zone, these would only repeat the error above.
        try:
            await provider.test_change(domain)
            checks.append(Check(f"{domain}: key may update the zone", True, "test TXT record added and removed"))
        except DnsUpdateError as exc:
            checks.append(Check(f"{domain}: key may update the zone", False, str(exc)))
        try:
            checks.append(_side_check(domain, await provider.current_mx(domain), settings))
        except DnsUpdateError as exc:
            checks.append(Check(f"{domain}: MX is a configured side", False, str(exc)))
    # Read directly on every authoritative server, whatever the provider's credentials.
    try:
        for server, ttl in (await updater.verifier.mx_ttls(domain)).items():
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
    return checks


def _side_check(domain: str, current: tuple[str, ...], settings: Settings) -> Check:
    name = f"{domain}: MX is a configured side"
    if canonical_mx(current) == canonical_mx(settings.dns.primary_mx):
        return Check(name, True, f"points at the primary: {sorted(current)}")
    if canonical_mx(current) == canonical_mx(settings.dns.standby_mx):
        return Check(name, True, f"points at the standby: {sorted(current)}")
    return Check(name, False, f"unexpected MX {sorted(current)}")


async def check_dns(settings: Settings) -> list[Check]:
    """Run every readiness check; never raises for a failed check."""
    dns_settings = settings.dns
    configured = f"{dns_settings.provider.value} provider configured"
    try:
        updater = build_mx_updater(dns_settings)
    except ConfigError as exc:
        return [Check(configured, False, str(exc))]
    checks = [Check(configured, True, _credentials_text(settings))]
    if not dns_settings.primary_mx or not dns_settings.standby_mx:
        checks.append(Check("MX of both sides configured", False, "set [dns] primary_mx and standby_mx"))
        return checks
    for domain in settings.domains:
        checks += await _domain_checks(updater, settings, domain)
    for host in sorted({item.split()[1] for item in dns_settings.standby_mx}):
        checks.append(await _resolvable(updater, settings, host))
    return checks


def _credentials_text(settings: Settings) -> str:
    dns_settings = settings.dns
    if dns_settings.provider is DnsProviderName.POWERDNS:
        return f"API {dns_settings.powerdns.url}"
    if dns_settings.provider is DnsProviderName.ROUTE53:
        route53 = dns_settings.route53
        who = f"access key {route53.access_key_id}" if route53.access_key_id else "AWS's standard credential chain"
        return f"API {route53.endpoint_url or 'of AWS'}, {who}"
    if dns_settings.provider is DnsProviderName.CLOUDFLARE:
        return f"API {dns_settings.cloudflare.api_url}"
    if dns_settings.provider is DnsProviderName.AZURE:
        azure = dns_settings.azure
        return f"API {azure.management_url}, client {azure.client_id} of tenant {azure.tenant_id}"
    if dns_settings.tsig_key_file is not None:
        return f"TSIG key from {dns_settings.tsig_key_file}"
    return f"TSIG key '{dns_settings.tsig_key_name}' ({dns_settings.tsig_algorithm.value})"
