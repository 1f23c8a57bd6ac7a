"""parse_email: the same Message as the standard library's compat32 parser, whichever path it takes."""

from __future__ import annotations

import email.parser
import email.policy
from email.message import Message
from pathlib import Path

import pytest

from continuity.core.message_view import parse_email, parse_message

CORPUS = sorted((Path(__file__).parents[2] / "data" / "corpus").rglob("*.eml"))
_FULL = email.parser.BytesParser(policy=email.policy.compat32)

EDGE_CASES = {
    "plain": b"From: a@b.test\r\nSubject: hi\r\n\r\nline one\r\n.line two\r\n",
    "no final line end": b"Subject: x\r\n\r\nlast line without an end",
    "empty body": b"Subject: x\r\n\r\n",
    "folded header": b"Subject: a\r\n long subject\r\nTo: c@d.test\r\n\r\nbody\r\n",
    "8-bit body": "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße, ça va?\r\n".encode(),
    "base64 text": b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n",
    "html": b"Content-Type: text/html\r\n\r\n<p>Hi <a href='https://x.test'>x</a></p>\r\n",
    "attachment only": b"Content-Type: application/pdf; name=a.pdf\r\n\r\nJVBERi0=\r\n",
    "multipart": (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        b"one\r\n--b\r\nContent-Type: text/html\r\n\r\n<b>two</b>\r\n--b--\r\n"
    ),
    "folded multipart type": (
        b"CONTENT-TYPE:\r\n MULTIPART/alternative; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b--\r\n"
    ),
    "message/rfc822": b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n",
    "missing separator": b"Subject: x\r\nthis is not a header\r\n\r\nbody\r\n",
    "bare LF in the header": b"Subject: x\nTo: y@z.test\r\n\r\nbody\r\n",
    "bare LF in the body": b"Subject: x\r\n\r\nbody\nmore\r\n",
    "no body separator": b"Subject: x\r\nTo: y@z.test\r\n",
    "unix from line": b"From someone Sat Jan  3 01:05:34 1996\r\nSubject: x\r\n\r\nbody\r\n",
    "bad content type": b"Content-Type: garbage\r\n\r\nbody\r\n",
    "header with a defect": b"Subject: x\r\n: no name\r\n\r\nbody\r\n",
}


def _same(fast: Message, full: Message) -> None:
    assert fast.items() == full.items()
    assert fast.is_multipart() == full.is_multipart()
    assert [type(defect) for defect in fast.defects] == [type(defect) for defect in full.defects]
    assert fast.get_unixfrom() == full.get_unixfrom()
    assert fast.as_bytes() == full.as_bytes()
    assert [part.get_payload(decode=True) for part in fast.walk()] == [
        part.get_payload(decode=True) for part in full.walk()
    ]


@pytest.mark.parametrize("raw", list(EDGE_CASES.values()), ids=list(EDGE_CASES))
def test_edge_cases_parse_as_the_standard_parser_does(raw: bytes) -> None:
    _same(parse_email(raw), _FULL.parsebytes(raw))


def test_the_corpus_parses_as_the_standard_parser_does() -> None:
    assert len(CORPUS) > 30
    for path in CORPUS:
        raw = path.read_bytes()
        _same(parse_email(raw), _FULL.parsebytes(raw))


def test_a_plain_message_gives_the_whole_view() -> None:
    view = parse_message(EDGE_CASES["html"])
    assert [link.url for link in view.links] == ["https://x.test"]
    assert view.text.strip() == "Hi x"
