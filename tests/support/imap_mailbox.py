"""What a mailbox on the primary stand-in holds, read over IMAPS with the standard library's imaplib.

Tests check the replay's result with a different IMAP client than the one under test:
every folder, and in each every message's Message-ID, Subject, flags, INTERNALDATE and
replay marker.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import re
import ssl
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from continuity.core.imap_syntax import decode_mailbox

_LIST = re.compile(rb'^\((?P<flags>[^)]*)\) (?:NIL|"(?:\\.|[^"])*") (?P<name>.*)$')
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_DATE = re.compile(rb'INTERNALDATE "([^"]+)"')


@dataclass(frozen=True)
class Copy:
    """One message in a folder of the primary."""

    folder: str
    message_id: str
    subject: str
    flags: frozenset[str]
    internal_date: str
    marker: str


def _name(raw: bytes) -> str:
    text = raw.decode()
    if text.startswith('"'):
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return decode_mailbox(text)


def _quoted(name: str) -> str:
    from continuity.core.imap_syntax import mailbox_argument

    return mailbox_argument(name)


def read_mailbox_sync(port: int, ca_file: Path, login: str, password: str) -> list[Copy]:
    """Every message of every folder of the mailbox login opens; blocking."""
    context = ssl.create_default_context(cafile=str(ca_file))
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context)
    copies: list[Copy] = []
    try:
        client.login(login, password)
        _, listing = client.list()
        folders = []
        for line in listing:
            found = _LIST.match(line) if isinstance(line, bytes) else None
            if found and b"\\noselect" not in found.group("flags").lower():
                folders.append(_name(found.group("name")))
        for folder in folders:
            status, data = client.select(_quoted(folder), readonly=True)
            assert status == "OK", (folder, data)
            if int(data[0] or 0) == 0:
                continue
            _, fetched = client.fetch(
                "1:*", "(FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT X-CONTINUITY-REPLAY)])"
            )
            for part in fetched:
                if not isinstance(part, tuple):
                    continue
                meta, headers = part
                flags_found = _FLAGS.search(meta)
                date_found = _DATE.search(meta)
                parsed = email.message_from_bytes(headers, policy=email.policy.default)
                copies.append(
                    Copy(
                        folder=folder,
                        message_id=str(parsed.get("Message-ID", "")).strip(),
                        subject=str(parsed.get("Subject", "")),
                        flags=frozenset((flags_found.group(1) if flags_found else b"").decode().split()) - {"\\Recent"},
                        internal_date=date_found.group(1).decode() if date_found else "",
                        marker=" ".join(str(parsed.get("X-Continuity-Replay", "")).split()),
                    )
                )
    finally:
        client.logout()
    return copies


async def read_mailbox(port: int, ca_file: Path, login: str, password: str) -> list[Copy]:
    """read_mailbox_sync in a thread."""
    return await asyncio.to_thread(read_mailbox_sync, port, ca_file, login, password)


def duplicates(copies: list[Copy]) -> list[str]:
    """Message-IDs present more than once in the mailbox (any folders)."""
    counts = Counter(copy.message_id for copy in copies if copy.message_id)
    return [message_id for message_id, count in counts.items() if count > 1]
