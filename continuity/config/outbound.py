"""Settings of outbound delivery (the ``[outbound]`` table): smart host or direct MX delivery."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from continuity.config.types import HostPort, parse_host_port


class TlsPolicy(StrEnum):
    """How outbound SMTP uses TLS."""

    # STARTTLS when the server offers it, without certificate checks (RFC 7435), else plaintext.
    OPPORTUNISTIC = "opportunistic"
    # STARTTLS must succeed with a certificate valid for the host name, or delivery is deferred.
    REQUIRED = "required"
    # Never use TLS (test set-ups only).
    NONE = "none"


class OutboundSettings(BaseModel):
    """Where and how the appliance delivers mail it sends (webmail, notifications, relay)."""

    model_config = ConfigDict(extra="forbid")

    smart_host: str = Field(
        default="",
        description="HOST:PORT of a relay for all outbound mail; empty delivers directly to each domain's MX.",
    )
    tls: TlsPolicy = Field(default=TlsPolicy.OPPORTUNISTIC, description="TLS policy for outbound SMTP.")
    ca_file: Path | None = Field(
        default=None, description="PEM bundle to verify servers with when tls = required (default: system CAs)."
    )
    username: str = Field(
        default="",
        description='SMTP AUTH user for the smart host (empty: no AUTH); needs tls = "required".',
    )
    password: SecretStr | None = Field(default=None, description="SMTP AUTH password for the smart host.")
    helo_name: str = Field(default="", description="Name sent in EHLO (default: smtp.hostname).")
    timeout: float = Field(default=60.0, gt=0, description="Seconds to wait for each SMTP step before deferring.")
    resolver: list[str] = Field(
        default_factory=list,
        description="DNS servers (HOST:PORT) for MX lookups; empty uses the system resolver (/etc/resolv.conf).",
    )
    mx_port: int = Field(
        default=25, ge=1, le=65535, description="Port of the MX hosts (25; other values only for test set-ups)."
    )

    @field_validator("smart_host")
    @classmethod
    def _smart_host_parses(cls, value: str) -> str:
        return str(parse_host_port(value)) if value.strip() else ""

    @field_validator("resolver")
    @classmethod
    def _resolvers_parse(cls, value: list[str]) -> list[str]:
        return [str(parse_host_port(item)) for item in value]

    @model_validator(mode="after")
    def _auth_pair(self) -> OutboundSettings:
        if bool(self.username) != (self.password is not None):
            raise ValueError("username and password must be set together")
        if self.username and not self.smart_host:
            raise ValueError("username/password are for the smart host; set smart_host too")
        if self.username and self.tls is not TlsPolicy.REQUIRED:
            raise ValueError(
                f'username/password need tls = "required" (STARTTLS with a verified certificate), not '
                f'"{self.tls.value}": otherwise anyone between the appliance and the smart host, or who strips '
                "STARTTLS, gets the password"
            )
        return self

    @property
    def smart_host_address(self) -> HostPort | None:
        """The parsed smart host, or None for direct MX delivery."""
        return parse_host_port(self.smart_host) if self.smart_host else None

    @property
    def resolver_addresses(self) -> list[HostPort]:
        """The parsed resolver addresses."""
        return [parse_host_port(item) for item in self.resolver]
