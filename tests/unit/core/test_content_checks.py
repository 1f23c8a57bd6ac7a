"""Content checks: smuggling bytes, header size, MIME depth."""

from __future__ import annotations

import pytest

from continuity.core.content_checks import (
    ContentLimits,
    ContentProblem,
    find_content_problem,
    has_bare_line_ending,
    header_length,
)
from tests.support.messages import nested_multipart

LIMITS = ContentLimits(max_header_size=200, max_mime_depth=3)


@pytest.mark.parametrize("data", [b"a\nb", b"a\rb", b"a\r\r\nb", b"a\r\n\n", b"\n", b"\r"])
def test_bare_line_endings_are_found(data: bytes) -> None:
    assert has_bare_line_ending(data)
    assert find_content_problem(data, LIMITS) is ContentProblem.BARE_LINE_ENDING


def test_clean_message_passes() -> None:
    assert find_content_problem(b"Subject: x\r\n\r\nhello\r\n", LIMITS) is None


def test_nul_byte() -> None:
    assert find_content_problem(b"Subject: x\r\n\r\nhel\x00lo\r\n", LIMITS) is ContentProblem.NUL_BYTE


def test_header_length() -> None:
    assert header_length(b"A: b\r\nC: d\r\n\r\nbody") == len(b"A: b\r\nC: d\r\n")
    assert header_length(b"\r\nbody only") == 0
    assert header_length(b"A: headers only\r\n") == len(b"A: headers only\r\n")
    big = b"X: " + b"y" * 250 + b"\r\n\r\nbody\r\n"
    assert find_content_problem(big, LIMITS) is ContentProblem.HEADER_TOO_LARGE


def test_mime_depth_limit_counts_real_nesting() -> None:
    assert find_content_problem(nested_multipart(2), LIMITS) is None  # depth 3 (2 multiparts + leaf)
    assert find_content_problem(nested_multipart(3), LIMITS) is ContentProblem.MIME_TOO_DEEP


def test_many_boundary_words_without_nesting_are_fine() -> None:
    text = b"Subject: boundary talk\r\n\r\n" + b"boundary message/rfc822 boundary\r\n" * 10
    assert find_content_problem(text, LIMITS) is None
