"""Everything that reads the primary's IMAP replies runs in linear time on adversarial lines.

The guard (continuity.adapters.imap_guard) bounds a line to 64 KiB and a SEARCH result to
16 MiB, but within those bounds every expression and parser that sees a reply must stay
linear: LIST (both clients), SEARCH numbers, FETCH's UID and marker headers, APPENDUID,
the throttling words of a NO, and aioimaplib's own status, literal and message patterns.
Each is run on inputs of growing size: four times the input may take at most eight times
as long (quadratic would be sixteen).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aioimaplib
import pytest

from continuity.adapters import imap_append, imap_search
from continuity.core.replay_journal import classify_imap_no
from continuity.core.replay_plan import parse_marker_fields


def _seconds(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _grows_linearly(make: Callable[[int], bytes], run: Callable[[bytes], object], size: int) -> None:
    small, large = make(size), make(size * 4)
    ratios = []
    # Other work on the machine can slow one measurement: a linear parser shows it in one of
    # five tries, a quadratic one (about 16) in none.
    for _ in range(5):
        ratios.append(_seconds(lambda: run(large)) / max(_seconds(lambda: run(small)), 1e-5))
        if ratios[-1] < 8:
            return
    raise AssertionError(f"4x the input took {min(ratios):.1f}x the time at best")


ADVERSARIAL: dict[str, Callable[[int], bytes]] = {
    "backslashes": lambda n: b'(\\Noselect) "' + b"\\" * n,
    "escaped quotes": lambda n: b'() "' + b'\\"' * n,
    "braces": lambda n: b"* 1 FETCH (BODY[] {" * n,
    "digits and braces": lambda n: b"{1" * n + b"}",
    "uid words": lambda n: b"UID " * n,
    "appenduid": lambda n: b"[APPENDUID 1 " * n,
    "numbers": lambda n: b" 1" * n,
    "busy words": lambda n: b"server server is " * n,
    "marker folding": lambda n: b"X-Continuity-Replay:\r\n \r\n\t" * n,
}

PARSERS: dict[str, Callable[[bytes], object]] = {
    "imap_append LIST": lambda line: imap_append._LIST_LINE.match(line),
    "imap_search LIST": lambda line: imap_search.parse_list([line]),
    "UID": lambda line: imap_append._UID.search(line),
    "APPENDUID": lambda line: imap_append._APPENDUID.search(line.decode("ascii", "replace")),
    "SEARCH numbers": lambda line: imap_append._numbers([line, b"A1 OK"]),
    "marker header": parse_marker_fields,
    "NO classification": lambda line: classify_imap_no(line.decode("ascii", "replace")),
    "aioimaplib literal": lambda line: aioimaplib.aioimaplib.literal_data_re.match(line),
    "aioimaplib status": lambda line: aioimaplib.aioimaplib.tagged_status_response_re.match(line),
    "aioimaplib message": lambda line: aioimaplib.aioimaplib.message_data_re.match(line),
}


@pytest.mark.parametrize("parser", list(PARSERS))
@pytest.mark.parametrize("shape", list(ADVERSARIAL))
def test_reply_parsing_is_linear(parser: str, shape: str) -> None:
    _grows_linearly(ADVERSARIAL[shape], PARSERS[parser], 12_000)


def test_the_parsers_still_read_ordinary_replies() -> None:
    assert imap_search.parse_list([b'(\\HasNoChildren) "/" "Sent Items"', b'(\\Noselect) "/" "x"']) == ["Sent Items"]
    assert imap_append._numbers([b"SEARCH 3 5 8", b"A1 OK"]) == [3, 5, 8]
    assert parse_marker_fields(b"X-Continuity-Replay: q1;\r\n sha256=ab\r\n\r\n") == ["q1; sha256=ab"]
    found = imap_append._APPENDUID.search("OK [APPENDUID 7 42] done")
    assert found is not None and found.group(2) == "42"
