"""Settings of the directory sync (the ``[directory]`` table): Active Directory or Entra ID into the mailboxes."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from continuity.directory.core.records import SourceKind


class LdapSecurity(StrEnum):
    """How the LDAP connection is protected."""

    LDAPS = "ldaps"
    STARTTLS = "starttls"
    PLAIN = "plain"


class AdIncremental(StrEnum):
    """How an Active Directory run finds what changed."""

    AUTO = "auto"
    DIRSYNC = "dirsync"
    USN = "usn"
    FULL = "full"


class ActiveDirectorySettings(BaseModel):
    """Active Directory over LDAPS or StartTLS (ldap3)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="", description="The domain controller, e.g. ldaps://dc1.corp.example.com:636.")
    security: LdapSecurity = Field(
        default=LdapSecurity.LDAPS,
        description="ldaps, starttls, or plain (unencrypted: only with allow_plain = true, and warned about).",
    )
    allow_plain: bool = Field(default=False, description="Allow security = plain (the password crosses in clear).")
    ca_file: Path | None = Field(
        default=None, description="CA certificate(s) that signed the DC's certificate (default: the system's)."
    )
    bind_dn: str = Field(default="", description="The service account, e.g. CN=svc-continuity,OU=Service,DC=corp,...")
    bind_password: SecretStr | None = Field(default=None, description="The service account's password.")
    bind_credential_file: Path | None = Field(
        default=None, description="A file holding the service account's password (instead of bind_password)."
    )
    base_dn: str = Field(default="", description="Where the mailboxes are searched, e.g. DC=corp,DC=example,DC=com.")
    user_filter: str = Field(
        default="",
        description=(
            "LDAP filter of the mailboxes; empty: users, shared and resource mailboxes with mail or an "
            "SMTP proxyAddresses value, computers left out."
        ),
    )
    group_base_dn: str = Field(
        default="", description="Only groups under this DN count as failover groups (empty: every group)."
    )
    mobile_attribute: str = Field(default="mobile", description="Attribute with the out-of-band phone number.")
    alternate_email_attribute: str = Field(
        default="otherMailbox", description="Attribute with the out-of-band (outside) e-mail address."
    )
    incremental: AdIncremental = Field(
        default=AdIncremental.AUTO,
        description="auto: DirSync when the account may replicate, else uSNChanged; or force one.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds to connect and for each LDAP operation.")

    @model_validator(mode="after")
    def _consistent(self) -> ActiveDirectorySettings:
        if self.bind_password is not None and self.bind_credential_file is not None:
            raise ValueError("set either bind_password or bind_credential_file, not both")
        if self.security is LdapSecurity.PLAIN and not self.allow_plain:
            raise ValueError("security = plain sends the password in clear; set allow_plain = true to allow it")
        return self


class EntraSettings(BaseModel):
    """Entra ID over Microsoft Graph with an app registration's client credentials (msal)."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(default="", description="The directory (tenant) id.")
    client_id: str = Field(default="", description="The application (client) id of the app registration.")
    client_secret: SecretStr | None = Field(default=None, description="A client secret of the app registration.")
    credential_file: Path | None = Field(default=None, description="A file holding the client secret.")
    certificate_file: Path | None = Field(
        default=None, description="PEM file with the app's private key and certificate (instead of a secret)."
    )
    authority_url: str = Field(
        default="https://login.microsoftonline.com", description="The token authority (the tenant id is appended)."
    )
    graph_url: str = Field(default="https://graph.microsoft.com", description="Microsoft Graph's base URL.")
    ca_file: Path | None = Field(
        default=None, description="CA certificate(s) for the authority and Graph (default: the system's)."
    )
    max_retry_after: float = Field(
        default=120.0, gt=0, description="Longest Retry-After (seconds) honoured on 429/503 before giving up."
    )
    max_retries: int = Field(default=5, ge=0, description="Retries of one throttled Graph request.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds for each Graph request.")

    @model_validator(mode="after")
    def _one_credential(self) -> EntraSettings:
        given = [self.client_secret, self.credential_file, self.certificate_file]
        if sum(item is not None for item in given) > 1:
            raise ValueError("set one of client_secret, credential_file or certificate_file")
        return self


class DirectorySettings(BaseModel):
    """Where the standby mailboxes come from and how often they are synchronised."""

    model_config = ConfigDict(extra="forbid")

    source: SourceKind = Field(
        default=SourceKind.NONE, description="none (mailboxes from CSV and the CLI only), ad or entra."
    )
    interval: float = Field(default=600.0, ge=30, description="Seconds between syncs inside serve.")
    max_removals: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Most mailboxes one sync may disable; more waits for 'directory sync --allow-removals'. Not set: "
            "5% of the synchronised mailboxes or 50, whichever is smaller, and at least 1."
        ),
    )
    ad: ActiveDirectorySettings = Field(default_factory=ActiveDirectorySettings, description="Active Directory.")
    entra: EntraSettings = Field(default_factory=EntraSettings, description="Entra ID (Microsoft Graph).")

    @model_validator(mode="after")
    def _source_configured(self) -> DirectorySettings:
        if self.source is SourceKind.AD and not (self.ad.url and self.ad.base_dn):
            raise ValueError("source = ad needs ad.url and ad.base_dn")
        if self.source is SourceKind.ENTRA and not (self.entra.tenant_id and self.entra.client_id):
            raise ValueError("source = entra needs entra.tenant_id and entra.client_id")
        return self
