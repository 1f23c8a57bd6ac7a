"""Unwrapping Exchange envelope journal reports (pure: no I/O).

A journal report is a message to the journal address whose first part lists the
original envelope, one field per line (Microsoft's journal report format)::

    Sender: alice@contoso.com
    Subject: Quarterly figures
    Message-Id: <abc@contoso.com>
    To: bob@fabrikam.com
    Cc: fwd@fabrikam.com, Forwarded: carol@contoso.com
    Bcc: dl-member@contoso.com, Expanded: team@contoso.com

and whose second part is the original message as ``message/rfc822``, unaltered. The
recipient lines are the envelope recipients; ``Forwarded:`` names the mailbox whose
forwarding sent the copy to that recipient, ``Expanded:`` the distribution group. The
original message is cut out of the report byte for byte (it is not re-serialised).
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import email.utils
import quopri
import re
from dataclasses import dataclass
from email.message import Message

from continuity.errors import InvalidInputError

_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))', re.IGNORECASE)
_RECIPIENT_FIELDS = {"to": "to", "cc": "cc", "bcc": "bcc", "recipient": "recipient"}


@dataclass(frozen=True, slots=True)
class JournalRecipient:
    """One envelope recipient of the journaled message."""

    address: str
    field: str  # to, cc, bcc or recipient (addressing unknown)
    forwarded_by: str = ""  # the mailbox whose forwarding made this recipient get a copy
    expanded_from: str = ""  # the distribution group that was expanded


@dataclass(frozen=True, slots=True)
class JournalReport:
    """The envelope of the journaled message and the message itself, as received."""

    sender: str
    on_behalf_of: str
    subject: str
    message_id: str
    recipients: tuple[JournalRecipient, ...]
    message: bytes

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every envelope recipient address, in order, once."""
        return tuple(dict.fromkeys(recipient.address for recipient in self.recipients))


def _address(text: str) -> str:
    try:
        value = email.utils.parseaddr(text.strip())[1].strip().lower()
    except RecursionError:  # the stdlib reads nested comments recursively: "((((..." a thousand deep
        return ""
    if value.count("@") != 1 or any(char.isspace() for char in value):
        return ""
    return value


def is_journal_report(content: bytes) -> bool:
    """True when the header marks content as a journal report (X-MS-Journal-Report)."""
    end = content.find(b"\r\n\r\n")
    header = _HEADERS.parsebytes(content if end < 0 else content[: end + 4])
    return header.get("X-MS-Journal-Report") is not None


def _parts(content: bytes) -> list[tuple[Message, bytes]]:
    """The top-level MIME parts of a multipart message: each part's header and its raw body."""
    end = content.find(b"\r\n\r\n")
    if end < 0:
        raise InvalidInputError("the journal report has no body")
    header = _HEADERS.parsebytes(content[: end + 4])
    content_type = str(header.get("Content-Type", ""))
    match = _BOUNDARY.search(content_type.encode("utf-8", "replace"))
    if not content_type.lower().startswith("multipart/") or match is None:
        raise InvalidInputError("the journal report is not a multipart message")
    boundary = match.group(1) or match.group(2)
    body = b"\r\n" + content[end + 4 :]
    delimiter = b"\r\n--" + boundary
    pieces = body.split(delimiter)
    parts: list[tuple[Message, bytes]] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break  # the close delimiter
        line_end = piece.find(b"\r\n")
        if line_end < 0:
            continue
        part = piece[line_end + 2 :]
        split = part.find(b"\r\n\r\n")
        if part.startswith(b"\r\n"):
            parts.append((_HEADERS.parsebytes(b"\r\n"), part[2:]))
        elif split >= 0:
            parts.append((_HEADERS.parsebytes(part[: split + 4]), part[split + 4 :]))
    return parts


def _decoded(part_header: Message, body: bytes) -> bytes:
    encoding = str(part_header.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if encoding == "base64":
        try:
            return base64.b64decode(body, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInputError(f"the journaled message's base64 is broken: {exc}") from None
    return body


def _report_text(header: Message, body: bytes) -> str:
    charset = header.get_content_charset() or "utf-8"
    raw = _decoded(header, body)
    if str(header.get("Content-Transfer-Encoding", "")).strip().lower() == "quoted-printable":
        raw = quopri.decodestring(raw)
    try:
        return raw.decode(charset, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def _recipient(field: str, value: str) -> JournalRecipient | None:
    first, _sep, annotation = value.partition(",")
    address = _address(first)
    if not address:
        return None
    kind, _colon, source = annotation.partition(":")
    kind = kind.strip().lower()
    source_address = _address(source) if source else ""
    return JournalRecipient(
        address=address,
        field=field,
        forwarded_by=source_address if kind == "forwarded" else "",
        expanded_from=source_address if kind == "expanded" else "",
    )


def parse_journal_report(content: bytes) -> JournalReport:
    """The journaled message and its envelope; InvalidInputError when content is not a journal report."""
    parts = _parts(content)
    report: tuple[Message, bytes] | None = None
    original: bytes | None = None
    for part_header, body in parts:
        content_type = part_header.get_content_type()
        if content_type == "text/plain" and report is None:
            report = (part_header, body)
        elif content_type == "message/rfc822" and original is None:
            original = _decoded(part_header, body)
    if report is None:
        raise InvalidInputError("the journal report has no text part with the envelope")
    if original is None or not original.strip():
        raise InvalidInputError("the journal report carries no original message (message/rfc822)")
    if not original.endswith(b"\r\n"):
        original += b"\r\n"
    fields: dict[str, str] = {}
    recipients: list[JournalRecipient] = []
    for line in _report_text(*report).splitlines():
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = name.strip().lower()
        if key in _RECIPIENT_FIELDS:
            recipient = _recipient(_RECIPIENT_FIELDS[key], value)
            if recipient is not None:
                recipients.append(recipient)
        elif key in ("sender", "subject", "message-id", "on-behalf-of") and key not in fields:
            fields[key] = value.strip()
    sender = _address(fields.get("sender", ""))
    if "sender" not in fields:
        raise InvalidInputError("the journal report names no Sender")
    if not recipients:
        raise InvalidInputError("the journal report names no recipients")
    return JournalReport(
        sender=sender,
        on_behalf_of=_address(fields.get("on-behalf-of", "")),
        subject=fields.get("subject", ""),
        message_id=fields.get("message-id", ""),
        recipients=tuple(recipients),
        message=original,
    )
