"""Every SMTP reply the listener sends on its own behalf, in one place.

Replies carry RFC 3463 enhanced status codes and say what is wrong in plain words;
none names software or versions.
"""

from __future__ import annotations

from continuity.core.content_checks import ContentLimits, ContentProblem
from continuity.core.pipeline import Verdict
from continuity.core.recipients import RecipientVerdict

OK_SENDER = "250 2.1.0 Ok"
OK_RECIPIENT = "250 2.1.5 Ok"
TOO_MANY_SESSIONS = "421 4.7.0 Too many connections from your address; try again later"
TOO_MANY_ERRORS = "421 4.7.0 Too many errors in this session; closing connection"
SHUTTING_DOWN = "421 4.3.2 Service shutting down; try again later"
RATE_LIMITED = "451 4.7.1 Too many messages from your address; try again later"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients for one message"
STORAGE_FAILURE = "451 4.3.0 Temporary storage failure; message not accepted, try again later"
FILTER_UNAVAILABLE = "451 4.7.1 The message cannot be checked right now; try again later"


def too_much_data(limit: int) -> str:
    """The reply to a message over the size limit (after reading it all, RFC 5321 4.2.5)."""
    return f"552 5.3.4 Message size exceeds fixed maximum message size of {limit} bytes"


def line_too_long(limit: int) -> str:
    """The reply to a message with a line longer than the limit."""
    return f"500 5.5.2 Line too long: a line of the message exceeds {limit} bytes"


def queued(queue_id: str) -> str:
    """The reply that acknowledges a durable message."""
    return f"250 2.0.0 Ok: queued as {queue_id}"


def recipient_refused(verdict: RecipientVerdict, address: str) -> str:
    """The reply that refuses a recipient (verdict is not ACCEPT)."""
    if verdict is RecipientVerdict.MALFORMED:
        return "501 5.1.3 Bad recipient address syntax"
    shown = address.replace("\r", "").replace("\n", "")[:320]
    if verdict is RecipientVerdict.RELAY_DENIED:
        return f"554 5.7.1 <{shown}>: Relay access denied"
    if verdict is RecipientVerdict.DISABLED:
        return f"550 5.2.1 <{shown}>: Mailbox disabled, not accepting messages"
    return f"550 5.1.1 <{shown}>: Recipient address rejected: User unknown"


def content_refused(problem: ContentProblem, limits: ContentLimits) -> str:
    """The reply that refuses a message's content."""
    if problem is ContentProblem.BARE_LINE_ENDING:
        return "550 5.6.0 Message refused: bare CR or LF in message data; lines must end with CRLF"
    if problem is ContentProblem.NUL_BYTE:
        return "550 5.6.0 Message refused: NUL byte in message data"
    if problem is ContentProblem.HEADER_TOO_LARGE:
        return f"552 5.3.4 Message refused: header section exceeds {limits.max_header_size} bytes"
    if problem is ContentProblem.MIME_TOO_DEEP:
        return f"554 5.6.0 Message refused: MIME nesting deeper than {limits.max_mime_depth} levels"
    return f"552 5.3.4 Message refused: {_STRUCTURE_LIMITS[problem](limits)}"


_STRUCTURE_LIMITS = {
    ContentProblem.TOO_MANY_PARTS: lambda limits: f"more than {limits.max_mime_parts} MIME parts",
    ContentProblem.PART_HEADER_TOO_LARGE: (
        lambda limits: f"a MIME part's header section exceeds {limits.max_part_header_size} bytes"
    ),
    ContentProblem.HEADERS_TOO_LARGE: (
        lambda limits: f"the header sections together exceed {limits.max_total_header_size} bytes"
    ),
    ContentProblem.TOO_MANY_PARAMETERS: (
        lambda limits: f"a Content header field has more than {limits.max_header_parameters} parameters"
    ),
    ContentProblem.PART_TOO_LARGE: lambda limits: f"a MIME part exceeds {limits.max_part_size} bytes",
}


def _reply_text(text: str, limit: int = 300) -> str:
    cleaned = "".join(char if char.isascii() and char.isprintable() else "?" for char in text)
    return " ".join(cleaned.split())[:limit]


def filtered(verdict: Verdict, reason: str) -> str:
    """The reply to a message the security filters refuse (REJECT) or cannot check now (TEMPFAIL)."""
    if verdict is Verdict.TEMPFAIL:
        return FILTER_UNAVAILABLE
    return f"550 5.7.1 Message refused by security policy: {_reply_text(reason)}"
