"""Expressions that see what an attacker sends stay linear: the webmail's HTML-to-text and the IMAP LIST reply.

grows_linearly is the measurement every tests/unit/test_linear_patterns_*.py module uses.

Each is run on adversarial inputs of growing size (the worst case, not the median): four
times the input may take at most eight times as long (quadratic would be sixteen,
exponential far more). On small inputs the rewritten forms give what the old ones gave.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from hypothesis import given
from hypothesis import strategies as st

from continuity.adapters.imap_append import _LIST_LINE
from continuity.core.mime_view import _without_blocks, html_to_text

_OLD_BLOCKS = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)


def _seconds(work: Callable[[], object]) -> float:
    """The least processor time of three runs (other processes' load does not count)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


Input = TypeVar("Input")


def grows_linearly(make: Callable[[int], Input], run: Callable[[Input], object], size: int) -> None:
    """Fail unless run on make(4 * size) takes less than 8 times as long as on make(size).

    Measured up to three times, passing on the first ratio under 8: a busy machine can
    stretch one run, but a quadratic expression is about 16 every time.
    """
    small, large = make(size), make(size * 4)
    ratios = []
    for _ in range(3):
        ratio = _seconds(lambda: run(large)) / max(_seconds(lambda: run(small)), 1e-6)
        if ratio < 8:
            return
        ratios.append(ratio)
    raise AssertionError(f"4x the input took {', '.join(f'{r:.1f}' for r in ratios)}x the time")


def test_html_to_text_is_linear_on_unclosed_blocks_and_tags() -> None:
    grows_linearly(lambda n: "<head" * n, html_to_text, 20_000)
    grows_linearly(lambda n: "<script>x" * n, html_to_text, 20_000)
    grows_linearly(lambda n: "<" * n, html_to_text, 50_000)
    grows_linearly(lambda n: "</head " * n, html_to_text, 20_000)


def test_imap_list_reply_is_linear_on_backslashes() -> None:
    def reply(count: int) -> bytes:
        return b'(\\HasNoChildren) "' + b"\\" * count + b"\r"

    grows_linearly(reply, _LIST_LINE.match, 50_000)
    assert _LIST_LINE.match(b'(\\HasNoChildren) "/" "Sent Items"') is not None
    found = _LIST_LINE.match(b'(\\Noselect) "\\\\" "a\\\\b"')
    assert found is not None and found.group("delim") == b'"\\\\"'


markup = st.lists(
    st.sampled_from(["<head>", "</head>", "<HEAD >", "</Head  >", "<script>", "</script>", "<style a=1>",
                     "</style>", "<p>", "text", " ", "<", ">", "<headline>", "</heads>"]),
    max_size=30,
).map("".join)  # fmt: skip


@given(markup)
def test_blocks_are_removed_as_the_old_expression_removed_them(text: str) -> None:
    assert _without_blocks(text) == _OLD_BLOCKS.sub(" ", text)
