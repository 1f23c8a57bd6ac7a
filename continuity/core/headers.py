"""Reading the few header fields the queue shows, and writing the Received trace header."""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime

from continuity.core.content_checks import header_length

_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_FIELD_MAX = 998


@dataclass(frozen=True, slots=True)
class SummaryHeaders:
    """Message-ID and Subject as found in the message (raw, possibly RFC 2047 encoded)."""

    message_id: str
    subject: str


def _clean(value: object) -> str:
    text = str(value) if value is not None else ""
    return " ".join(text.split())[:_FIELD_MAX]


def read_summary_headers(data: bytes) -> SummaryHeaders:
    """Parse only the header section of data and return the fields the queue lists."""
    headers = _HEADER_PARSER.parsebytes(data[: header_length(data)])
    return SummaryHeaders(message_id=_clean(headers.get("Message-ID")), subject=_clean(headers.get("Subject")))


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """What a Received header records about one SMTP transaction."""

    client_helo: str
    client_address: str
    server_hostname: str
    protocol: str
    queue_id: str
    recipient: str | None
    timestamp: float


def _printable(text: str) -> str:
    # Header fields must not carry CR, LF or other control characters from the client.
    return "".join(char if char.isprintable() and char not in "()" else "?" for char in text)[:255]


def build_received_header(info: TraceInfo) -> bytes:
    """A Received header (RFC 5321 section 4.4) ending in CRLF; it names no software version."""
    recipient = f"\r\n\tfor <{_printable(info.recipient)}>" if info.recipient else ""
    date = email.utils.format_datetime(datetime.fromtimestamp(info.timestamp, tz=UTC))
    line = (
        f"Received: from {_printable(info.client_helo) or 'unknown'} ([{info.client_address}])\r\n"
        f"\tby {info.server_hostname} with {info.protocol} id {info.queue_id}{recipient};\r\n"
        f"\t{date}\r\n"
    )
    return line.encode("utf-8", errors="replace")
