"""Settings of the inbound SMTP listener (the ``[smtp]`` table)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from continuity.config.types import HostPort, ListenAddress, parse_host_port
from continuity.core.content_checks import ContentLimits


class SmtpSettings(BaseModel):
    """Inbound SMTP: where it listens and the limits it enforces (Postfix defaults where they exist)."""

    model_config = ConfigDict(extra="forbid")

    listen: ListenAddress = Field(
        default="127.0.0.1:2525",
        description="Address and port of the SMTP listener. Use 0.0.0.0:25 or [::]:25 in production.",
    )
    hostname: str = Field(
        default_factory=socket.getfqdn,
        json_schema_extra={"default_doc": "this host's FQDN"},
        description="Name in the 220 banner, the EHLO reply and Received headers (default: the FQDN).",
    )
    max_message_size: int = Field(
        default=52_428_800,
        ge=1024,
        description="Largest message accepted, in bytes; advertised as SIZE and enforced with 552.",
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate chain; STARTTLS is offered when set (with tls_key)."
    )
    tls_key: Path | None = Field(default=None, description="PEM private key for tls_cert.")
    max_recipients: int = Field(
        default=1000, ge=1, description="Recipients per message (Postfix smtpd_recipient_limit); 452 past it."
    )
    max_header_size: int = Field(
        default=102_400, ge=1024, description="Bytes of message header (Postfix header_size_limit); 552 past it."
    )
    max_mime_depth: int = Field(
        default=100, ge=1, description="MIME nesting depth (Postfix mime_nesting_limit); 554 past it."
    )
    max_mime_parts: int = Field(
        default=1000, ge=1, description="MIME parts in one message, all levels together; 552 past it."
    )
    max_part_header_size: int = Field(
        default=102_400, ge=1024, description="Bytes of the header section of any one MIME part; 552 past it."
    )
    max_total_header_size: int = Field(
        default=1_048_576, ge=1024, description="Bytes of all header sections of a message together; 552 past it."
    )
    max_header_parameters: int = Field(
        default=64, ge=1, description="Parameters (`;`) in one Content-* header field; 552 past it."
    )
    max_part_size: int = Field(
        default=52_428_800,
        ge=1024,
        description="Bytes of one MIME part's body (its decoded size is at most this); 552 past it.",
    )
    max_line_length: int = Field(
        default=8192,
        ge=1001,
        description="Longest line in DATA, in bytes. RFC 5321 says 1000; real senders exceed it.",
    )
    max_errors: int = Field(
        default=20,
        ge=1,
        description="Error replies per session before 421 and disconnect (Postfix smtpd_hard_error_limit).",
    )
    max_sessions_per_ip: int = Field(
        default=50,
        ge=1,
        description="Concurrent sessions per client IP (Postfix smtpd_client_connection_count_limit); 421 past it.",
    )
    max_messages_per_ip_per_minute: int = Field(
        default=1200,
        ge=0,
        description="Messages one client IP may send per minute, 0 for no limit; 451 past it.",
    )
    limit_exempt_networks: list[str] = Field(
        default_factory=list,
        description="Networks exempt from the per-IP limits, e.g. the primary's own addresses.",
    )
    session_timeout: float = Field(
        default=300.0, gt=0, description="Seconds a session may stay idle before it is closed (RFC 5321)."
    )
    shutdown_grace: float = Field(
        default=30.0,
        ge=0,
        description="Seconds to let in-flight transactions finish on SIGTERM before closing them.",
    )

    @field_validator("limit_exempt_networks")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"'{item}' is not an IP network such as 192.0.2.0/24") from exc
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> SmtpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        return self

    @property
    def listen_address(self) -> HostPort:
        """The parsed listen address."""
        return parse_host_port(self.listen)

    @property
    def content_limits(self) -> ContentLimits:
        """The limits the content checks apply to every message (continuity.core.content_checks)."""
        return ContentLimits(
            self.max_header_size,
            self.max_mime_depth,
            self.max_mime_parts,
            self.max_part_header_size,
            self.max_total_header_size,
            self.max_header_parameters,
            self.max_part_size,
        )
