"""Building test messages with CRLF line endings."""

from __future__ import annotations

import uuid


def make_message(
    subject: str = "Test message",
    body_lines: int = 20,
    sender: str = "sender@outside.test",
    recipient: str = "alice@example.com",
    size: int | None = None,
) -> bytes:
    """A plain RFC 5322 message with a unique Message-ID; padded to about size bytes when given."""
    message_id = f"<{uuid.uuid4().hex}@outside.test>"
    headers = (
        f"From: {sender}\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    count = body_lines if size is None else max(1, (size - len(headers)) // len(line))
    return headers + line * count


def message_id_of(message: bytes) -> str:
    """The Message-ID header value of message."""
    for raw in message.split(b"\r\n"):
        if raw.lower().startswith(b"message-id:"):
            return raw.split(b":", 1)[1].strip().decode()
    raise ValueError("message has no Message-ID")


def nested_multipart(depth: int, subject: str = "nested") -> bytes:
    """A message whose MIME tree is depth multiparts deep around one text part."""
    body = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(depth):
        boundary = f"b{level}".encode()
        body = b"".join(
            [
                b'Content-Type: multipart/mixed; boundary="',
                boundary,
                b'"\r\n\r\n--',
                boundary,
                b"\r\n",
                body,
                b"--",
                boundary,
                b"--\r\n",
            ]
        )
    return f"Subject: {subject}\r\nMIME-Version: 1.0\r\n".encode() + body
