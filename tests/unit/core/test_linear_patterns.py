"""Expressions that see what an attacker sends stay linear: the webmail's HTML-to-text and the IMAP LIST reply.

Each is run on adversarial inputs of growing size (the worst case, not the median): four
times the input may take at most eight times as long (quadratic would be sixteen,
exponential far more). On small inputs the rewritten forms give what the old ones gave.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from continuity.adapters.imap_append import _LIST_LINE
from continuity.core.mime_view import _without_blocks, html_to_text

_OLD_BLOCKS = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)


def _seconds(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _grows_linearly(make: Callable[[int], object], run: Callable[[object], object], size: int) -> None:
    small, large = make(size), make(size * 4)
    ratio = _seconds(lambda: run(large)) / max(_seconds(lambda: run(small)), 1e-6)
    assert ratio < 8, f"4x the input took {ratio:.1f}x the time"


def test_html_to_text_is_linear_on_unclosed_blocks_and_tags() -> None:
    _grows_linearly(lambda n: "<head" * n, lambda markup: html_to_text(str(markup)), 20_000)
    _grows_linearly(lambda n: "<script>x" * n, lambda markup: html_to_text(str(markup)), 20_000)
    _grows_linearly(lambda n: "<" * n, lambda markup: html_to_text(str(markup)), 50_000)
    _grows_linearly(lambda n: "</head " * n, lambda markup: html_to_text(str(markup)), 20_000)


def test_imap_list_reply_is_linear_on_backslashes() -> None:
    def reply(count: int) -> bytes:
        return b'(\\HasNoChildren) "' + b"\\" * count + b"\r"

    _grows_linearly(reply, lambda line: _LIST_LINE.match(bytes(line)), 50_000)  # type: ignore[call-overload]
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
