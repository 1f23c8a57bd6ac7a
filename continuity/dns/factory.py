"""The one place where [dns] provider picks the provider: builds it with its reader and verifier."""

from __future__ import annotations

from continuity.config.dns import DnsProviderName, DnsSettings, VerifySigning
from continuity.dns.azure import AzureDnsProvider
from continuity.dns.cloudflare import CloudflareProvider
from continuity.dns.powerdns import PowerDnsProvider
from continuity.dns.provider import DnsProvider, MxUpdater, MxVerifier
from continuity.dns.queries import DnsReader
from continuity.dns.rfc2136 import Rfc2136Provider
from continuity.dns.route53 import Route53Provider
from continuity.dns.tsig import TsigCredentials
from continuity.errors import ConfigError


def _optional_tsig(settings: DnsSettings) -> TsigCredentials | None:
    """The TSIG key when one is configured: an API provider's reads are signed with it where servers take it."""
    if settings.tsig_key_file is None and not (settings.tsig_key_name and settings.tsig_secret is not None):
        if settings.verify_signing is VerifySigning.REQUIRE:
            raise ConfigError("dns.verify_signing = 'require' needs a TSIG key (tsig_key_file or tsig_key_name).")
        return None
    return TsigCredentials.from_settings(settings)


def _service(settings: DnsSettings) -> Route53Provider | CloudflareProvider | AzureDnsProvider | None:
    """The provider of a DNS service that lists its own name servers, or None for rfc2136 and powerdns."""
    if settings.provider is DnsProviderName.ROUTE53:
        return Route53Provider(settings)
    if settings.provider is DnsProviderName.CLOUDFLARE:
        return CloudflareProvider(settings)
    if settings.provider is DnsProviderName.AZURE:
        return AzureDnsProvider(settings)
    return None


def build_mx_updater(settings: DnsSettings) -> MxUpdater:
    """The provider [dns] provider names, with the shared reader and verifier; ConfigError when unusable."""
    service = _service(settings)
    if service is not None:
        # A DNS service's name servers take no TSIG key of ours, and the service lists them.
        reader = DnsReader(settings, _optional_tsig(settings))
        return MxUpdater(service, MxVerifier(settings, reader, service.name_servers), reader)
    provider: DnsProvider
    if settings.provider is DnsProviderName.POWERDNS:
        reader = DnsReader(settings, _optional_tsig(settings))
        provider = PowerDnsProvider(settings)
    else:
        credentials = TsigCredentials.from_settings(settings)
        reader = DnsReader(settings, credentials)
        provider = Rfc2136Provider(settings, credentials, reader)
    return MxUpdater(provider, MxVerifier(settings, reader), reader)
