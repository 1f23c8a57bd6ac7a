"""Settings of DNS switching (the ``[dns]`` table): which provider changes the MX records, with which credentials.

``provider = "rfc2136"`` sends RFC 2136 updates signed with TSIG to ``server``;
``provider = "powerdns"`` uses PowerDNS Authoritative's HTTP API (``[dns.powerdns]``);
``route53``, ``cloudflare`` and ``azure`` use those services' APIs (``[dns.route53]``,
``[dns.cloudflare]``, ``[dns.azure]``). Either way the result is verified by querying every
authoritative server directly.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from continuity.config.types import ListenAddress, parse_host_port

_MX = re.compile(r"^\d{1,5}\s+\S+$")


class TsigAlgorithm(StrEnum):
    """TSIG algorithms BIND and dnspython both support."""

    HMAC_SHA256 = "hmac-sha256"
    HMAC_SHA384 = "hmac-sha384"
    HMAC_SHA512 = "hmac-sha512"
    HMAC_SHA1 = "hmac-sha1"


class VerifySigning(StrEnum):
    """Whether the queries that read and verify the MX records are signed with the TSIG key."""

    # Signed, over TCP; a server that does not take the key is queried unsigned (UDP), with a warning.
    PREFER = "prefer"
    # Signed, over TCP; a server that does not take the key counts as not serving the new MX.
    REQUIRE = "require"
    # Unsigned UDP (TCP when truncated), as before.
    OFF = "off"


class DnsProviderName(StrEnum):
    """Where the MX records are changed."""

    RFC2136 = "rfc2136"
    POWERDNS = "powerdns"
    ROUTE53 = "route53"
    CLOUDFLARE = "cloudflare"
    AZURE = "azure"


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"'{value}' is not an http:// or https:// URL")
    return value.rstrip("/")


class PowerDnsSettings(BaseModel):
    """PowerDNS Authoritative's HTTP API (provider = "powerdns"): its address and API key."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        default="http://127.0.0.1:8081",
        description="Base URL of the PowerDNS webserver with the API (api=yes), without /api/v1.",
    )
    server_id: str = Field(default="localhost", description="The server id in the API's paths (always localhost).")
    api_key: SecretStr | None = Field(default=None, description="The API key (PowerDNS's api-key setting).")
    api_key_file: Path | None = Field(
        default=None, description="A file holding the API key (one line) instead of api_key."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @model_validator(mode="after")
    def _one_key_source(self) -> PowerDnsSettings:
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("set either api_key or api_key_file, not both")
        return self


class Route53Settings(BaseModel):
    """Amazon Route 53 (provider = "route53"): the hosted zone is found by name; credentials or AWS's chain."""

    model_config = ConfigDict(extra="forbid")

    access_key_id: str = Field(
        default="",
        description="AWS access key id; empty uses AWS's standard chain (environment, shared files, instance role).",
    )
    secret_access_key: SecretStr | None = Field(default=None, description="The secret access key of access_key_id.")
    credential_file: Path | None = Field(
        default=None, description="A file holding the secret access key (one line) instead of secret_access_key."
    )
    region: str = Field(default="us-east-1", description="AWS region for the API client (Route 53 is global).")
    endpoint_url: str = Field(default="", description="Another API endpoint (an emulator in tests); empty: AWS's.")
    insync_timeout: float = Field(
        default=120.0, gt=0, description="Seconds to wait for a change to be INSYNC on Route 53's name servers."
    )

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _http_url(value) if value else value

    @model_validator(mode="after")
    def _one_secret_source(self) -> Route53Settings:
        if self.secret_access_key is not None and self.credential_file is not None:
            raise ValueError("set either secret_access_key or credential_file, not both")
        if self.access_key_id and self.secret_access_key is None and self.credential_file is None:
            raise ValueError("access_key_id needs secret_access_key or credential_file")
        if not self.access_key_id and (self.secret_access_key is not None or self.credential_file is not None):
            raise ValueError("a secret access key needs its access_key_id")
        return self


class CloudflareSettings(BaseModel):
    """Cloudflare's API v4 (provider = "cloudflare"): an API token limited to DNS edit of the zone."""

    model_config = ConfigDict(extra="forbid")

    api_url: str = Field(default="https://api.cloudflare.com/client/v4", description="Base URL of the API v4.")
    api_token: SecretStr | None = Field(
        default=None, description="API token with Zone:DNS:Edit and Zone:Zone:Read on the zone."
    )
    credential_file: Path | None = Field(
        default=None, description="A file holding the API token (one line) instead of api_token."
    )

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @model_validator(mode="after")
    def _one_token_source(self) -> CloudflareSettings:
        if self.api_token is not None and self.credential_file is not None:
            raise ValueError("set either api_token or credential_file, not both")
        return self


class AzureDnsSettings(BaseModel):
    """Azure DNS (provider = "azure"): a service principal's client credentials and where the zone is."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(default="", description="Entra ID tenant (directory) id of the service principal.")
    client_id: str = Field(default="", description="Application (client) id of the service principal.")
    client_secret: SecretStr | None = Field(default=None, description="A client secret of the service principal.")
    credential_file: Path | None = Field(
        default=None, description="A file holding the client secret (one line) instead of client_secret."
    )
    subscription_id: str = Field(default="", description="Subscription that holds the DNS zone.")
    resource_group: str = Field(default="", description="Resource group that holds the DNS zone.")
    authority_url: str = Field(
        default="https://login.microsoftonline.com",
        description="Entra ID's token service; the token is asked at {authority_url}/{tenant_id}/oauth2/v2.0/token.",
    )
    management_url: str = Field(default="https://management.azure.com", description="Azure Resource Manager's URL.")

    @field_validator("authority_url", "management_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @model_validator(mode="after")
    def _one_secret_source(self) -> AzureDnsSettings:
        if self.client_secret is not None and self.credential_file is not None:
            raise ValueError("set either client_secret or credential_file, not both")
        return self


class DnsSettings(BaseModel):
    """Which provider changes the MX records, with which credentials, and what the MX records are on each side."""

    model_config = ConfigDict(extra="forbid")

    provider: DnsProviderName = Field(
        default=DnsProviderName.RFC2136,
        description="How the MX records are changed: rfc2136 (UPDATEs signed with TSIG), or the API of powerdns, "
        "route53, cloudflare or azure.",
    )
    server: ListenAddress = Field(
        default="127.0.0.1:53",
        description="The primary authoritative server (HOST:PORT): it takes the UPDATEs (rfc2136), and the zone's "
        "NS records and their addresses are read there for the verification (route53, cloudflare and azure list "
        "the NS names through their APIs; set one of those servers here).",
    )
    zones: dict[str, str] = Field(
        default_factory=dict,
        description="Zone of a protected domain that is not a zone apex, e.g. {'mail.example.com' = 'example.com.'}.",
    )
    primary_mx: list[str] = Field(
        default_factory=list,
        description="MX records that point at the primary, e.g. ['10 mail.example.com.']; expected in NORMAL.",
    )
    standby_mx: list[str] = Field(
        default_factory=list,
        description="MX records that point at the standby, e.g. ['10 standby.example.com.']; written on failover.",
    )
    ttl: int = Field(default=300, ge=1, description="TTL of the MX records written, in seconds.")
    max_ttl: int = Field(
        default=300, ge=1, description="'dns check' warns when the published MX TTL is higher than this."
    )
    tsig_key_name: str = Field(default="", description="Name of the TSIG key, as the DNS server knows it.")
    tsig_algorithm: TsigAlgorithm = Field(default=TsigAlgorithm.HMAC_SHA256, description="TSIG algorithm.")
    tsig_secret: SecretStr | None = Field(default=None, description="Base64 secret of the TSIG key.")
    tsig_key_file: Path | None = Field(
        default=None, description="A BIND key file (tsig-keygen output) instead of tsig_key_name and tsig_secret."
    )
    verify_port: int = Field(
        default=53, ge=1, le=65535, description="Port on which every authoritative server is queried to verify."
    )
    verify_timeout: float = Field(
        default=60.0, gt=0, description="Seconds to wait until every authoritative server serves the new MX."
    )
    verify_signing: VerifySigning = Field(
        default=VerifySigning.PREFER,
        description="Sign the queries that read and verify the MX (update server and every authoritative server) "
        "with the TSIG key, over TCP: prefer (unsigned with a warning where a server does not take the key), "
        "require, or off.",
    )
    attempts: int = Field(
        default=3, ge=1, description="UPDATE (or API write) attempts per switch, with backoff between them."
    )
    query_timeout: float = Field(default=3.0, gt=0, description="Seconds per DNS query, UPDATE or API request.")
    resolver: list[str] = Field(
        default_factory=list,
        description=(
            "Recursive DNS servers (HOST:PORT) used to find the addresses of name servers outside the zone "
            "(e.g. a DNS provider's); empty uses the system resolver (/etc/resolv.conf)."
        ),
    )
    powerdns: PowerDnsSettings = Field(default_factory=PowerDnsSettings, description="PowerDNS's HTTP API.")
    route53: Route53Settings = Field(default_factory=Route53Settings, description="Amazon Route 53.")
    cloudflare: CloudflareSettings = Field(default_factory=CloudflareSettings, description="Cloudflare's API.")
    azure: AzureDnsSettings = Field(default_factory=AzureDnsSettings, description="Azure DNS.")

    @field_validator("resolver")
    @classmethod
    def _resolvers_parse(cls, value: list[str]) -> list[str]:
        return [str(parse_host_port(item)) for item in value]

    @field_validator("primary_mx", "standby_mx")
    @classmethod
    def _mx_text(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _MX.match(item.strip()):
                raise ValueError(f"'{item}' is not an MX record such as '10 mail.example.com.'")
        return [" ".join(item.split()) for item in value]

    @model_validator(mode="after")
    def _key_source(self) -> DnsSettings:
        if self.tsig_key_file is not None and self.tsig_secret is not None:
            raise ValueError("set either tsig_key_file or tsig_secret, not both")
        return self

    @property
    def server_address(self) -> tuple[str, int]:
        """The update server as (host, port)."""
        parsed = parse_host_port(self.server)
        return parsed.host, parsed.port
