"""A bounded walk over a message's MIME structure, before anything parses it.

Python's email parser is quadratic on some shapes (a header field of thousands of
folded parameters, thousands of parts) and a message may be 50 MB, so the limits on
structure are checked first, by this walk, which is linear: it finds header ends and
boundary delimiters with ``bytes.find`` (C), looks only inside header sections (each
at most ``max_part_header_size`` bytes, all together at most ``max_total_header_size``)
and stops at the first limit it meets. Written here because no library offers a MIME
walk that stops at limits before doing the work; it reads only what the limits bound.

Two more bounds keep the walk itself cheap on a crafted message: the bytes searched for
delimiters, all nesting levels together, may be at most ``_SCAN_FACTOR`` times the
message (each level searches its own region again, so a deep chain of large regions
would cost depth times size), and lines that start like a delimiter but are not one are
counted; past either bound the message is refused as too deeply nested or as having
too many parts.

What it measures, per part: the bytes of its header section, the parameters (``;``) of
each ``Content-*`` field, the bytes of its body (its decoded size is at most this); and
over the message: the number of parts and the nesting depth (each multipart and each
message/* level adds one, as the parser counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

_CRLF = b"\r\n"
_SCAN_FACTOR = 8
_SCAN_SLACK = 1 << 20
_LOOK_ALIKES = 1000
_BLANK_LINE = b"\r\n\r\n"


class Breach(StrEnum):
    """Which structural limit a message exceeds."""

    DEPTH = "depth"
    PARTS = "parts"
    PART_HEADER = "part_header"
    TOTAL_HEADER = "total_header"
    PARAMETERS = "parameters"
    PART_SIZE = "part_size"


@dataclass(frozen=True, slots=True)
class StructureLimits:
    """The structural limits (see the module docstring)."""

    max_depth: int = 100
    max_parts: int = 1000
    max_part_header_size: int = 102_400
    max_total_header_size: int = 1_048_576
    max_parameters: int = 64
    max_part_size: int = 52_428_800


@dataclass(slots=True)
class _Budget:
    scan: int  # bytes the delimiter searches may still cover
    look_alikes: int  # lines like a delimiter that are not one, still allowed


@dataclass(frozen=True, slots=True)
class _Part:
    start: int  # first byte of the part's header section
    end: int  # one past its last byte
    depth: int


def find_breach(data: bytes, limits: StructureLimits) -> Breach | None:
    """The first structural limit data exceeds, or None. Linear in len(data) times the depth reached."""
    pending = [_Part(0, len(data), 1)]
    parts = 0
    header_total = 0
    budget = _Budget(_SCAN_FACTOR * len(data) + _SCAN_SLACK, _LOOK_ALIKES)
    while pending:
        part = pending.pop()
        parts += 1
        if parts > limits.max_parts:
            return Breach.PARTS
        if part.depth > limits.max_depth:
            return Breach.DEPTH
        header_end, body_start = _header_bounds(data, part)
        header_size = header_end - part.start
        header_total += header_size
        if header_size > limits.max_part_header_size:
            return Breach.PART_HEADER
        if header_total > limits.max_total_header_size:
            return Breach.TOTAL_HEADER
        content_type, most_parameters = _content_fields(data[part.start : header_end])
        if most_parameters > limits.max_parameters:
            return Breach.PARAMETERS
        if part.end - body_start > limits.max_part_size:
            return Breach.PART_SIZE
        children = _children(data, content_type, body_start, part, budget)
        if budget.scan < 0:
            return Breach.DEPTH
        if budget.look_alikes < 0:
            return Breach.PARTS
        # Depth first, in document order, so that a deep chain is met before a wide one ends.
        pending.extend(reversed(children))
    return None


def _header_bounds(data: bytes, part: _Part) -> tuple[int, int]:
    """Where the part's header section ends (before its blank line) and its body starts."""
    if data.startswith(_CRLF, part.start, part.end):
        return part.start, min(part.start + 2, part.end)
    blank = data.find(_BLANK_LINE, part.start, part.end)
    if blank < 0:
        return part.end, part.end
    return blank + 2, blank + 4


def _content_fields(header: bytes) -> tuple[bytes, int]:
    """The part's Content-Type value (unfolded, as written) and the most parameters of any Content-* field."""
    content_type = b""
    most = 0
    for field in _unfold(header).split(_CRLF):
        name, colon, value = field.partition(b":")
        if not colon or not name.strip().lower().startswith(b"content-"):
            continue
        most = max(most, value.count(b";"))
        if name.strip().lower() == b"content-type" and not content_type:
            content_type = value.strip()
    return content_type, most


def _unfold(header: bytes) -> bytes:
    return header.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")


def _children(data: bytes, content_type: bytes, body_start: int, part: _Part, budget: _Budget) -> list[_Part]:
    """The parts nested directly in this one: a multipart's parts, or a message/* part's message."""
    lowered = content_type.lower()
    if lowered.startswith(b"message/"):
        return [_Part(body_start, part.end, part.depth + 1)] if body_start < part.end else []
    if not lowered.startswith(b"multipart/"):
        return []
    boundary = _boundary(content_type, lowered)
    if not boundary:
        return []
    budget.scan -= part.end - body_start
    if budget.scan < 0:
        return []
    return _split(data, b"\r\n--" + boundary, body_start, part, budget)


def _boundary(content_type: bytes, lowered: bytes) -> bytes:
    """The boundary parameter of a Content-Type value, as written (lowered is the value in lower case)."""
    at = lowered.find(b"boundary=")
    if at < 0:
        return b""
    value = content_type[at + len(b"boundary=") :]
    if value.startswith(b'"'):
        return value[1:].partition(b'"')[0]
    return value.split(b";", 1)[0].strip()


def _split(data: bytes, delimiter: bytes, body_start: int, part: _Part, budget: _Budget) -> list[_Part]:
    """The parts between the delimiter lines of a multipart body (the preamble and epilogue are not parts)."""
    children: list[_Part] = []
    # The CRLF before the first delimiter may be the blank line that ends the header section.
    search = body_start - 2 if body_start >= 2 and data[body_start - 2 : body_start] == _CRLF else body_start
    opened = -1  # where the current part's content starts, once a delimiter opened it
    while True:
        found = _find_delimiter(data, delimiter, search, part.end, budget)
        if found < 0:
            break
        after = found + len(delimiter)
        closing = data.startswith(b"--", after)
        if opened >= 0:
            children.append(_Part(opened, found, part.depth + 1))
        if closing:
            break
        line_end = data.find(_CRLF, after, part.end)
        if line_end < 0:
            break
        opened = line_end + 2
        search = line_end
    return children


def _find_delimiter(data: bytes, delimiter: bytes, start: int, end: int, budget: _Budget) -> int:
    """The next delimiter line at or after start: the boundary followed by "--", spaces or the line's end."""
    while True:
        found = data.find(delimiter, start, end)
        if found < 0:
            return -1
        after = data[found + len(delimiter) : found + len(delimiter) + 2]
        if after in (b"--", _CRLF) or after[:1] in (b" ", b"\t") or len(after) < 2:
            return found
        budget.look_alikes -= 1
        if budget.look_alikes < 0:
            return -1
        start = found + 1
