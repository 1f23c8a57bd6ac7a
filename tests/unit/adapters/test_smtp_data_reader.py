"""The chunked DATA reader gives exactly what aiosmtpd's line-by-line reader gives."""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from continuity.adapters.smtp_data import DataTooLarge, LineTooLong, read_data

LINE_LIMIT = 200
SIZE_LIMIT = 2000

_pieces = st.sampled_from(
    [b"a", b"tempor.", b"x.\r\n", b".", b"..", b"\r\n", b"\r", b"\n", b".\r\n", b"\r\n.", b"x" * 150, b"\x00"]
)


def _stream(parts: list[bytes], trailer: bytes) -> bytes:
    return b"".join(parts) + b"\r\n.\r\n" + trailer


async def _aiosmtpd(stream: bytes) -> tuple[str, bytes]:
    captured: dict[str, bytes] = {}
    loop = asyncio.get_running_loop()

    class Handler:
        async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str:
            captured["content"] = envelope.original_content  # type: ignore[attr-defined]
            return "250 OK"

    protocol = SMTP(Handler(), data_size_limit=SIZE_LIMIT, loop=loop)
    protocol.line_length_limit = LINE_LIMIT
    reader = asyncio.StreamReader(limit=LINE_LIMIT, loop=loop)
    reader.feed_data(stream)
    reader.feed_eof()
    written: list[bytes] = []

    class Writer:
        def write(self, data: bytes) -> None:
            written.append(data)

        async def drain(self) -> None:
            return None

    protocol._reader = reader
    protocol._writer = Writer()  # type: ignore[assignment]
    protocol.transport = object()  # type: ignore[assignment]
    protocol.session = type("S", (), {"peer": "t", "host_name": "x", "extended_smtp": True, "ssl": None})()
    protocol.envelope = protocol._create_envelope()
    protocol.envelope.rcpt_tos.append("a@b.c")
    await protocol.smtp_DATA(None)
    rest = await reader.read()
    return written[-1].decode()[:3], captured.get("content", b"") + b"|" + rest


async def _ours(stream: bytes) -> tuple[str, bytes]:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    reader.feed_data(stream)
    reader.feed_eof()
    result = await read_data(reader, SIZE_LIMIT, LINE_LIMIT)
    rest = await reader.read()
    assert reader._limit == LINE_LIMIT, "the reader's limit must be restored"  # type: ignore[attr-defined]
    if isinstance(result, DataTooLarge):
        return "552", b"|" + rest
    if isinstance(result, LineTooLong):
        return "500", b"|" + rest
    return "250", result + b"|" + rest


@settings(max_examples=1500, deadline=None)
@given(parts=st.lists(_pieces, max_size=60), trailer=st.sampled_from([b"", b"QUIT\r\n", b"MAIL FROM:<x@y.z>\r\n"]))
def test_same_result_as_aiosmtpd(parts: list[bytes], trailer: bytes) -> None:
    stream = _stream(parts, trailer)

    async def both() -> None:
        theirs = await _aiosmtpd(stream)
        ours = await _ours(stream)
        assert ours == theirs, stream

    asyncio.run(both())


def test_empty_message_and_leading_dot() -> None:
    async def check() -> None:
        assert await _ours(b".\r\nQUIT\r\n") == ("250", b"|QUIT\r\n")
        assert await _ours(b"..x\r\n.\r\n") == ("250", b".x\r\n|")
        assert await _ours(b"a\r\n.\r\n") == ("250", b"a\r\n|")

    asyncio.run(check())


def test_oversize_is_read_to_the_end_and_discarded() -> None:
    async def check() -> None:
        stream = b"y" * 150 + b"\r\n"
        code, rest = await _ours(stream * 40 + b".\r\nNOOP\r\n")
        assert (code, rest) == ("552", b"|NOOP\r\n")

    asyncio.run(check())
