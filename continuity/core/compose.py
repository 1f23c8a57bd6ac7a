"""Composing mail in the webmail: the draft a form fills, the MIME message built from it,
and the prefilled drafts of reply, reply-all and forward.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum

from continuity.core.addresses import normalize_address
from continuity.core.mime_view import Address, MessageView

MAX_RECIPIENTS = 100


class ComposeMode(StrEnum):
    """How a compose form was opened."""

    NEW = "new"
    REPLY = "reply"
    REPLY_ALL = "reply_all"
    FORWARD = "forward"


@dataclass(frozen=True, slots=True)
class NewAttachment:
    """A file to attach."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Draft:
    """What the compose form holds."""

    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: str = ""
    attachments: tuple[NewAttachment, ...] = field(default=())


def _split_list(text: str) -> list[str]:
    """Split an address list on commas and semicolons outside quotes, comments and angle brackets."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    depth = 0
    for char in text:
        if char == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and char in "<(":
            depth += 1
        elif not quoted and char in ">)" and depth:
            depth -= 1
        if char in ",;" and not quoted and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def parse_recipients(text: str) -> list[str]:
    """Normalised addresses from a To/Cc/Bcc field; ValueError with a sentence naming the bad one."""
    result: list[str] = []
    for chunk in _split_list(text):
        try:
            pairs = email.utils.getaddresses([chunk])
        except RecursionError:  # the stdlib reads nested comments recursively: "((((..." a thousand deep
            pairs = []
        address = pairs[0][1] if len(pairs) == 1 else ""
        try:
            normalized = normalize_address(address)
        except ValueError:
            raise ValueError(f"'{chunk[:100]}' is not a valid address") from None
        if normalized not in result:
            result.append(normalized)
    return result


def envelope_recipients(draft: Draft) -> list[str]:
    """Every recipient of draft (To, Cc, Bcc), checked; ValueError with a sentence otherwise."""
    recipients: list[str] = []
    for text in (draft.to, draft.cc, draft.bcc):
        for address in parse_recipients(text):
            if address not in recipients:
                recipients.append(address)
    if not recipients:
        raise ValueError("add at least one recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise ValueError(f"a message may have at most {MAX_RECIPIENTS} recipients")
    return recipients


def _single_line(text: str) -> str:
    return " ".join(text.split())


def build_message(draft: Draft, sender: Address, *, hostname: str, now: float | None = None) -> EmailMessage:
    """The RFC 5322 message for draft (Bcc is not written into the headers)."""
    message = EmailMessage()
    message["From"] = str(sender)
    if draft.to.strip():
        message["To"] = ", ".join(parse_recipients(draft.to))
    if draft.cc.strip():
        message["Cc"] = ", ".join(parse_recipients(draft.cc))
    message["Subject"] = _single_line(draft.subject)
    message["Date"] = email.utils.formatdate(now if now is not None else time.time(), localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain=hostname)
    if draft.in_reply_to:
        message["In-Reply-To"] = _single_line(draft.in_reply_to)
    if draft.references:
        message["References"] = _single_line(draft.references)
    message["MIME-Version"] = "1.0"
    message.set_content(draft.body.replace("\r\n", "\n"))
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not subtype or maintype in ("multipart", "message"):
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return message


def _reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _quote(view: MessageView) -> str:
    text = view.text if view.text is not None else view.summary.preview
    when = email.utils.formatdate(view.summary.sent_at, localtime=False) if view.summary.sent_at else "an unknown date"
    quoted = "\n".join(f"> {line}" for line in text.splitlines())
    return f"\n\nOn {when}, {view.summary.sender} wrote:\n{quoted}\n"


def prefill(mode: ComposeMode, view: MessageView, own_addresses: frozenset[str]) -> Draft:
    """The draft a reply, reply-all or forward of view starts from."""
    summary = view.summary
    if mode is ComposeMode.FORWARD:
        subject = summary.subject if summary.subject.lower().startswith("fwd:") else f"Fwd: {summary.subject}"
        header = (
            f"\n\n---------- Forwarded message ----------\nFrom: {summary.sender}\n"
            f"Subject: {summary.subject}\nTo: {', '.join(str(a) for a in summary.to)}\n\n"
        )
        return Draft(subject=subject, body=header + (view.text if view.text is not None else summary.body_text))
    targets = view.reply_to or (summary.sender,)
    to = [str(address) for address in targets if address.address]
    cc: list[str] = []
    if mode is ComposeMode.REPLY_ALL:
        seen = {address.address.lower() for address in targets} | own_addresses
        for address in (*summary.to, *summary.cc):
            if address.address and address.address.lower() not in seen:
                seen.add(address.address.lower())
                cc.append(str(address))
    references = " ".join(part for part in (summary.references, summary.message_id) if part)
    return Draft(
        to=", ".join(to),
        cc=", ".join(cc),
        subject=_reply_subject(summary.subject),
        body=_quote(view),
        in_reply_to=summary.message_id,
        references=references,
    )
