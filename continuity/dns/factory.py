"""The one place where [dns] provider picks the provider: builds it with its reader and verifier."""

from __future__ import annotations

from continuity.config.dns import DnsProviderName, DnsSettings, VerifySigning
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


def build_mx_updater(settings: DnsSettings) -> MxUpdater:
    """The provider [dns] provider names, with the shared reader and verifier; ConfigError when unusable."""
    provider: DnsProvider
    if settings.provider is DnsProviderName.POWERDNS:
        reader = DnsReader(settings, _optional_tsig(settings))
        provider = PowerDnsProvider(settings)
    elif settings.provider is DnsProviderName.ROUTE53:
        # A DNS service's name servers take no TSIG key of ours; the provider lists them.
        reader = DnsReader(settings, _optional_tsig(settings))
        route53 = Route53Provider(settings)
        return MxUpdater(route53, MxVerifier(settings, reader, route53.name_servers), reader)
    elif settings.provider is DnsProviderName.CLOUDFLARE:
        reader = DnsReader(settings, _optional_tsig(settings))
        cloudflare = CloudflareProvider(settings)
        return MxUpdater(cloudflare, MxVerifier(settings, reader, cloudflare.name_servers), reader)
    else:
        credentials = TsigCredentials.from_settings(settings)
        reader = DnsReader(settings, credentials)
        provider = Rfc2136Provider(settings, credentials, reader)
    return MxUpdater(provider, MxVerifier(settings, reader), reader)
