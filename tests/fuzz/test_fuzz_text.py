"""Fuzzing the readers of short outside text: search queries, addresses, IMAP syntax and replies, filter scans, HTML.

What a user types in the search box, an address in RCPT TO, a LIST or NO reply from the
primary, a message's text and a message's HTML on its way to the browser. Every input
must finish within the budget and raise nothing but the errors each reader documents.
"""

from __future__ import annotations

import contextlib
import sqlite3

from hypothesis import example, given
from hypothesis import strategies as st

from continuity.adapters import imap_search
from continuity.core import addresses, compose, imap_syntax, replay_journal, search_query
from continuity.core.message_view import Link, LinkSource
from continuity.filters import bank_details, bec, urls
from continuity.filters.domains import DomainFeed
from tests.fuzz.budget import FUZZ, hostile_text, within_budget
from webmail.security.sanitizer import sanitize

_SEARCH_INDEX = sqlite3.connect(":memory:")
# The webmail's own full-text table (continuity/store/sqlite_webmail_schema.py).
_SEARCH_INDEX.execute(
    "CREATE VIRTUAL TABLE webmail_fts USING fts5 (owner, subject, addresses, body, content = '',"
    " tokenize = 'unicode61 remove_diacritics 2')"
)


@FUZZ
@given(hostile_text())
@example('"' + "a " * 20_000)
@example('a" OR b NEAR(c) * ^d -e :f {g}')
def test_search_queries_are_always_valid_fts5(text: str) -> None:
    query = within_budget(lambda: search_query.fts_query(text, "alice@example.com"))
    if query is not None:
        _SEARCH_INDEX.execute("SELECT rowid FROM webmail_fts WHERE webmail_fts MATCH ?", (query,)).fetchall()


@FUZZ
@given(hostile_text(max_repeat=500))
def test_addresses_raise_only_value_errors(text: str) -> None:
    try:
        normalized = within_budget(lambda: addresses.normalize_address(text))
    except ValueError:
        return
    assert normalized == addresses.normalize_address(normalized)


@FUZZ
@given(hostile_text(max_repeat=3_000))
@example("(" * 3_000)  # found by fuzzing: raised RecursionError, not ValueError
@example('"a, b" <a@example.com>; (c, d) b@example.com')
def test_compose_recipients_raise_only_value_errors(text: str) -> None:
    try:
        recipients = within_budget(lambda: compose.parse_recipients(text))
    except ValueError:
        return
    assert all(address == addresses.normalize_address(address) for address in recipients)


@FUZZ
@given(hostile_text())
def test_imap_syntax_raises_only_its_own_error(text: str) -> None:
    for read in (imap_syntax.decode_mailbox, imap_syntax.checked_flags, imap_syntax.mailbox_argument):
        with contextlib.suppress(imap_syntax.ImapSyntaxError):
            within_budget(lambda: read(text))  # noqa: B023 (called at once)
    if text and text.isprintable():
        assert imap_syntax.decode_mailbox(imap_syntax.encode_mailbox(text)) == text


@FUZZ
@given(st.lists(hostile_text(max_repeat=2_000), max_size=4))
@example(['(\\HasNoChildren) "' + "\\" * 30_000])
def test_imap_replies_never_raise(lines: list[str]) -> None:
    within_budget(lambda: imap_search.parse_list(lines))
    for line in lines:
        assert within_budget(lambda: replay_journal.classify_imap_no(line)) in replay_journal.OutcomeKind  # noqa: B023


@FUZZ
@given(hostile_text())
@example("a" * 50_000)
@example("do" + " " * 50_000)
def test_filter_text_scans(text: str) -> None:
    within_budget(lambda: bank_details.find_ibans(text))
    within_budget(lambda: bank_details.find_account_numbers(text))
    within_budget(lambda: bank_details.change_wording(text))
    within_budget(lambda: bank_details.urgency_wording(text))
    within_budget(lambda: bec.normalize_name(text))
    within_budget(lambda: bec.addresses_in_name(text))
    link = Link(text, text, LinkSource.HREF)
    within_budget(lambda: urls.scan_links((link,), DomainFeed((), builtin=("evil.example",))))


# Sanitizing is held to a thousand or so repeats: html5ever (under nh3) checks the open
# elements at each <div> and <p>, so tens of thousands nested take seconds (reported; the
# sanitizer is not changed here).
@FUZZ
@given(hostile_text(max_repeat=1_500), st.booleans())
@example('<a href="http://[x">a</a><img src="http://[y">', True)
def test_webmail_sanitizer(markup: str, remote_images: bool) -> None:
    within_budget(lambda: sanitize(markup, allow_remote_images=remote_images, cid_base="/part/"))
