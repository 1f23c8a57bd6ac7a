"""Value types used by the settings model (listen addresses, byte sizes)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, NamedTuple

from pydantic import AfterValidator


class HostPort(NamedTuple):
    """A ``host:port`` pair to listen on or connect to."""

    host: str
    port: int

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parse_host_port(value: object) -> HostPort:
    """Parse ``"127.0.0.1:2525"``, ``"[::1]:2525"`` or ``"mail.example.com:25"``."""
    if isinstance(value, HostPort):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a string HOST:PORT such as 127.0.0.1:2525 or [::1]:2525")
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"'{value}' is not HOST:PORT; write IPv6 addresses as [::1]:2525")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"'{host}' is not an IPv6 address") from exc
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"'{value}' is not HOST:PORT such as 127.0.0.1:2525")
        if ":" in host:
            raise ValueError(f"'{value}' is ambiguous; write IPv6 addresses as [::1]:2525")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port '{port_text}' in '{value}' is not a number from 0 to 65535")
    return HostPort(host, int(port_text))


def _canonical_host_port(value: str) -> str:
    return str(parse_host_port(value))


# Kept as a plain string in the model (so environment variables need no JSON);
# parse it with parse_host_port() where it is used.
ListenAddress = Annotated[str, AfterValidator(_canonical_host_port)]
