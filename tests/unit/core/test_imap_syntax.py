"""IMAP syntax for the replay: modified UTF-7 mailbox names, quoting that cannot inject, flags, dates, literals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from continuity.core.imap_syntax import (
    ImapSyntaxError,
    check_literal,
    checked_flags,
    decode_mailbox,
    encode_mailbox,
    flag_list,
    internal_date,
    mailbox_argument,
    quote,
    sequence_set,
)


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        # RFC 3501 5.1.3's examples.
        ("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("&", "&-"),
        ("Sent Items", "Sent Items"),
        ("Entw\u00fcrfe", "Entw&APw-rfe"),
        ("Q1 & Q2", "Q1 &- Q2"),
    ],
)
def test_modified_utf7(name: str, encoded: str) -> None:
    assert encode_mailbox(name) == encoded
    assert decode_mailbox(encoded) == name


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
def test_modified_utf7_round_trips(name: str) -> None:
    encoded = encode_mailbox(name)
    assert encoded.isascii() and all(0x20 <= ord(char) <= 0x7E for char in encoded)
    assert decode_mailbox(encoded) == name


def test_malformed_utf7_is_refused() -> None:
    with pytest.raises(ImapSyntaxError):
        decode_mailbox("&ZeVnLIqe")


def test_quote_escapes_and_refuses_what_could_end_a_command() -> None:
    assert quote('Projects "2026" \\ done') == '"Projects \\"2026\\" \\\\ done"'
    for bad in ("x\r\nA1 DELETE INBOX", "nul\x00", "line\nbreak", "caf\u00e9"):
        with pytest.raises(ImapSyntaxError):
            quote(bad)


def test_mailbox_argument_is_encoded_then_quoted() -> None:
    assert mailbox_argument('Deleted "Items"') == '"Deleted \\"Items\\""'
    assert mailbox_argument("Pr\u00fcfung") == '"Pr&APw-fung"'
    with pytest.raises(ImapSyntaxError):
        mailbox_argument("")
    with pytest.raises(ImapSyntaxError):
        mailbox_argument("evil\r\nA1 LOGOUT")


def test_flags_are_checked() -> None:
    assert checked_flags("\\seen \\FLAGGED $Forwarded \\Recent \\Seen") == ("\\Seen", "\\Flagged", "$Forwarded")
    assert flag_list(("\\Seen", "\\Answered")) == "(\\Seen \\Answered)"
    assert flag_list(()) == "()"
    for bad in ("\\Bogus", "key)word", 'quo"te', "bra{ce", "pct%", "star*"):
        with pytest.raises(ImapSyntaxError):
            checked_flags(bad)


def test_internal_date_is_utc() -> None:
    assert internal_date(0) == '"01-Jan-1970 00:00:00 +0000"'
    assert internal_date(1_772_719_387) == '"05-Mar-2026 14:03:07 +0000"'


def test_literals_must_be_crlf_only_without_nul() -> None:
    check_literal(b"Subject: x\r\n\r\nbody\r\n")
    for bad in (b"Subject: x\n\nbody\n", b"a\rb\r\n", b"a\r\n\x00\r\n"):
        with pytest.raises(ImapSyntaxError):
            check_literal(bad)


def test_sequence_sets_are_compact() -> None:
    assert sequence_set([5, 1, 2, 3, 9, 10, 7]) == "1:3,5,7,9:10"
    assert sequence_set([4]) == "4"
    with pytest.raises(ImapSyntaxError):
        sequence_set([])
