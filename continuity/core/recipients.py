"""Recipient policy: which RCPT TO addresses the standby accepts, and why it refuses others.

Only provisioned mailboxes and their aliases in the protected domains are accepted,
so the appliance is never an open relay and never accepts mail it would have to bounce
later (no backscatter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from continuity.core.addresses import domain_of, normalize_address
from continuity.core.models import DirectoryEntry


class RecipientVerdict(StrEnum):
    """The outcome of checking one recipient."""

    ACCEPT = "accept"
    MALFORMED = "malformed"
    RELAY_DENIED = "relay_denied"
    UNKNOWN_USER = "unknown_user"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class RecipientDecision:
    """The verdict on one recipient and, when accepted, its normalised address and mailbox."""

    verdict: RecipientVerdict
    address: str = ""
    mailbox: str = ""


def decide_recipient(
    raw_address: str,
    domains: frozenset[str],
    directory: Mapping[str, DirectoryEntry],
    recipient_delimiter: str = "",
) -> RecipientDecision:
    """Decide whether the standby accepts mail for raw_address."""
    try:
        address = normalize_address(raw_address)
    except ValueError:
        return RecipientDecision(RecipientVerdict.MALFORMED)
    if domain_of(address) not in domains:
        return RecipientDecision(RecipientVerdict.RELAY_DENIED, address)
    entry = directory.get(address)
    if entry is None and recipient_delimiter:
        local, _, domain = address.rpartition("@")
        base = local.split(recipient_delimiter, 1)[0]
        if base and base != local:
            entry = directory.get(f"{base}@{domain}")
    if entry is None:
        return RecipientDecision(RecipientVerdict.UNKNOWN_USER, address)
    if not entry.enabled:
        return RecipientDecision(RecipientVerdict.DISABLED, address, entry.mailbox)
    return RecipientDecision(RecipientVerdict.ACCEPT, address, entry.mailbox)
