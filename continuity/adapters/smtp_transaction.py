"""One mail transaction (MAIL, RCPT, DATA) on an open aiosmtplib connection, without rewriting the message.

aiosmtplib's ``sendmail`` parses every address with ``email.utils`` (four times for a
message to one recipient) and runs the message through three regular expressions (line
endings twice, dot-stuffing once): about 0.4 ms for a 10 KB message, more than the rest
of a replay delivery costs. aiosmtplib still opens the connection, says EHLO, does
STARTTLS and AUTH and reads every reply; this module only sends the transaction:
addresses checked with string tests, line endings normalised only when a bare CR or LF
is actually there (stored mail has none: ingest refuses them), dot-stuffing with
``bytes.replace``. It raises what ``sendmail`` raises, so callers handle both alike.
PIPELINING is not used: aiosmtplib's reader delivers one reply per command (the replay's
kept sessions use smtp_pipelined.py, which pipelines).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import aiosmtplib
from aiosmtplib import SMTPResponse

_LINE_END = re.compile(rb"\r\n|\r|\n")
_NOT_IN_ADDRESS = frozenset("<> \t\r\n\x00\x7f")


def data_bytes(message: bytes) -> tuple[bytes, int]:
    """The DATA payload for message (dot-stuffed, ending in CRLF.CRLF) and its size for SIZE=."""
    line_ends = message.count(b"\r\n")
    if message.count(b"\r") != line_ends or message.count(b"\n") != line_ends:
        message = _LINE_END.sub(b"\r\n", message)  # a bare CR or LF: only mail that did not come through ingest
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    size = len(message)
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n", size


def smtp_path(address: str, utf8: bool) -> bytes | None:
    """<address> for MAIL or RCPT, or None when it cannot be sent as it is."""
    if any(char in _NOT_IN_ADDRESS or char < " " for char in address):
        return None
    if not address.isascii() and not utf8:
        return None
    return b"<" + address.encode("utf-8") + b">"


async def send_message(
    client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str], message: bytes
) -> dict[str, SMTPResponse]:
    """Send one message; returns the refused recipients with their replies (empty: all accepted).

    Raises SMTPSenderRefused, SMTPRecipientsRefused (every recipient refused) or
    SMTPDataError like aiosmtplib's sendmail, and SMTPServerDisconnected or a timeout
    when the connection fails.
    """
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()
    wants_utf8 = not (sender.isascii() and all(recipient.isascii() for recipient in recipients))
    utf8 = wants_utf8 and client.supports_extension("smtputf8")
    payload, size = data_bytes(message)
    sender_path = smtp_path(sender, utf8) if sender else b"<>"
    if sender_path is None:
        reason = "needs SMTPUTF8, which the server does not offer" if wants_utf8 else "is not a valid SMTP address"
        raise aiosmtplib.SMTPSenderRefused(553, f"the sender {sender!r} {reason}", sender)
    options = [b"SIZE=%d" % size] if client.supports_extension("size") else []
    if utf8:
        options.append(b"SMTPUTF8")
    reply = await client.execute_command(b"MAIL", b"FROM:" + sender_path, *options)
    if reply.code != 250:
        raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
    refused: dict[str, SMTPResponse] = {}
    for recipient in recipients:
        path = smtp_path(recipient, utf8)
        if path is None:
            refused[recipient] = SMTPResponse(553, "not a valid SMTP address, or needs SMTPUTF8")
            continue
        reply = await client.execute_command(b"RCPT", b"TO:" + path)
        if reply.code not in (250, 251):
            refused[recipient] = reply
    if len(refused) == len(recipients):
        errors = [aiosmtplib.SMTPRecipientRefused(r.code, r.message, address) for address, r in refused.items()]
        raise aiosmtplib.SMTPRecipientsRefused(errors)
    reply = await client.execute_command(b"DATA")
    if reply.code != 354:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("connection lost before the message was sent")
    protocol.write(payload)
    reply = await protocol.read_response(timeout=client.timeout)
    if reply.code != 250:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)
    return refused
