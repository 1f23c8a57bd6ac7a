"""Reading a stored message for display and indexing: headers, body text or HTML, attachments.

Pure and tolerant: malformed mail never raises, it degrades (an undecodable header is shown
as replacement characters, a broken part as an attachment of type
application/octet-stream). Nothing here renders HTML; webmail.security.sanitizer does.

The stdlib parser runs with the compat32 policy and header fields are decoded (RFC 2047)
only where they are shown: the default policy's structured headers made parsing four
to five times slower, and the indexer parses every delivered message.
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.header
import email.parser
import email.policy
import email.utils
import html
import re
from dataclasses import dataclass
from email.message import Message

_PARSER = email.parser.BytesParser(policy=email.policy.compat32)
_PREVIEW = 200
_INDEX_BODY = 65_536
# A tag has no "<" inside: "<[^>]*>" scanned to the end of the text from every "<" of a run
# without ">", quadratic on "<<<<...".
_TAGS = re.compile(r"<[^<>]*>")
_BLOCK_OPEN = re.compile(r"<(script|style|head)\b", re.I)
_BLOCK_CLOSE = {name: re.compile(rf"</{name}\s*>", re.I) for name in ("script", "style", "head")}


@dataclass(frozen=True, slots=True)
class Address:
    """A display name and an address."""

    name: str
    address: str

    def __str__(self) -> str:
        """``Name <address>`` for people to read (not RFC 2047-encoded; headers encode on output)."""
        if not self.name:
            return self.address
        name = self.name
        if any(char in name for char in '()<>@,;:\\".[]'):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.address}>"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A part shown as an attachment; index is its position in the part walk."""

    index: int
    filename: str
    content_type: str
    size: int
    content_id: str
    inline: bool


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """What the message list and the search index need."""

    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    sent_at: float | None
    has_attachments: bool
    preview: str
    body_text: str
    message_id: str
    references: str
    in_reply_to: str = ""
    # Only a sender's own copy (Sent) carries Bcc.
    bcc: tuple[Address, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageView:
    """Everything the message view shows."""

    summary: MessageSummary
    reply_to: tuple[Address, ...]
    text: str | None
    html: str | None
    attachments: tuple[Attachment, ...]


def parse(content: bytes) -> Message:
    """Parse a whole message (never raises for malformed input)."""
    return _PARSER.parsebytes(content)


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return _decoded(str(value)) if value is not None else ""


def _addresses(message: Message, name: str) -> tuple[Address, ...]:
    try:
        values = message.get_all(name) or []
        pairs = email.utils.getaddresses([str(value) for value in values])
    except Exception:
        return ()
    return tuple(Address(_decoded(n), a.strip()) for n, a in pairs if a.strip() or n.strip())


def _decoded(text: str) -> str:
    """A header value or display name with its RFC 2047 encoded words decoded, on one line."""
    if "=?" in text:
        with contextlib.suppress(ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
            text = str(email.header.make_header(email.header.decode_header(text)))
    return " ".join(text.split())


def _date(message: Message) -> float | None:
    raw = _header(message, "Date")
    if not raw:
        return None
    try:
        return email.utils.parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, "replace")
    except LookupError:  # an unknown charset name
        text = payload.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")


def _is_attachment(part: Message) -> bool:
    if part.get_content_maintype() == "message":
        return True
    if part.is_multipart():
        return False
    disposition = part.get_content_disposition()
    if disposition == "attachment":
        return True
    if part.get_filename():
        return True
    return part.get_content_maintype() not in ("text",) or part.get_content_type() not in ("text/plain", "text/html")


def _walk(message: Message) -> list[Message]:
    """Every part in order, without descending into attached messages (they are attachments)."""
    parts: list[Message] = []

    def visit(part: Message) -> None:
        parts.append(part)
        if part.get_content_maintype() != "message" and part.is_multipart():
            for child in part.get_payload():
                if isinstance(child, Message):
                    visit(child)

    visit(message)
    return parts


def _is_container(part: Message) -> bool:
    return part.is_multipart() and part.get_content_maintype() != "message"


def _size(part: Message) -> int:
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        return len(inner[0].as_bytes()) if isinstance(inner, list) and inner and isinstance(inner[0], Message) else 0
    payload = part.get_payload(decode=True)
    return len(payload) if isinstance(payload, bytes) else 0


def _without_blocks(markup: str) -> str:
    """markup with each <script>, <style> and <head> block replaced by a space, in one pass.

    A lazy expression over a whole block ("<(head)\\b.*?</\\1>") searched to the end of the
    text from every opening tag that has no closing one: thousands of "<head" took seconds.
    Here a closing tag is looked for once per block, and a name found unclosed is not looked
    for again (no later block of that name can close either).
    """
    pieces: list[str] = []
    kept_from = position = 0
    unclosed: set[str] = set()
    while (opener := _BLOCK_OPEN.search(markup, position)) is not None:
        name = opener.group(1).lower()
        closer = None if name in unclosed else _BLOCK_CLOSE[name].search(markup, opener.end())
        if closer is None:
            unclosed.add(name)
            position = opener.end()
            continue
        pieces += [markup[kept_from : opener.start()], " "]
        kept_from = position = closer.end()
    pieces.append(markup[kept_from:])
    return "".join(pieces)


def html_to_text(markup: str) -> str:
    """Rough plain text of HTML for the search index and previews (never for display)."""
    text = _TAGS.sub(" ", _without_blocks(markup))
    return " ".join(html.unescape(text).split())


def view(content: bytes) -> MessageView:
    """Parse content into the parts the message view shows."""
    message = parse(content)
    text: str | None = None
    markup: str | None = None
    attachments: list[Attachment] = []
    for index, part in enumerate(_walk(message)):
        if _is_container(part):
            continue
        content_type = part.get_content_type()
        if (
            _is_attachment(part)
            or (content_type == "text/plain" and text is not None)
            or (content_type == "text/html" and markup is not None)
        ):
            attachments.append(
                Attachment(
                    index=index,
                    filename=_filename(part, index),
                    content_type=content_type,
                    size=_size(part),
                    content_id=_header(part, "Content-ID").strip("<>"),
                    inline=part.get_content_disposition() == "inline" or bool(_header(part, "Content-ID")),
                )
            )
        elif content_type == "text/plain":
            text = _part_text(part)
        elif content_type == "text/html":
            markup = _part_text(part)
    summary = _summary(message, text, markup, attachments)
    return MessageView(summary, _addresses(message, "Reply-To"), text, markup, tuple(attachments))


def _filename(part: Message, index: int) -> str:
    try:
        name = _decoded(part.get_filename() or "")  # RFC 2231 by the parser, RFC 2047 (Outlook) here
    except (ValueError, LookupError, UnicodeError):
        name = ""
    cleaned = "".join(char for char in name if char.isprintable() and char not in '/\\"').strip()
    if cleaned:
        return cleaned[:200]
    subtype = part.get_content_subtype() if part.get_content_maintype() != "message" else "eml"
    return f"part-{index}.{subtype}"


def _summary(message: Message, text: str | None, markup: str | None, attachments: list[Attachment]) -> MessageSummary:
    senders = _addresses(message, "From")
    body = text if text is not None else html_to_text(markup or "")
    return MessageSummary(
        sender=senders[0] if senders else Address("", ""),
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        subject=_header(message, "Subject"),
        sent_at=_date(message),
        has_attachments=any(not a.inline or not a.content_id for a in attachments),
        preview=" ".join(body.split())[:_PREVIEW],
        body_text=body[:_INDEX_BODY],
        message_id=_header(message, "Message-ID"),
        references=_header(message, "References"),
        in_reply_to=_header(message, "In-Reply-To"),
        bcc=_addresses(message, "Bcc"),
    )


def summarize(content: bytes) -> MessageSummary:
    """The summary of a message (for the index)."""
    return view(content).summary


def part_bytes(content: bytes, index: int) -> tuple[Message, bytes] | None:
    """The part at index of the walk and its decoded bytes, or None."""
    parts = _walk(parse(content))
    if not 0 <= index < len(parts) or _is_container(parts[index]):
        return None
    part = parts[index]
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        data = inner[0].as_bytes() if isinstance(inner, list) and inner and isinstance(inner[0], Message) else b""
        return part, data
    payload = part.get_payload(decode=True)
    return part, payload if isinstance(payload, bytes) else b""
