"""The errors of DNS switching, and how MX record sets are compared and shown in their messages."""

from __future__ import annotations

from collections.abc import Sequence

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from continuity.errors import ContinuityError


class DnsUpdateError(ContinuityError):
    """An update, a read or a verification failed; the message says which domain, what and why."""


class DnsVerifyError(DnsUpdateError):
    """The provider holds the new MX, but some authoritative servers did not serve it in time.

    ``serving`` are the servers (``host:port``) that serve it, ``not_serving`` says for each
    of the others what it served instead or why it did not answer.
    """

    def __init__(self, message: str, serving: tuple[str, ...], not_serving: dict[str, str]) -> None:
        super().__init__(message)
        self.serving = serving
        self.not_serving = not_serving


def canonical_mx(records: Sequence[str]) -> frozenset[str]:
    """An MX set in one spelling (lower case, single spaces, absolute names) for comparisons."""
    return frozenset(str(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.MX, text)).lower() for text in records)


def show_mx(records: Sequence[str]) -> str:
    """An MX set for a message: sorted, in brackets."""
    return "[" + ", ".join(sorted(records)) + "]" if records else "[nothing]"


def describe(exc: BaseException) -> str:
    """An exception as 'Type: text' for a message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
