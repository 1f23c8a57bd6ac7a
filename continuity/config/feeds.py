"""Settings of the feeds that let the appliance see the primary's mail in normal times (the ``[feeds]`` table).

The relay listener is the primary's outbound smart host: it takes mail only from the
primary's networks (or a client that authenticates with the configured secret), inspects
it and relays it to the Internet. Journal reports sent to the journal address (through the
relay listener) are unwrapped. Every feed fills the standby mailboxes with a rolling window
of recent mail; docs/signals.md explains each setting.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from continuity.config.types import HostPort, parse_host_port
from continuity.core.addresses import normalize_address

# Shortest relay_password accepted: the relay listener is reachable by whoever can reach its port.
MIN_RELAY_PASSWORD = 16


class FeedSettings(BaseModel):
    """The relay listener (smart host of the primary), the journal address and the mailbox window."""

    model_config = ConfigDict(extra="forbid")

    relay_listen: str = Field(
        default="",
        description="HOST:PORT of the relay listener the primary uses as its smart host; empty: no relay listener.",
    )
    relay_networks: list[str] = Field(
        default_factory=list,
        description="Client networks allowed to relay (the primary's addresses); nobody else may relay.",
    )
    relay_username: str = Field(
        default="", description="SMTP AUTH user that may relay from any address (empty: networks only)."
    )
    relay_password: SecretStr | None = Field(
        default=None,
        description=f"SMTP AUTH password of relay_username, at least {MIN_RELAY_PASSWORD} characters "
        "(e.g. `openssl rand -base64 24`).",
    )
    relay_auth_require_tls: bool = Field(
        default=True, description="Offer AUTH only after STARTTLS (needs [smtp] tls_cert and tls_key)."
    )
    relay_next_hop: str = Field(
        default="",
        description="HOST:PORT that relayed mail goes to; empty uses [outbound] (its smart host, or each domain's MX).",
    )
    relay_max_sessions: int = Field(
        default=20,
        ge=1,
        description="Concurrent relay sessions per client address (Exchange opens at most 20 per next hop).",
    )
    relay_auth_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed AUTH attempts per client address (IPv6: per /64), across sessions, within "
        "relay_auth_lockout before its further attempts are refused unchecked.",
    )
    relay_auth_lockout: float = Field(
        default=900.0,
        gt=0,
        description="Seconds over which failed AUTH attempts count; a locked-out address may try again when its "
        "oldest counted failure is this old.",
    )
    journal_address: str = Field(
        default="",
        description="Address the primary sends journal reports to (through the relay listener); empty: no journal.",
    )
    window_days: float = Field(
        default=30.0, gt=0, description="Days mirrored and gateway-relayed copies stay in the standby mailboxes."
    )
    prune_interval: float = Field(default=3600.0, gt=0, description="Seconds between prunes of the mailbox window.")

    @field_validator("relay_listen", "relay_next_hop")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return str(parse_host_port(value)) if value.strip() else ""

    @field_validator("relay_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError as exc:
                raise ValueError(f"'{item}' is not an IP network such as 192.0.2.10/32") from exc
        return networks

    @field_validator("journal_address")
    @classmethod
    def _journal(cls, value: str) -> str:
        return normalize_address(value) if value.strip() else ""

    @model_validator(mode="after")
    def _relay_needs_clients(self) -> FeedSettings:
        if bool(self.relay_username) != (self.relay_password is not None):
            raise ValueError("relay_username and relay_password must be set together")
        if self.relay_password is not None and len(self.relay_password.get_secret_value()) < MIN_RELAY_PASSWORD:
            raise ValueError(
                f"relay_password must be at least {MIN_RELAY_PASSWORD} characters: anyone who guesses it may relay "
                "mail through the appliance (e.g. `openssl rand -base64 24`)"
            )
        if self.relay_listen and not self.relay_networks and not self.relay_username:
            raise ValueError("relay_listen needs relay_networks or relay_username: nobody could relay")
        if self.journal_address and not self.relay_listen:
            raise ValueError("journal_address needs relay_listen: journal reports arrive on the relay listener")
        return self

    @property
    def relay_address(self) -> HostPort | None:
        """The parsed relay listen address, or None."""
        return parse_host_port(self.relay_listen) if self.relay_listen else None

    @property
    def next_hop_address(self) -> HostPort | None:
        """The parsed next hop, or None for the [outbound] path."""
        return parse_host_port(self.relay_next_hop) if self.relay_next_hop else None
