"""Fuzzing the readers of whole messages: filters' parse, webmail view, headers, content checks, journal, DSN.

Each takes the bytes a sender (or the primary's journal) chose. Every input must finish
within the budget and raise nothing but the errors each reader documents: none for the
message views, header reading and content checks (they degrade instead),
InvalidInputError for journal reports.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from continuity.core import dsn, headers, journal, mail_signs, message_view, mime_view
from continuity.core.content_checks import ContentLimits, find_content_problem
from continuity.core.delivery import DeliveryStatus, RecipientResult
from continuity.errors import InvalidInputError
from tests.fuzz.budget import FUZZ, hostile_text, raw_messages, within_budget

_LIMITS = ContentLimits(max_header_size=102_400, max_mime_depth=100)
# Found by fuzzing: the stdlib reads nested address comments recursively.
_NESTED_COMMENTS = b"From: " + b"(" * 5_000 + b"\r\n\r\nx"
# Found by fuzzing: html.parser rescanned the rest of the text from every unfinished tag.
_UNFINISHED_TAGS = b"Content-Type: text/html\r\n\r\n" + b"<a href=" * 20_000
_QUOTED_CLOSERS = b"Content-Type: text/html\r\n\r\n" + b"<a x='>'=" * 20_000


@FUZZ
@given(raw_messages())
@example(_NESTED_COMMENTS)
@example(_UNFINISHED_TAGS)
@example(_QUOTED_CLOSERS)
@example(b"Message-ID: \xc4\xb0\r\n\r\n")  # found by fuzzing: an 8-bit field is a Header, not a str
@example(b"Content-Disposition: \xc2\x80\r\n\r\n")  # found by fuzzing: likewise
@example(b"Content-Type: text/html\r\n\r\n" + b"<!-- >" * 30_000)
def test_filter_parse(raw: bytes) -> None:
    view = within_budget(lambda: message_view.parse_message(raw))
    assert view.raw == raw


@FUZZ
@given(raw_messages())
@example(_NESTED_COMMENTS)
@example(b"Subject: " + b"=?a?q?" * 15_000 + b"\r\n\r\nx")
def test_webmail_view(raw: bytes) -> None:
    shown = within_budget(lambda: mime_view.view(raw))
    for index in [attachment.index for attachment in shown.attachments]:
        assert within_budget(lambda: mime_view.part_bytes(raw, index)) is not None  # noqa: B023 (called at once)
    assert within_budget(lambda: mime_view.summarize(raw)) == shown.summary


@FUZZ
@given(raw_messages())
def test_header_reading_and_content_checks(raw: bytes) -> None:
    summary = within_budget(lambda: headers.read_summary_headers(raw))
    assert len(summary.subject) <= 998 and len(summary.message_id) <= 998
    within_budget(lambda: find_content_problem(raw, _LIMITS))


_NESTED_SENDER = (
    b'X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n'
    b"\r\nSender: " + b"(" * 3_000 + b"\r\nTo: a@b.example\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n"
    b"\r\nbody\r\n--b--\r\n"
)


@FUZZ
@given(raw_messages())
@example(_NESTED_COMMENTS)  # found by fuzzing: raised RecursionError
def test_signs_of_rules_and_bounces(raw: bytes) -> None:
    within_budget(lambda: mail_signs.read_signs(raw))
    within_budget(lambda: mail_signs.hard_bounces(raw))


@FUZZ
@given(raw_messages(), st.booleans())
@example(_NESTED_SENDER, False)  # found by fuzzing: raised RecursionError, not InvalidInputError
def test_journal_reports(raw: bytes, as_report: bool) -> None:
    if as_report:  # most draws are not journal reports; make half of them claim to be one
        raw = b'X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary="b"\r\n' + raw
    within_budget(lambda: journal.is_journal_report(raw))
    try:
        report = within_budget(lambda: journal.parse_journal_report(raw))
    except InvalidInputError:
        return
    assert report.recipients and report.message.endswith(b"\r\n")


@FUZZ
@given(hostile_text(max_repeat=2_000), raw_messages(), st.integers(min_value=0, max_value=999))
@example("550 5.1.1 unbekannter Empf\u00e4nger", b"", 550)  # found by fuzzing: 8-bit replies broke the report
@example("550 5.1.1 no", b"Subject: \xe4\r\n\r\n", 550)  # found by fuzzing: and so did an 8-bit header
def test_delivery_status_notifications(reply: str, original: bytes, code: int) -> None:
    failed = [RecipientResult("bob@example.com", DeliveryStatus.FAILED, code, reply)]
    notice = within_budget(lambda: dsn.build_dsn("mx.example.com", "alice@example.com", failed, original, "Q1", 0.0))
    assert b"multipart/report" in notice
    assert within_budget(lambda: dsn._enhanced(reply)).startswith("5.")
