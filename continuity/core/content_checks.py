"""Checks on the bytes of a message received in DATA, before it may be stored.

These close SMTP smuggling on both sides (a bare CR, a bare LF or a NUL is never
stored, so it can never be replayed into the primary) and enforce the Postfix-style
limits on header size and MIME nesting.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum


class ContentProblem(StrEnum):
    """Why the content of a message cannot be accepted."""

    BARE_LINE_ENDING = "bare_line_ending"
    NUL_BYTE = "nul_byte"
    HEADER_TOO_LARGE = "header_too_large"
    MIME_TOO_DEEP = "mime_too_deep"


@dataclass(frozen=True, slots=True)
class ContentLimits:
    """Limits applied to message content."""

    max_header_size: int
    max_mime_depth: int


def header_length(data: bytes) -> int:
    """Length of the header section (up to and excluding the empty line), or all of data."""
    end = data.find(b"\r\n\r\n")
    if data.startswith(b"\r\n"):
        return 0
    return len(data) if end < 0 else end + 2


def has_bare_line_ending(data: bytes) -> bool:
    """True when data holds a CR not followed by LF or an LF not preceded by CR."""
    pairs = data.count(b"\r\n")
    return data.count(b"\n") != pairs or data.count(b"\r") != pairs


def mime_depth(message: Message) -> int:
    """Nesting depth of a parsed message: 1 for a single part, +1 per multipart or message/* level."""
    payload = message.get_payload()
    if isinstance(payload, list):
        return 1 + max((mime_depth(part) for part in payload if isinstance(part, Message)), default=0)
    return 1


def _nesting_upper_bound(data: bytes) -> int:
    # Every nesting level needs either a multipart boundary parameter or a message/* type,
    # so counting both bounds the depth from above without parsing the message.
    lowered = data.lower()
    return 1 + lowered.count(b"boundary") + lowered.count(b"message/")


def find_content_problem(data: bytes, limits: ContentLimits) -> ContentProblem | None:
    """The first problem that forbids storing data, or None when it may be stored."""
    if has_bare_line_ending(data):
        return ContentProblem.BARE_LINE_ENDING
    if b"\x00" in data:
        return ContentProblem.NUL_BYTE
    if header_length(data) > limits.max_header_size:
        return ContentProblem.HEADER_TOO_LARGE
    if _nesting_upper_bound(data) > limits.max_mime_depth:
        parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
        if mime_depth(parsed) > limits.max_mime_depth:
            return ContentProblem.MIME_TOO_DEEP
    return None
