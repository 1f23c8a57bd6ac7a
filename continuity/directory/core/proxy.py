"""Reading Exchange's proxyAddresses: "SMTP:" is the primary address, "smtp:" an alias.

Other address types (X500:, SIP:, EUM:) are not mail addresses and are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable


def split_proxy_addresses(values: Iterable[str]) -> tuple[str | None, list[str]]:
    """The primary SMTP address (None when no "SMTP:" entry) and the aliases, in directory order."""
    primary: str | None = None
    aliases: list[str] = []
    for value in values:
        kind, _, address = value.partition(":")
        address = address.strip()
        if not address or kind.upper() != "SMTP":
            continue
        if kind == "SMTP" and primary is None:
            primary = address
        else:
            aliases.append(address)
    return primary, aliases
