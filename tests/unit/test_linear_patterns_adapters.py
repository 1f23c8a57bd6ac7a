"""The adapters' expressions stay linear on what clients and the primary send (SMTP paths, IMAP replies).

MAIL/RCPT arguments come from any SMTP client; LIST, APPEND and SEARCH replies come from
the primary's IMAP server, which a compromise may control. Each expression is run on
inputs of growing size built against its own structure; four times the input may take
at most eight times as long. The SMTP path expressions were rewritten (a run of spaces
followed by a line break made them quadratic); a property checks they still read every
argument as the old ones did.
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from continuity.adapters import imap_append, imap_search, smtp_session, smtp_transaction
from tests.unit.core.test_linear_patterns import grows_linearly

_OLD_SIMPLE_PATH = re.compile(r"<([^<>()\[\]\\\",;:@\s]+@[A-Za-z0-9.-]+)>(?:\s+(.*))?\Z")
_OLD_NULL_PATH = re.compile(r"<>(?:\s+(.*))?\Z")


def test_smtp_paths_are_linear() -> None:
    simple, null = smtp_session._SIMPLE_PATH.match, smtp_session._NULL_PATH.match
    grows_linearly(lambda n: "<a@b>" + " " * n + "\nx\nx", simple, 20_000)
    grows_linearly(lambda n: "<>" + " " * n + "\nx\nx", null, 20_000)
    grows_linearly(lambda n: "<" + "a" * n, simple, 50_000)
    grows_linearly(lambda n: "<a@" + "b" * n, simple, 50_000)
    grows_linearly(lambda n: "<a@b> " + "x " * n + "\n", simple, 20_000)


smtp_argument = st.text(alphabet="<>@a.- \t\n=x", max_size=30)


@given(smtp_argument)
@example("<a@b>  SIZE=1\nx")
@example("<>  \n")
@example("<a@b.c> BODY=8BITMIME SMTPUTF8")
def test_smtp_paths_read_arguments_as_before(argument: str) -> None:
    for new, old in ((smtp_session._SIMPLE_PATH, _OLD_SIMPLE_PATH), (smtp_session._NULL_PATH, _OLD_NULL_PATH)):
        found, expected = new.match(argument), old.match(argument)
        assert (found and found.groups()) == (expected and expected.groups())


def test_line_endings_are_normalised_in_linear_time() -> None:
    grows_linearly(lambda n: b"\r" * n, lambda data: smtp_transaction.data_bytes(data), 50_000)
    grows_linearly(lambda n: b"\r\r\n\n" * n, lambda data: smtp_transaction.data_bytes(data), 20_000)


def test_imap_replies_are_read_in_linear_time() -> None:
    grows_linearly(lambda n: b"UID " * n, imap_append._UID.search, 20_000)
    grows_linearly(lambda n: "[APPENDUID 1 " * n, imap_append._APPENDUID.search, 10_000)
    grows_linearly(lambda n: '"' + "\\" * n + '"', lambda name: imap_search.parse_list([f'(\\X) "/" {name}']), 20_000)
    grows_linearly(lambda n: b'"' + b"\\" * n + b'"', imap_append._unquote, 20_000)
    listed = imap_search._LIST_LINE.match
    grows_linearly(lambda n: '(\\X) "' + "\\" * n, listed, 20_000)
    grows_linearly(lambda n: "(" * n, listed, 50_000)
    grows_linearly(lambda n: '(\\X) "/" ' + "a" * n + "\n", listed, 50_000)
    grows_linearly(lambda n: "(\\X) " + '"\\"' * n, listed, 20_000)
