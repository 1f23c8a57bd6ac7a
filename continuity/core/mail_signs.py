"""What a message's header says about how it was made: inbox rules, auto-replies, bounces (pure).

Exchange marks mail that an inbox rule generated (forward, redirect, reply) with
``X-MS-Exchange-Inbox-Rules-Loop`` (the mailbox whose rule fired) and
``X-MS-Exchange-Generated-Message-Source`` (e.g. "Mailbox Rules Agent"); mailbox-level
forwarding sets ``X-MS-Exchange-Organization-AutoForwarded``. Delivery status
notifications (RFC 3464) name the recipients that failed for good.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
from dataclasses import dataclass
from email.message import Message

_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_PARSER = email.parser.BytesParser(policy=email.policy.compat32)
# A DSN is small; anything bigger than this is not parsed for bounces.
_MAX_DSN = 512 * 1024


@dataclass(frozen=True, slots=True)
class MailSigns:
    """How a message came about, from its header."""

    message_id: str
    from_address: str
    # Mailboxes named by X-MS-Exchange-Inbox-Rules-Loop (whose inbox rule generated this message).
    rule_mailboxes: tuple[str, ...]
    # X-MS-Exchange-Generated-Message-Source, e.g. "Mailbox Rules Agent".
    generator: str
    auto_forwarded: bool
    # Auto-Submitted other than "no", or a bulk/list precedence.
    automatic: bool
    # Auto-Submitted: auto-replied (an out-of-office or a rule's reply, RFC 3834).
    auto_reply: bool
    # A delivery status notification (multipart/report; report-type=delivery-status).
    delivery_report: bool

    @property
    def rule_generated(self) -> bool:
        """True when an inbox rule or mailbox forwarding produced the message."""
        return bool(self.rule_mailboxes) or "rule" in self.generator.lower() or self.auto_forwarded


def _address(value: str) -> str:
    try:
        return email.utils.parseaddr(value)[1].strip().lower()
    except RecursionError:  # the stdlib reads nested comments recursively: "((((..." a thousand deep
        return ""


def may_be_delivery_report(content: bytes) -> bool:
    """False when content's header cannot make it a delivery report (no "report" anywhere in it); cheap."""
    end = content.find(b"\r\n\r\n")
    return b"report" in (content if end < 0 else content[:end]).lower()


def read_signs(content: bytes) -> MailSigns:
    """The signs in content's header (never raises on malformed input)."""
    end = content.find(b"\r\n\r\n")
    header = _HEADERS.parsebytes(content if end < 0 else content[: end + 4])
    loops = [_address(str(value)) for value in header.get_all("X-MS-Exchange-Inbox-Rules-Loop", [])]
    generator = " ".join(str(header.get("X-MS-Exchange-Generated-Message-Source", "")).split())
    forwarded = str(header.get("X-MS-Exchange-Organization-AutoForwarded", "")).strip().lower() == "true"
    auto = str(header.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(header.get("Precedence", "")).strip().lower()
    content_type = str(header.get("Content-Type", "")).lower()
    report = content_type.startswith("multipart/report") and "delivery-status" in content_type
    return MailSigns(
        message_id=" ".join(str(header.get("Message-ID", "")).split()),
        from_address=_address(str(header.get("From", ""))),
        rule_mailboxes=tuple(dict.fromkeys(loop for loop in loops if "@" in loop)),
        generator=generator,
        auto_forwarded=forwarded,
        automatic=(auto not in ("", "no")) or precedence in ("bulk", "junk", "list"),
        auto_reply=auto.startswith("auto-replied"),
        delivery_report=report,
    )


def _status_blocks(message: Message) -> list[Message]:
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                return [block for block in payload if isinstance(block, Message)]
    return []


def hard_bounces(content: bytes) -> tuple[str, ...]:
    """The recipients a delivery status notification reports as failed for good (5.x.x), lower-cased."""
    if len(content) > _MAX_DSN:
        return ()
    message = _PARSER.parsebytes(content)
    failed: list[str] = []
    for block in _status_blocks(message):
        action = str(block.get("Action", "")).strip().lower()
        status = str(block.get("Status", "")).strip()
        recipient = str(block.get("Final-Recipient", "") or block.get("Original-Recipient", ""))
        if action != "failed" or not status.startswith("5"):
            continue
        _kind, _sep, address = recipient.partition(";")
        address = address.strip().strip("<>").lower()
        if "@" in address and address not in failed:
            failed.append(address)
    return tuple(failed)
