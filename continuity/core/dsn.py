"""Delivery status notifications (RFC 3464) for relayed mail that could not be delivered (pure).

When the appliance relays the primary's mail and a recipient fails for good, the sender
must hear about it as from any smart host: a ``multipart/report`` with a human part, a
``message/delivery-status`` part per failed recipient, and the original header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from continuity.core.delivery import RecipientResult

_ENHANCED = re.compile(r"(5\.\d{1,3}\.\d{1,3})\b")


def _header_only(content: bytes) -> bytes:
    end = content.find(b"\r\n\r\n")
    return content if end < 0 else content[: end + 2]


def _enhanced(text: str) -> str:
    """The enhanced status code (RFC 3463) the server's text starts with, or 5.0.0."""
    match = _ENHANCED.match(text.strip())
    return match.group(1) if match else "5.0.0"


def _ascii(text: str) -> str:
    """text with every non-ASCII character as '?': the delivery-status fields and the headers part are ASCII.

    A remote server's reply (or the original header) with 8-bit characters made the report
    fail to serialise (UnicodeEncodeError), so no report was sent at all.
    """
    return text.encode("ascii", "replace").decode("ascii")


def _block(fields: Sequence[tuple[str, str]]) -> Message:
    block = Message()
    for name, value in fields:
        block[name] = value
    return block


def build_dsn(
    reporting_host: str,
    sender: str,
    failed: Sequence[RecipientResult],
    original: bytes,
    queue_id: str,
    arrival: float,
) -> bytes:
    """A non-delivery report to sender about the failed recipients of one relayed message."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <mailer-daemon@{reporting_host}>"
    report["To"] = sender
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = formatdate(localtime=False)
    report["Message-ID"] = make_msgid(domain=reporting_host)
    report["Auto-Submitted"] = "auto-replied"
    lines = [
        f"This is the mail system at host {reporting_host}.",
        "",
        "Your message could not be delivered to one or more recipients:",
        "",
        *[f"<{result.recipient}>: {result.code or ''} {' '.join(result.text.split())}".rstrip() for result in failed],
        "",
    ]
    text = "\n".join(lines)
    report.attach(MIMEText(text, "plain", "us-ascii" if text.isascii() else "utf-8"))
    blocks = [
        _block(
            [
                ("Reporting-MTA", f"dns; {reporting_host}"),
                ("X-Queue-ID", queue_id),
                ("Arrival-Date", formatdate(arrival)),
            ]
        )
    ]
    for result in failed:
        code = result.code if 500 <= result.code < 600 else 550
        fields = [
            ("Final-Recipient", f"rfc822; {_ascii(result.recipient)}"),
            ("Action", "failed"),
            ("Status", _enhanced(result.text)),
        ]
        if result.host:
            fields.append(("Remote-MTA", f"dns; {result.host}"))
        fields.append(("Diagnostic-Code", f"smtp; {code} {_ascii(' '.join(result.text.split())[:300])}"))
        blocks.append(_block(fields))
    status = Message()
    status.set_type("message/delivery-status")
    status.set_payload(blocks)  # type: ignore[arg-type]
    report.attach(status)
    headers = MIMEText(_ascii(_header_only(original).decode("ascii", "replace")), "rfc822-headers", "us-ascii")
    report.attach(headers)
    return report.as_bytes(policy=SMTP)
