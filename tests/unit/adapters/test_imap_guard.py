"""The IMAP reply guard: framing in any chunking, each bound refused with an error naming it, the deadline."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from continuity.adapters.imap_guard import ReplyGuard, ReplyLimits, _literal_size
from continuity.errors import ContinuityError, PrimaryReplyError

SERVER = "127.0.0.1:993"
REPLY = (
    b"* 1 FETCH (UID 7 BODY[HEADER.FIELDS (X-CONTINUITY-REPLAY)] {26}\r\n"
    b"X-Continuity-Replay: a;b\r\n"
    b")\r\n"
    b"A1 OK done\r\n"
)
WHOLE_LINES = (REPLY.split(b"\r\n", 1)[0] + b"\r\n", b")\r\n", b"A1 OK done\r\n")


class Recorder:
    """What the guard handed on, and whether it dropped the connection."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.dropped = False

    def guard(self, limits: ReplyLimits | None = None, command: str = "FETCH") -> ReplyGuard:
        guard = ReplyGuard(SERVER, limits or ReplyLimits(), self.pieces.append, self._drop)
        guard.watch(command)
        return guard

    def _drop(self) -> None:
        self.dropped = True


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_any_chunking_hands_on_whole_lines_and_the_literal(cuts: list[int]) -> None:
    recorder = Recorder()
    guard = recorder.guard()
    for chunk in _chunks(REPLY, cuts):
        guard.feed(chunk)
    assert guard.error is None and not recorder.dropped
    assert b"".join(recorder.pieces) == REPLY
    literal_start = REPLY.index(b"X-Continuity-Replay:")
    literal = range(literal_start, literal_start + 26)
    offset = 0
    for piece in recorder.pieces:  # each piece is a part of the literal or one whole line
        end = offset + len(piece)
        assert (offset in literal and end - 1 in literal) or (piece in WHOLE_LINES), piece
        offset = end


def _refused(guard: ReplyGuard, recorder: Recorder, bound: str) -> PrimaryReplyError:
    assert isinstance(guard.error, PrimaryReplyError), guard.error
    assert isinstance(guard.error, ContinuityError)
    assert recorder.dropped
    assert guard.error.bound == bound and guard.error.server == SERVER
    assert SERVER in str(guard.error) and bound in str(guard.error)
    return guard.error


def test_a_line_without_end_is_refused_at_the_limit_without_waiting_for_more() -> None:
    recorder = Recorder()
    guard = recorder.guard(ReplyLimits(line=4096), "LIST")
    guard.feed(b'* LIST () "/" ' + b"\\" * 5000)
    _refused(guard, recorder, "LIST line")
    assert recorder.pieces == []
    guard.feed(b"\r\nA1 OK\r\n")  # nothing more is handed on
    assert recorder.pieces == []


def test_an_announced_literal_over_the_limit_is_refused_before_its_bytes() -> None:
    recorder = Recorder()
    guard = recorder.guard()
    guard.feed(b"* 1 FETCH (BODY[HEADER] {2000000000}\r\n")
    error = _refused(guard, recorder, "FETCH literal")
    assert "2000000000" in str(error)
    assert recorder.pieces == []


def test_literals_add_up_within_one_reply() -> None:
    recorder = Recorder()
    guard = recorder.guard(ReplyLimits(fetch=100))
    block = b"* 1 FETCH (BODY[HEADER] {60}\r\n" + b"x" * 60 + b")\r\n"
    guard.feed(block)
    assert guard.error is None
    guard.feed(block)
    _refused(guard, recorder, "FETCH literal")


def test_a_new_command_gets_a_new_budget() -> None:
    recorder = Recorder()
    guard = recorder.guard(ReplyLimits(lines=100), "SELECT")
    for _ in range(2):
        guard.watch("SELECT")
        guard.feed(b"* 1 EXISTS\r\n" * 99)
    assert guard.error is None
    guard.feed(b"* 1 EXISTS\r\n" * 2)
    _refused(guard, recorder, "SELECT lines")


def test_endless_untagged_lines_are_refused() -> None:
    recorder = Recorder()
    guard = recorder.guard(command="SEARCH")
    for _ in range(200):
        guard.feed(b"* OK still thinking\r\n" * 1000)
    _refused(guard, recorder, "SEARCH lines")


def test_a_search_result_line_may_be_long_but_not_endless() -> None:
    recorder = Recorder()
    guard = recorder.guard(ReplyLimits(listing=1024 * 1024), "SEARCH")
    guard.feed(b"* SEARCH" + b" 1234567" * 100_000 + b"\r\nA1 OK\r\n")
    assert guard.error is None
    guard.watch("SEARCH")
    guard.feed(b"* SEARCH" + b" 1234567" * 200_000)
    _refused(guard, recorder, "SEARCH line")


def test_append_takes_one_continuation_request() -> None:
    recorder = Recorder()
    guard = recorder.guard(command="APPEND")
    guard.feed(b"+ go ahead\r\n")
    assert guard.error is None
    guard.feed(b"+ more\r\n")
    _refused(guard, recorder, "APPEND continuations")


def test_a_bare_line_feed_is_refused() -> None:
    recorder = Recorder()
    guard = recorder.guard(command="LIST")
    guard.feed(b'* LIST () "/" INBOX\n')
    _refused(guard, recorder, "syntax")


def test_a_long_line_dripped_byte_by_byte_costs_linear_time() -> None:
    recorder = Recorder()
    guard = recorder.guard(command="LIST")
    started = time.perf_counter()
    for _ in range(64 * 1024 - 2):
        guard.feed(b"a")
    guard.feed(b"\r\n")
    assert time.perf_counter() - started < 1.0
    assert guard.error is None and recorder.pieces[0] == b"a" * (64 * 1024 - 2) + b"\r\n"


@pytest.mark.parametrize(
    ("line", "size"),
    [
        (b"* 1 FETCH (BODY[] {12}\r\n", 12),
        (b"{0}\r\n", 0),
        (b"* LIST () NIL {x}\r\n", None),
        (b"* OK {12\r\n", None),
        (b"* OK {}\r\n", None),
        (b"* 1 FETCH (BODY[] {" + b"9" * 40 + b"}\r\n", 10**12),
        (b"* OK no literal\r\n", None),
    ],
)
def test_literal_size(line: bytes, size: int | None) -> None:
    assert _literal_size(line) == size


async def test_a_command_past_its_deadline_fails_naming_it_and_drops_the_connection() -> None:
    recorder = Recorder()
    guard = recorder.guard()
    started = time.monotonic()
    with pytest.raises(PrimaryReplyError, match=r"FETCH did not finish within 0\.2 s") as caught:
        await guard.run("FETCH", asyncio.sleep(30), 0.2)
    assert time.monotonic() - started < 2
    assert caught.value.bound == "FETCH deadline" and recorder.dropped


async def test_a_broken_bound_ends_the_command_at_once() -> None:
    recorder = Recorder()
    guard = recorder.guard()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, guard.feed, b"x" * 70_000)
    with pytest.raises(PrimaryReplyError, match="bound: LIST line"):
        await guard.run("LIST", asyncio.sleep(30), 10)
    with pytest.raises(PrimaryReplyError):  # the connection is gone: no further command runs
        await guard.run("LIST", asyncio.sleep(0), 10)


async def test_a_lost_connection_ends_the_command_with_an_os_error() -> None:
    recorder = Recorder()
    guard = recorder.guard()
    asyncio.get_running_loop().call_later(0.05, guard.lost, None)
    with pytest.raises(ConnectionResetError, match="closed the connection"):
        await guard.run("SELECT", asyncio.sleep(30), 10)


async def test_a_command_within_bounds_returns_its_result() -> None:
    recorder = Recorder()
    guard = recorder.guard()

    async def answer() -> str:
        await asyncio.sleep(0.01)
        return "OK"

    assert await guard.run("NOOP", answer(), 5) == "OK"
