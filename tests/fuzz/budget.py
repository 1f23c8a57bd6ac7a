"""What every fuzz test shares: how many examples, the time budget per input, and hostile inputs.

CI runs a few dozen examples per entry point (the whole folder in well under a minute);
``CONTINUITY_FUZZ_EXAMPLES=100000`` runs that many per entry point, for a long search on
demand. Inputs mix Hypothesis's own text and bytes with fragments known to hurt parsers
(unclosed markup, encoded-word openers, nested comments, quotes, backslashes), repeated
up to thousands of times: a quadratic parser takes seconds on them, a linear one
milliseconds, so the budget tells them apart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

Result = TypeVar("Result")

# Processor seconds one input may take (other processes' load does not count).
BUDGET = 2.0
_CI_EXAMPLES = 30

settings.register_profile(
    "continuity-fuzz",
    max_examples=int(os.environ.get("CONTINUITY_FUZZ_EXAMPLES", _CI_EXAMPLES)),
    deadline=None,  # the budget below is measured in processor time instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
FUZZ = settings.get_profile("continuity-fuzz")


def within_budget(work: Callable[[], Result]) -> Result:
    """work's result; fails when it took more than BUDGET seconds of processor time."""
    started = time.process_time()
    result = work()
    spent = time.process_time() - started
    assert spent <= BUDGET, f"took {spent:.2f} s of processor time (budget {BUDGET} s)"
    return result


# Fragments that have made parsers rescan or recurse: markup left open, RFC 2047 openers,
# address comments and quotes, IMAP quoting, MIME parameters and boundaries.
FRAGMENTS = (
    "<a href=", '<a x="', "<a x='>'=", "<!--", "<![cdata[", "<?", "</", "<", ">", "<div>", "<p>", "&#", "&amp",
    "=?", "=?a?q?", "?=", "=?utf-8?b?", "(", ")", '"', "\\", "<>", "@", ",", ";", ":", "boundary=", "--",
    "\r\n", "\r\n ", "\n", " ", "\t", "a", "0", "http://", "www.", "[", "]", "{", "%", "&", "-", ".",
    "\u0130", "\u00e9",
)  # fmt: skip


@st.composite
def hostile_text(draw: st.DrawFn, max_repeat: int = 6_000) -> str:
    """Text: Hypothesis's own, or a short run of fragments repeated up to max_repeat times between two texts."""
    if draw(st.booleans()):
        return draw(st.text(max_size=300))
    unit = "".join(draw(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=4)))
    repeat = draw(st.integers(min_value=1, max_value=max_repeat))
    return draw(st.text(max_size=20)) + unit * repeat + draw(st.text(max_size=20))


HEADER_NAMES = (
    "From", "To", "Cc", "Reply-To", "Subject", "Message-ID", "In-Reply-To", "References", "Date", "Content-Type",
    "Content-Disposition", "Content-Transfer-Encoding", "MIME-Version", "X-Mailer", "DKIM-Signature", "Received",
    "X-MS-Journal-Report",
)  # fmt: skip


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode("utf-8", "surrogateescape")


@st.composite
def raw_messages(draw: st.DrawFn) -> bytes:
    """A message as SMTP DATA would carry it: hostile header fields and body, CRLF lines; or any bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=2_000))
    fields = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), hostile_text(max_repeat=2_000)), max_size=5))
    content_type = draw(
        st.sampled_from(["", "text/plain", "text/html", 'multipart/mixed; boundary="b"', "message/rfc822"])
    )
    head = "".join(f"{name}: {value}\n" for name, value in fields)
    if content_type:
        head += f"Content-Type: {content_type}\n"
    body = draw(hostile_text())
    if draw(st.integers(0, 4)) == 0:  # nested as deep as ingest lets through (smtp.max_mime_depth, 100)
        levels = draw(st.lists(st.sampled_from(["multipart", "message"]), min_size=1, max_size=99))
        return _crlf(head + _content_type(levels[0], 0)) + b"\r\n" + _crlf(_nested_body(levels, body))
    if content_type.startswith("multipart"):
        part = draw(st.sampled_from(["text/html", "text/plain", "application/octet-stream"]))
        body = f"--b\nContent-Type: {part}\n\n{body}\n--b--\n"
    return _crlf(head) + b"\r\n" + _crlf(body)


def _content_type(kind: str, depth: int) -> str:
    return (
        "Content-Type: message/rfc822\n" if kind == "message" else f"Content-Type: multipart/mixed; boundary=b{depth}\n"
    )


def _nested_body(levels: list[str], leaf: str) -> str:
    """The body under a header of levels[0]: each further level inside the one before, then an HTML leaf."""
    pieces = []
    for depth, kind in enumerate(levels):
        if depth:
            pieces.append(_content_type(kind, depth) + "\n")
        if kind == "multipart":
            pieces.append(f"--b{depth}\n")
    pieces.append("Content-Type: text/html\n\n" + leaf)
    return "".join(pieces)
