"""Pure pieces of the webmail: folder names and flags, the login throttle, search queries, MIME reading, compose."""

from __future__ import annotations

import sqlite3
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default

import pytest
from hypothesis import given
from hypothesis import strategies as st

from continuity.core.compose import ComposeMode, Draft, NewAttachment, build_message, envelope_recipients, prefill
from continuity.core.login_throttle import (
    KeyFailures,
    Limit,
    Throttled,
    ThrottlePolicy,
    ThrottleScope,
    account_key,
    decide,
    delay_after,
    ip_key,
    second_factor_key,
)
from continuity.core.mail_folders import Flag, format_flags, parse_flags, validate_folder_name, with_flag
from continuity.core.mime_view import Address, view
from continuity.core.search_query import fts_query, owner_token


def test_folder_names() -> None:
    assert validate_folder_name("  Client   projects ") == "Client projects"
    for bad, reason in (("", "empty"), ("INBOX", "standard"), ("Trash", "standard"), ("a/b", "must not contain")):
        with pytest.raises(ValueError, match=reason):
            validate_folder_name(bad)


def test_flags_round_trip() -> None:
    assert with_flag("", Flag.SEEN, True) == "\\Seen"
    assert with_flag("\\Seen \\Flagged", Flag.SEEN, False) == "\\Flagged"
    assert parse_flags("\\Flagged \\Bogus \\Seen") == {Flag.SEEN, Flag.FLAGGED}
    assert format_flags({Flag.DRAFT, Flag.SEEN}) == "\\Seen \\Draft"


def test_throttle_decisions() -> None:
    policy = ThrottlePolicy(max_per_account=5, max_per_ip=20, memory_seconds=86400, longest_delay=900)
    limits = (Limit(ThrottleScope.ACCOUNT, "account:a", 5), Limit(ThrottleScope.IP, "ip:1", 20))
    assert decide(policy, limits, [KeyFailures(4, 100.0), KeyFailures(4, 100.0)], now=100.0) is None
    account = decide(policy, limits, [KeyFailures(5, 100.0), KeyFailures(5, 100.0)], now=105.0)
    assert account is not None and account.scope is ThrottleScope.ACCOUNT and account.retry_after == 10.0
    assert "Try again in 10 seconds" in account.message
    # The delay doubles with each failure and stops growing at longest_delay; it never locks for good.
    assert [delay_after(policy, n, 5) for n in (4, 5, 6, 7, 12, 60)] == [0.0, 15.0, 30.0, 60.0, 900.0, 900.0]
    assert decide(policy, limits, [KeyFailures(30, 100.0), KeyFailures(30, 100.0)], now=1000.1) is None
    long_wait = decide(policy, limits, [KeyFailures(30, 100.0), KeyFailures(0, 0.0)], now=101.0)
    assert long_wait is not None and "Try again in 15 minutes" in long_wait.message
    network = decide(policy, limits, [KeyFailures(1, 100.0), KeyFailures(20, 150.0)], now=151.0)
    assert network is not None and network.scope is ThrottleScope.IP and "network address" in network.message
    code = Throttled(ThrottleScope.SECOND_FACTOR, 1.0)
    assert code.message == "Too many failed sign-in attempts for the code of this account. Try again in 1 second."


def test_ipv6_clients_share_a_key_per_64() -> None:
    assert ip_key("192.0.2.7") == "ip:192.0.2.7"
    assert ip_key("2001:db8:1:2::5") == ip_key("2001:db8:1:2:ffff:1:2:3") == "ip:2001:db8:1:2::/64"
    assert ip_key("2001:db8:1:3::5") != ip_key("2001:db8:1:2::5")
    assert ip_key("::ffff:192.0.2.7") == "ip:192.0.2.7"
    assert ip_key("fe80::1%eth0") == "ip:fe80::/64"
    assert ip_key("unknown") == "ip:unknown"
    assert second_factor_key("Alice@example.com") != account_key("alice@example.com")


@given(st.text(max_size=200))
def test_any_search_input_is_a_valid_fts5_query(text: str) -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE f USING fts5 (owner, subject, addresses, body, content='')")
    expression = fts_query(text, "alice@example.com")
    if expression is not None:
        connection.execute("SELECT rowid FROM f WHERE f MATCH ?", (expression,)).fetchall()
        assert expression.startswith(f"owner : {owner_token('alice@example.com')} AND ")


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "=?utf-8?q?J=C3=BCrgen?= <jurgen@remote.test>"
    message["To"] = "Alice <alice@example.com>, bob@example.com"
    message["Cc"] = "carol@remote.test"
    message["Subject"] = "Quarterly numbers"
    message["Message-ID"] = "<q1@remote.test>"
    message["Date"] = "Sun, 22 Nov 2026 10:00:00 +0000"
    message.set_content("Line one\nLine two\n")
    message.add_alternative("<p>Line <b>one</b></p>", subtype="html")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="q1.pdf")
    return message


def test_mime_view_reads_headers_bodies_and_attachments() -> None:
    parsed = view(_message().as_bytes(policy=SMTP))
    assert parsed.summary.sender == Address("Jürgen", "jurgen@remote.test")
    assert [a.address for a in parsed.summary.to] == ["alice@example.com", "bob@example.com"]
    assert parsed.text == "Line one\nLine two\n" and parsed.html == "<p>Line <b>one</b></p>\n"
    assert [(a.filename, a.content_type, a.size) for a in parsed.attachments] == [("q1.pdf", "application/pdf", 8)]
    assert parsed.summary.has_attachments and parsed.summary.preview == "Line one Line two"


def test_mime_view_survives_garbage() -> None:
    parsed = view(b"Subject: =?bogus?x?zz?=\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n\xff\xfe--\r\n")
    assert parsed.summary.subject is not None and parsed.attachments is not None


def test_reply_all_and_forward_prefill() -> None:
    parsed = view(_message().as_bytes(policy=SMTP))
    reply_all = prefill(ComposeMode.REPLY_ALL, parsed, frozenset({"alice@example.com"}))
    assert reply_all.to == "Jürgen <jurgen@remote.test>"
    assert reply_all.cc == "bob@example.com, carol@remote.test"
    assert reply_all.subject == "Re: Quarterly numbers" and reply_all.in_reply_to == "<q1@remote.test>"
    assert "> Line one" in reply_all.body
    forward = prefill(ComposeMode.FORWARD, parsed, frozenset())
    assert forward.subject == "Fwd: Quarterly numbers" and forward.to == "" and "Line two" in forward.body


def test_build_message_keeps_bcc_out_of_the_headers() -> None:
    draft = Draft(
        to="Bob <bob@remote.test>", bcc="secret@remote.test", subject="Hi\r\nBcc: injected@evil.test", body="x",
        attachments=(NewAttachment("a.txt", "text/plain", b"hello"),),
    )  # fmt: skip
    built = build_message(draft, Address("Alice", "alice@example.com"), hostname="standby.example.com")
    wire = built.as_bytes(policy=SMTP)
    parsed = message_from_bytes(wire, policy=default)
    assert "Bcc" not in parsed and parsed["Subject"] == "Hi Bcc: injected@evil.test"
    assert envelope_recipients(draft) == ["bob@remote.test", "secret@remote.test"]
    with pytest.raises(ValueError, match="add at least one recipient"):
        envelope_recipients(Draft())
    with pytest.raises(ValueError, match="'bob@' is not a valid address"):
        envelope_recipients(Draft(to="ok@remote.test, bob@"))
    quoted = Draft(to='"Lee, Sam" <sam@remote.test>; x@remote.test')
    assert envelope_recipients(quoted) == ["sam@remote.test", "x@remote.test"]


def test_mime_view_decodes_charsets_and_encoded_names() -> None:
    raw = (
        b"From: =?iso-8859-1?q?Ren=E9?= <rene@remote.test>\r\nTo: alice@example.com\r\n"
        b"Subject: =?utf-8?b?w6l0w6k=?= report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"\xe9t\xe9 chaud\r\n"
        b'--b\r\nContent-Type: application/pdf; name="=?utf-8?b?csOpc3Vtw6kucGRm?="\r\n'
        b'Content-Disposition: attachment; filename="=?utf-8?b?csOpc3Vtw6kucGRm?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n"
    )
    parsed = view(raw)
    assert parsed.summary.sender == Address("René", "rene@remote.test")
    assert parsed.summary.subject == "été report"
    assert parsed.text == "été chaud"  # the CRLF before a boundary belongs to the boundary
    assert [(a.filename, a.size) for a in parsed.attachments] == [("résumé.pdf", 4)]
