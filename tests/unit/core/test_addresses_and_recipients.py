"""Address normalisation and the recipient policy (never an open relay)."""

from __future__ import annotations

import pytest

from continuity.core.addresses import normalize_address, normalize_domain
from continuity.core.models import DirectoryEntry
from continuity.core.recipients import RecipientVerdict, decide_recipient

DOMAINS = frozenset({"example.com", "xn--bcher-kva.example"})
DIRECTORY = {
    "alice@example.com": DirectoryEntry("alice@example.com", True),
    "a.alias@example.com": DirectoryEntry("alice@example.com", True),
    "carol@example.com": DirectoryEntry("carol@example.com", False),
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        ("<bob@example.com>", "bob@example.com"),
        ("x@Bücher.example", "x@xn--bcher-kva.example"),
        ("o'neil+tag@example.com.", "o'neil+tag@example.com"),
    ],
)
def test_normalize_address(raw: str, expected: str) -> None:
    assert normalize_address(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "alice",
        "@example.com",
        "alice@",
        "a b@example.com",
        '"q"@example.com',
        "a..b@example.com",
        "x" * 65 + "@example.com",
        "a@localhost",
        "a@-bad-.com",
    ],
)
def test_normalize_address_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_address(raw)


def test_normalize_domain() -> None:
    assert normalize_domain(" Example.COM. ") == "example.com"
    with pytest.raises(ValueError, match="fully qualified"):
        normalize_domain("localhost")


@pytest.mark.parametrize(
    ("address", "verdict", "mailbox"),
    [
        ("alice@example.com", RecipientVerdict.ACCEPT, "alice@example.com"),
        ("A.Alias@EXAMPLE.com", RecipientVerdict.ACCEPT, "alice@example.com"),
        ("carol@example.com", RecipientVerdict.DISABLED, "carol@example.com"),
        ("nobody@example.com", RecipientVerdict.UNKNOWN_USER, ""),
        ("alice@gmail.test", RecipientVerdict.RELAY_DENIED, ""),
        ("alice@sub.example.com", RecipientVerdict.RELAY_DENIED, ""),
        ("alice%gmail.test@example.com", RecipientVerdict.UNKNOWN_USER, ""),
        ('"alice"@example.com', RecipientVerdict.MALFORMED, ""),
        ("alice+news@example.com", RecipientVerdict.UNKNOWN_USER, ""),
    ],
)
def test_decide_recipient(address: str, verdict: RecipientVerdict, mailbox: str) -> None:
    decision = decide_recipient(address, DOMAINS, DIRECTORY)
    assert decision.verdict is verdict
    assert decision.mailbox == mailbox


def test_recipient_delimiter_maps_subaddresses() -> None:
    decision = decide_recipient("alice+news@example.com", DOMAINS, DIRECTORY, recipient_delimiter="+")
    assert (decision.verdict, decision.address, decision.mailbox) == (
        RecipientVerdict.ACCEPT,
        "alice+news@example.com",
        "alice@example.com",
    )
