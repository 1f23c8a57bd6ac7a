"""Checks on the bytes of a message received in DATA, before it may be stored.

These close SMTP smuggling on both sides (a bare CR, a bare LF or a NUL is never
stored, so it can never be replayed into the primary) and enforce the Postfix-style
limits on header size and MIME structure (nesting, parts, header sections, parameters,
part size) with a bounded walk (mime_structure.py), so that nothing parses a message
that is over them. Every check here is linear in the message's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from continuity.core.mime_structure import Breach, StructureLimits, find_breach


class ContentProblem(StrEnum):
    """Why the content of a message cannot be accepted."""

    BARE_LINE_ENDING = "bare_line_ending"
    NUL_BYTE = "nul_byte"
    HEADER_TOO_LARGE = "header_too_large"
    MIME_TOO_DEEP = "mime_too_deep"
    TOO_MANY_PARTS = "too_many_parts"
    PART_HEADER_TOO_LARGE = "part_header_too_large"
    HEADERS_TOO_LARGE = "headers_too_large"
    TOO_MANY_PARAMETERS = "too_many_parameters"
    PART_TOO_LARGE = "part_too_large"


_BY_BREACH = {
    Breach.DEPTH: ContentProblem.MIME_TOO_DEEP,
    Breach.PARTS: ContentProblem.TOO_MANY_PARTS,
    Breach.PART_HEADER: ContentProblem.PART_HEADER_TOO_LARGE,
    Breach.TOTAL_HEADER: ContentProblem.HEADERS_TOO_LARGE,
    Breach.PARAMETERS: ContentProblem.TOO_MANY_PARAMETERS,
    Breach.PART_SIZE: ContentProblem.PART_TOO_LARGE,
}


@dataclass(frozen=True, slots=True)
class ContentLimits:
    """Limits applied to message content (the [smtp] settings of the same names)."""

    max_header_size: int
    max_mime_depth: int
    max_mime_parts: int = 1000
    max_part_header_size: int = 102_400
    max_total_header_size: int = 1_048_576
    max_header_parameters: int = 64
    max_part_size: int = 52_428_800

    @property
    def structure(self) -> StructureLimits:
        """The limits the MIME walk applies."""
        return StructureLimits(
            self.max_mime_depth,
            self.max_mime_parts,
            self.max_part_header_size,
            self.max_total_header_size,
            self.max_header_parameters,
            self.max_part_size,
        )


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


def find_content_problem(data: bytes, limits: ContentLimits) -> ContentProblem | None:
    """The first problem that forbids storing data, or None when it may be stored."""
    if has_bare_line_ending(data):
        return ContentProblem.BARE_LINE_ENDING
    if b"\x00" in data:
        return ContentProblem.NUL_BYTE
    if header_length(data) > limits.max_header_size:
        return ContentProblem.HEADER_TOO_LARGE
    breach = find_breach(data, limits.structure)
    return _BY_BREACH[breach] if breach is not None else None
