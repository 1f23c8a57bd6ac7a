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
from continuity.core.login_throttle import FailureCounts, ThrottlePolicy, ThrottleScope, decide
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
    policy = ThrottlePolicy(max_per_account=5, max_per_ip=20, window_seconds=900)
    assert decide(policy, FailureCounts(4, 100.0, 4, 100.0), now=200.0) is None
    account = decide(policy, FailureCounts(5, 100.0, 5, 100.0), now=200.0)
    assert account is not None and account.scope is ThrottleScope.ACCOUNT and account.retry_after == 800.0
    assert "Try again in 13 minutes" in account.message
    network = decide(policy, FailureCounts(1, 100.0, 20, 150.0), now=200.0)
    assert network is not None and network.scope is ThrottleScope.IP and "network address" in network.message


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
