"""The core's expressions stay linear on their worst inputs: message view, DSN, journal, search, addresses.

Each expression that sees mail, a server's reply or what a user types is run on inputs
of growing size built against its own structure; four times the input may take at most
eight times as long. The filters' HTML scan (html.parser under it rescanned the rest of
the text from every unfinished construct) is measured on each kind of unfinished
construct, and a property checks that on finished markup it reads what the plain
parser reads.
"""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from continuity.core import addresses, dsn, imap_syntax, journal, message_view, replay_journal, search_query
from continuity.core.message_view import Link, links_in_text, parse_message, scan_html
from continuity.services.filter_eval import envelope_from_headers
from tests.unit.core.test_linear_patterns import grows_linearly

UNFINISHED_MARKUP = {
    "start-tags": "<a href=",
    "open-quotes": '<a x="',
    "bare-letters": "<a",
    "end-tags": "</a",
    "comments": "<!-- >",
    "comment-in-comment": "<!-- <!",
    "sections": "<![cdata[ ]>",
    "conditional-sections": "<![if >",
    "instructions": "<? >",
    "declarations": "<! >",
    "quoted-closers": "<a x='>'=",
    "two-quotes": "<a x='>' y=\"",
    "equals": '<a ="',
}


@pytest.mark.parametrize("unit", UNFINISHED_MARKUP.values(), ids=UNFINISHED_MARKUP.keys())
def test_html_scan_is_linear_on_unfinished_markup(unit: str) -> None:
    grows_linearly(lambda n: unit * n, scan_html, 3_000)


def test_message_parse_is_linear_on_unfinished_html() -> None:
    head = b"Content-Type: text/html\r\n\r\n"
    grows_linearly(lambda n: head + b"<a href=" * n, parse_message, 3_000)


class _PlainScanner(message_view._HtmlScanner):
    """The scanner as it was: html.parser's own answer for unfinished tags."""

    def check_for_whole_start_tag(self, i: int) -> int:
        return int(HTMLParser.check_for_whole_start_tag(self, i))


def _plain_scan(html: str) -> tuple[list[Link], str]:
    scanner = _PlainScanner()
    try:
        scanner.feed(html)
        scanner.close()
    except (AssertionError, ValueError):
        pass
    return scanner.links, "".join(scanner.text)


finished_markup = st.lists(
    st.sampled_from([
        '<a href="http://a.example/x?y=1&amp;z=2">', "</a>", "<a href='mailto:x@y'>", '<img src="cid:1" alt="a > b">',
        '<form action="https://f.example">', "</form>", "<p>", "<br/>", "<div class=x>", "</div>",
        "<script>x<y</script>", "<style>p{}</style>", "<![if !mso]>", "<![endif]>", "<![CDATA[x]]>",
        "<!-- note -->", "<!--[if mso]><p>m</p><![endif]-->", "<!DOCTYPE html>", "text", " ",
        "&lt;", "&amp;", "&#233;", "http://t.example/p", "1 > 0", "<li>", "<TR>",
    ]),
    max_size=25,
).map("".join)  # fmt: skip


@given(finished_markup)
@example('<a href="x">a</a> 1 > 0 <img src="y" alt="q">')
def test_html_scan_reads_finished_markup_as_the_plain_parser(html: str) -> None:
    assert scan_html(html) == _plain_scan(html)


def test_message_view_expressions_are_linear() -> None:
    container = message_view._CONTAINER_TYPE.search
    grows_linearly(lambda n: b"\ncontent-type:" + b" " * n, container, 50_000)
    grows_linearly(lambda n: b"\ncontent-type:" * n, container, 10_000)
    grows_linearly(lambda n: "http" * n, links_in_text, 20_000)
    grows_linearly(lambda n: "\u0130http://" * n, links_in_text, 5_000)  # the whole-text expression
    grows_linearly(lambda n: "http://" + "a" * n + " ", links_in_text, 50_000)
    message_ids = message_view._MESSAGE_ID.findall
    grows_linearly(lambda n: "<a" * n, message_ids, 20_000)
    grows_linearly(lambda n: "<" + "a" * n, message_ids, 50_000)
    grows_linearly(lambda n: "<!--" * n, message_view._completable_markup, 10_000)
    grows_linearly(lambda n: "-- " * n, message_view._COMMENT_CLOSE.findall, 20_000)


@pytest.mark.parametrize(
    ("make", "run"),
    [
        (lambda n: "5.1.1" + "1" * n, dsn._enhanced),
        (lambda n: "5." * n, dsn._enhanced),
        (lambda n: "server " * n, replay_journal.classify_imap_no),
        (lambda n: "[" * n, replay_journal.classify_imap_no),
        (lambda n: '"' + "a " * n, lambda text: search_query.fts_query(text, "m")),
        (lambda n: '"a" ' * n, lambda text: search_query.fts_query(text, "m")),
        (lambda n: "a" * n + "(", imap_syntax._ATOM.match),
        (lambda n: "a." * n + "!", addresses._LOCAL_ATOM.match),
        (lambda n: "a" * n + "-", addresses._DOMAIN_LABEL.match),
    ],
    ids=["dsn-digits", "dsn-dots", "imap-no-words", "imap-no-brackets", "search-open-quote", "search-phrases",
         "imap-atom", "local-part", "domain-label"],
)  # fmt: skip
def test_small_expressions_are_linear(make: Callable[[int], str], run: Callable[[str], object]) -> None:
    grows_linearly(make, run, 20_000)


def test_journal_boundary_is_linear() -> None:
    boundary = journal._BOUNDARY.search
    grows_linearly(lambda n: b"boundary" + b" " * n, boundary, 50_000)
    grows_linearly(lambda n: b"boundary=" * n, boundary, 20_000)
    grows_linearly(lambda n: b'boundary="' + b"a" * n, boundary, 50_000)
    grows_linearly(lambda n: b"boundary =" + b" " * n + b";", boundary, 50_000)


def test_received_from_is_linear() -> None:
    def client_of(received: object) -> object:
        return envelope_from_headers(b"Received: " + bytes(received) + b"\r\nSubject: x\r\n\r\nbody\r\n")  # type: ignore[call-overload]

    grows_linearly(lambda n: b"from x " * n, client_of, 5_000)
    grows_linearly(lambda n: b"from " + b"x" * n, client_of, 50_000)
    found = envelope_from_headers(b"Received: from mx.example.org (mx.example.org [192.0.2.7]) by us\r\n\r\nbody\r\n")
    assert (found.client_helo, found.client_address) == ("mx.example.org", "192.0.2.7")


def test_throttle_hints_are_linear() -> None:
    from continuity.core.replay_mailbox_flow import _BACKOFF_HINT, _MAILBOX_THROTTLE

    grows_linearly(lambda n: "suggested backoff time" + " " * n + "x", lambda t: _BACKOFF_HINT.search(str(t)), 20_000)
    grows_linearly(lambda n: "suggested " * n, lambda t: _MAILBOX_THROTTLE.search(str(t)), 20_000)
    found = _BACKOFF_HINT.search("NO Request is throttled. Suggested Backoff Time: 1234 milliseconds")
    assert found is not None and found.group(1) == "1234"
