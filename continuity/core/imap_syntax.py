"""IMAP syntax the replay sends: mailbox names, quoted strings, flag lists, dates, CRLF-only literals.

aioimaplib sends its command arguments as given (it does not quote mailbox names or flags),
so every argument built from stored data goes through here first:

* mailbox names are encoded in modified UTF-7 (RFC 3501 5.1.3) and sent as quoted strings;
* quoted strings escape ``\\`` and ``"`` and refuse CR, LF, NUL and 8-bit characters, which
  could otherwise end the command early and inject another one;
* flags are checked against the system flags and the atom grammar of keywords;
* message literals are checked to contain only CRLF line endings and no NUL.

The UTF-7 variant is written here because no small, maintained library provides it alone
(imapclient carries one inside a whole synchronous client); it is 40 lines and tested
against the RFC's examples.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

from continuity.core.content_checks import has_bare_line_ending

# Flags a client may set with APPEND (RFC 3501 2.3.2); \Recent is the server's own.
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
# atom-specials of RFC 3501 plus ']' (resp-specials), which keywords must not contain.
_ATOM = re.compile(r"^[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|}~\[]+$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ImapSyntaxError(ValueError):
    """A value cannot be sent safely in an IMAP command."""


def _b64_utf7(chunk: str) -> str:
    encoded = base64.b64encode(chunk.encode("utf-16-be")).decode("ascii").rstrip("=")
    return "&" + encoded.replace("/", ",") + "-"


def encode_mailbox(name: str) -> str:
    """A mailbox name in modified UTF-7 (printable ASCII stays, '&' becomes '&-')."""
    out: list[str] = []
    pending = ""
    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            if pending:
                out.append(_b64_utf7(pending))
                pending = ""
            out.append("&-" if char == "&" else char)
        else:
            pending += char
    if pending:
        out.append(_b64_utf7(pending))
    return "".join(out)


def decode_mailbox(encoded: str) -> str:
    """The inverse of :func:`encode_mailbox`; ImapSyntaxError on malformed input."""
    out: list[str] = []
    index = 0
    while index < len(encoded):
        char = encoded[index]
        if char != "&":
            out.append(char)
            index += 1
            continue
        end = encoded.find("-", index)
        if end < 0:
            raise ImapSyntaxError(f"unterminated modified UTF-7 in {encoded!r}")
        chunk = encoded[index + 1 : end]
        if not chunk:
            out.append("&")
        else:
            data = chunk.replace(",", "/")
            try:
                out.append(base64.b64decode(data + "=" * (-len(data) % 4)).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ImapSyntaxError(f"malformed modified UTF-7 in {encoded!r}") from exc
        index = end + 1
    return "".join(out)


def quote(text: str) -> str:
    """An IMAP quoted string; refuses what a quoted string cannot carry (CR, LF, NUL, non-ASCII)."""
    if any(char in "\r\n\x00" or ord(char) > 0x7E or (ord(char) < 0x20 and char != "\t") for char in text):
        raise ImapSyntaxError(f"{text[:60]!r} cannot be sent as an IMAP quoted string")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox_argument(name: str) -> str:
    """A mailbox name ready to be a command argument: modified UTF-7, then quoted."""
    if not name or any(not char.isprintable() for char in name):
        raise ImapSyntaxError(f"{name[:60]!r} is not a usable mailbox name")
    return quote(encode_mailbox(name))


def checked_flags(flags: str) -> tuple[str, ...]:
    """The flags of a stored flag string that may be APPENDed, validated.

    System flags are matched case-insensitively and written in their canonical form;
    keywords must be atoms. \\Recent (server-owned) is dropped; anything else unsafe raises.
    """
    canonical = {flag.lower(): flag for flag in SYSTEM_FLAGS}
    result: list[str] = []
    for word in flags.split():
        if word.lower() == "\\recent":
            continue
        if word.startswith("\\"):
            known = canonical.get(word.lower())
            if known is None:
                raise ImapSyntaxError(f"{word!r} is not an IMAP system flag")
            word = known
        elif not _ATOM.match(word):
            raise ImapSyntaxError(f"{word[:60]!r} is not a valid IMAP keyword")
        if word not in result:
            result.append(word)
    return tuple(result)


def flag_list(flags: tuple[str, ...]) -> str:
    """A parenthesised flag list, e.g. ``(\\Seen \\Flagged)``; flags must come from checked_flags."""
    return "(" + " ".join(flags) + ")"


def internal_date(timestamp: float) -> str:
    """A quoted INTERNALDATE in UTC, e.g. ``"05-Mar-2026 14:03:07 +0000"``."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return f'"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} {moment:%H:%M:%S} +0000"'


def check_literal(data: bytes) -> None:
    """Raise ImapSyntaxError unless data has only CRLF line endings and no NUL byte."""
    if has_bare_line_ending(data):
        raise ImapSyntaxError("the message has a bare CR or LF; only CRLF line endings are sent")
    if b"\x00" in data:
        raise ImapSyntaxError("the message contains a NUL byte, which an IMAP literal cannot carry")


def sequence_set(numbers: list[int]) -> str:
    """A compact IMAP sequence set ("1:4,7,9:10") of positive numbers."""
    ordered = sorted(set(numbers))
    if not ordered:
        raise ImapSyntaxError("an empty sequence set")
    parts: list[str] = []
    start = previous = ordered[0]
    for number in ordered[1:]:
        if number == previous + 1:
            previous = number
            continue
        parts.append(f"{start}:{previous}" if previous > start else str(start))
        start = previous = number
    parts.append(f"{start}:{previous}" if previous > start else str(start))
    return ",".join(parts)
