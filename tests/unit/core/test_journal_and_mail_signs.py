"""Journal reports, inbox-rule and bounce signs in headers, and the non-delivery reports the relay sends."""

from __future__ import annotations

import base64

import pytest

from continuity.core.delivery import DeliveryStatus, RecipientResult
from continuity.core.dsn import build_dsn
from continuity.core.journal import is_journal_report, parse_journal_report
from continuity.core.mail_signs import hard_bounces, may_be_delivery_report, read_signs
from continuity.errors import InvalidInputError

INNER = (
    b"From: Alice <alice@example.com>\r\nTo: paula@partner.test\r\nSubject: Offer\r\n"
    b"Message-ID: <offer-1@example.com>\r\n\r\nHello.\r\n.leading dot stays\r\n"
)


def report(lines: str, inner: bytes = INNER, *, encoding: str = "") -> bytes:
    body = base64.encodebytes(inner).replace(b"\n", b"\r\n") if encoding == "base64" else inner
    cte = f"Content-Transfer-Encoding: {encoding}\r\n" if encoding else ""
    return (
        b"From: Microsoft Exchange <postmaster@example.com>\r\nTo: journal@example.com\r\nX-MS-Journal-Report:\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"preamble\r\n--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        + lines.encode()
        + b"\r\n--b1\r\nContent-Type: message/rfc822\r\n"
        + cte.encode()
        + b"\r\n"
        + body
        + b"\r\n--b1--\r\nepilogue\r\n"
    )


ENVELOPE = (
    "Sender: alice@example.com\r\nSubject: Offer\r\nMessage-Id: <offer-1@example.com>\r\n"
    "To: paula@partner.test\r\nCc: fwd@exfil.test, Forwarded: bob@example.com\r\n"
    "Bcc: member@example.com, Expanded: team@example.com\r\nRecipient: Unknown@Partner.Test"
)


def test_a_journal_report_is_unwrapped_byte_for_byte() -> None:
    content = report(ENVELOPE)
    assert is_journal_report(content)
    parsed = parse_journal_report(content)
    assert parsed.message == INNER
    assert (parsed.sender, parsed.subject, parsed.message_id) == ("alice@example.com", "Offer", "<offer-1@example.com>")
    assert parsed.addresses == (
        "paula@partner.test",
        "fwd@exfil.test",
        "member@example.com",
        "unknown@partner.test",
    )
    fields = {recipient.address: recipient for recipient in parsed.recipients}
    assert fields["fwd@exfil.test"].forwarded_by == "bob@example.com" and fields["fwd@exfil.test"].field == "cc"
    assert fields["member@example.com"].expanded_from == "team@example.com"
    assert fields["unknown@partner.test"].field == "recipient"


def test_a_base64_encoded_original_is_decoded() -> None:
    assert parse_journal_report(report(ENVELOPE, encoding="base64")).message == INNER


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"Subject: x\r\n\r\nno parts\r\n", "not a multipart"),
        (report("To: bob@example.com"), "names no Sender"),
        (report("Sender: alice@example.com"), "names no recipients"),
        (report(ENVELOPE).replace(b"message/rfc822", b"text/plain"), "no original message"),
    ],
)
def test_what_is_not_a_usable_journal_report(content: bytes, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        parse_journal_report(content)


def test_inbox_rule_signs() -> None:
    forwarded = read_signs(
        b"From: partner@partner.test\r\nX-MS-Exchange-Inbox-Rules-Loop: Bob@Example.com\r\n"
        b"X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent\r\nMessage-ID: <m1@x>\r\n\r\nbody\r\n"
    )
    assert forwarded.rule_generated and forwarded.rule_mailboxes == ("bob@example.com",)
    assert forwarded.generator == "Mailbox Rules Agent" and not forwarded.automatic
    auto_forward = read_signs(b"X-MS-Exchange-Organization-AutoForwarded: true\r\n\r\n")
    assert auto_forward.rule_generated
    plain = read_signs(b"From: alice@example.com\r\nSubject: hi\r\n\r\nX-MS-Exchange-Inbox-Rules-Loop: in body\r\n")
    assert not plain.rule_generated
    reply = read_signs(b"Auto-Submitted: auto-replied\r\n\r\n")
    assert reply.automatic and reply.auto_reply
    assert read_signs(b"Precedence: bulk\r\n\r\n").automatic


def test_a_non_delivery_report_round_trip() -> None:
    failed = [
        RecipientResult("nobody@outside.test", DeliveryStatus.FAILED, 550, "5.1.1 User unknown", "mx.outside.test"),
        RecipientResult("gone@outside.test", DeliveryStatus.FAILED, 554, "rejected"),
    ]
    original = b"From: alice@example.com\r\nSubject: hello\r\n\r\nsecret body\r\n"
    report_bytes = build_dsn("mx.example.com", "alice@example.com", failed, original, "Q1", 0.0)
    signs = read_signs(report_bytes)
    assert signs.delivery_report and signs.automatic
    assert hard_bounces(report_bytes) == ("nobody@outside.test", "gone@outside.test")
    assert may_be_delivery_report(report_bytes)
    assert may_be_delivery_report(report_bytes.replace(b"multipart/report", b"Multipart/REPORT"))
    assert not may_be_delivery_report(original + b"report in the body only\r\n")
    assert b"Status: 5.1.1" in report_bytes and b"Status: 5.0.0" in report_bytes
    # The original header goes back to the sender, not its body.
    assert b"Subject: hello" in report_bytes and b"secret body" not in report_bytes
    assert b"\n" not in report_bytes.replace(b"\r\n", b"")


def test_only_permanent_failures_are_hard_bounces() -> None:
    report_bytes = (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: text/plain\r\n\r\nsorry\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.outside.test\r\n\r\nFinal-Recipient: rfc822; later@outside.test\r\n"
        b"Action: delayed\r\nStatus: 4.4.1\r\n\r\nFinal-Recipient: rfc822;<Never@Outside.Test>\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n--x--\r\n"
    )
    assert hard_bounces(report_bytes) == ("never@outside.test",)
