"""The DATA payload built for a transaction is byte for byte what aiosmtplib's own DATA would send."""

from __future__ import annotations

from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given, settings
from hypothesis import strategies as st

from continuity.adapters.smtp_transaction import data_bytes, smtp_path

_PIECES = st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"\r\n.\r\n", b"a", b"From: x\r\n", b"\x00", b"\xff"])


@settings(max_examples=500)
@given(st.lists(st.one_of(_PIECES, st.binary(max_size=8)), max_size=20).map(b"".join))
def test_payload_matches_aiosmtplib(message: bytes) -> None:
    normalized = normalize_message_line_endings(message)
    payload, size = data_bytes(message)
    assert payload == PERIOD_REGEX.sub(b"..", normalized) + b".\r\n"
    assert size == len(normalized)


def test_a_leading_dot_and_dots_after_line_breaks_are_doubled() -> None:
    assert data_bytes(b".hidden\r\n.\r\nend") == (b"..hidden\r\n..\r\nend\r\n.\r\n", len(b".hidden\r\n.\r\nend\r\n"))


def test_addresses_that_could_inject_commands_are_refused() -> None:
    assert smtp_path("user@example.com", utf8=False) == b"<user@example.com>"
    assert smtp_path("user@example.com>\r\nRCPT TO:<x@y", utf8=False) is None
    assert smtp_path("us er@example.com", utf8=False) is None
    assert smtp_path("jörg@example.com", utf8=False) is None
    assert smtp_path("jörg@example.com", utf8=True) == "<jörg@example.com>".encode()
