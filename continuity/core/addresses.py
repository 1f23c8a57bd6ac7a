"""Mail address and domain normalisation, shared by ingest, the directory and the CLI."""

from __future__ import annotations

import re

# RFC 5321 limits: 64 octets of local part, 255 of domain.
_LOCAL_MAX = 64
_DOMAIN_MAX = 255
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Local parts we provision: dot-atom text (RFC 5322 atext), no quoted strings.
_LOCAL_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def normalize_domain(domain: str) -> str:
    """Lower-case a domain, convert IDN to its A-label form and check its syntax."""
    text = domain.strip().rstrip(".").lower()
    if not text:
        raise ValueError("a domain must not be empty")
    try:
        ascii_form = text.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"'{domain}' is not a valid domain name") from exc
    if len(ascii_form) > _DOMAIN_MAX or "." not in ascii_form:
        raise ValueError(f"'{domain}' is not a fully qualified domain name")
    if not all(_DOMAIN_LABEL.match(label) for label in ascii_form.split(".")):
        raise ValueError(f"'{domain}' is not a valid domain name")
    return ascii_form


def normalize_address(address: str) -> str:
    """Return ``local@domain`` with the domain normalised and the local part lower-cased.

    Exchange matches addresses case-insensitively, so the directory does too.
    Raises ValueError with a sentence naming the problem.
    """
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain:
        raise ValueError(f"'{address}' is not an address of the form user@example.com")
    if len(local) > _LOCAL_MAX:
        raise ValueError(f"the local part of '{address}' is longer than {_LOCAL_MAX} characters")
    if not _LOCAL_ATOM.match(local):
        raise ValueError(f"'{address}' has characters not allowed in a mailbox name")
    return f"{local.lower()}@{normalize_domain(domain)}"


def domain_of(address: str) -> str:
    """The domain part of an already normalised address."""
    return address.rpartition("@")[2]
