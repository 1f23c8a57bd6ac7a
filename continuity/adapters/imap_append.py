"""IMAP sessions into the primary's mailboxes for the replay (aioimaplib): APPEND, look-ups, moves.

One :class:`MailboxSession` is one IMAPS connection logged in to one mailbox as [replay]
auth says (continuity.adapters.imap_auth: the master user, SASL PLAIN with an authzid, or
an Entra app's token). Every argument built from stored data goes through
continuity.core.imap_syntax first (aioimaplib sends arguments as given). Answers are
turned into typed outcomes (continuity.core.replay_journal.Attempt): delivered,
throttled ("NO [LIMIT] server busy"), deferred or failed; a broken connection raises
:class:`ImapSessionError` so the caller reconnects.

Every reply passes continuity.adapters.imap_guard first (bounded lines, literals and line
counts, a deadline per command); a reply that breaks a bound drops the connection and raises
an ImapSessionError whose ``give_up`` names the bound, so the replay leaves the server alone
for a while.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import aioimaplib

from continuity.adapters.imap_auth import ImapLogin, LoginRefusedError, log_in
from continuity.adapters.imap_guard import ReplyGuard, ReplyLimits, guard_client
from continuity.core.imap_syntax import (
    ImapSyntaxError,
    check_literal,
    decode_mailbox,
    flag_list,
    internal_date,
    mailbox_argument,
    quote,
    sequence_set,
)
from continuity.core.replay_journal import Attempt, OutcomeKind, classify_imap_no
from continuity.core.replay_plan import MARKER_FIELD, parse_marker_fields
from continuity.errors import PrimaryReplyError

_FETCH_MARKER = f"(BODY.PEEK[HEADER.FIELDS ({MARKER_FIELD.upper()})])"
_FETCH_CHUNK = 50
# A quoted string is escapes or characters that are neither a quote nor a backslash: with
# "[^"]" (which also takes a backslash) the two ways to read each backslash made a reply of a
# few dozen of them backtrack exponentially; a compromised primary could stall the replay so.
_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>NIL|"(?:\\.|[^"\\])*") (?P<name>.*)$')
_UID = re.compile(rb"UID (\d+)")
_APPENDUID = re.compile(r"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
# An APPEND's deadline grows by a second per this many bytes of message (a 2 Mbit/s link).
_APPEND_BYTES_PER_SECOND = 256 * 1024
# Set on every replayed copy: the user's client sends no read receipt again for old mail.
REPLAYED_FLAG = "$MDNSent"


def _replayed(flags: tuple[str, ...]) -> tuple[str, ...]:
    return flags if REPLAYED_FLAG in flags else (*flags, REPLAYED_FLAG)


class ImapSessionError(Exception):
    """The session cannot go on (connection lost, login refused, server busy at login).

    give_up is set when the server's reply broke a bound (continuity.adapters.imap_guard).
    """

    def __init__(self, kind: OutcomeKind, detail: str, give_up: PrimaryReplyError | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.give_up = give_up


@dataclass(frozen=True, slots=True)
class ImapTarget:
    """Where the primary's IMAP is and how the replay logs in to a mailbox ([replay] auth)."""

    host: str
    port: int
    tls: ssl.SSLContext
    timeout: float
    login: ImapLogin
    limits: ReplyLimits = field(default_factory=ReplyLimits)

    @property
    def server(self) -> str:
        """host:port, as errors name it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def new_client(self) -> tuple[aioimaplib.IMAP4_SSL, ReplyGuard]:
        """A client of the primary (not yet connected) behind the guard that bounds its replies."""
        client = aioimaplib.IMAP4_SSL(host=self.host, port=self.port, timeout=self.timeout, ssl_context=self.tls)
        return client, guard_client(client, self.server, self.limits)

    async def greeting(self, client: aioimaplib.IMAP4_SSL, guard: ReplyGuard) -> None:
        """Connect and wait for the server's greeting."""
        await guard.run("greeting", client.wait_hello_from_server(), self.timeout)

    async def log_in(self, client: aioimaplib.IMAP4_SSL, guard: ReplyGuard, mailbox: str) -> None:
        """Log in to mailbox as [replay] auth says."""
        await log_in(
            client, guard, self.login, mailbox, server=self.server, host=self.host, port=self.port,
            deadline=self.timeout,
        )  # fmt: skip


def _text(lines: list[bytes | bytearray | str]) -> str:
    parts = [line.decode(errors="replace") if isinstance(line, bytes | bytearray) else line for line in lines]
    return " ".join(part for part in parts if part).strip()


def _numbers(lines: list[bytes | bytearray | str]) -> list[int]:
    numbers: list[int] = []
    for line in lines[:-1]:
        if isinstance(line, bytes | bytearray):
            numbers += [int(word) for word in bytes(line).split() if word.isdigit()]
    return numbers


def _unquote(raw: bytes) -> str:
    text = raw.decode("ascii", errors="replace")
    if text.startswith('"') and text.endswith('"'):
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


class MailboxSession:
    """One connection, logged in to one mailbox."""

    def __init__(
        self, client: aioimaplib.IMAP4_SSL, guard: ReplyGuard, deadline: float, mailbox: str, delimiter: str | None
    ) -> None:
        self._client = client
        self._guard = guard
        self._deadline = deadline
        self.mailbox = mailbox
        self.delimiter = delimiter
        self._selected: str | None = None
        self._known: set[str] = set()

    @classmethod
    async def open(cls, target: ImapTarget, mailbox: str) -> MailboxSession:
        """Connect and log in; ImapSessionError when the primary refuses or is unreachable."""
        client, guard = target.new_client()
        try:
            await target.greeting(client, guard)
            try:
                await target.log_in(client, guard, mailbox)
            except LoginRefusedError as exc:
                kind = classify_imap_no(exc.detail)
                raise ImapSessionError(
                    OutcomeKind.THROTTLED if kind is OutcomeKind.THROTTLED else OutcomeKind.DEFERRED, exc.detail
                ) from None
            listing = await guard.run("LIST", client.list('""', '""'), target.timeout)
            delimiter = None
            for line in listing.lines[:-1]:
                found = _LIST_LINE.match(bytes(line)) if isinstance(line, bytes | bytearray) else None
                if found and found.group("delim") != b"NIL":
                    delimiter = _unquote(found.group("delim")) or None
            return cls(client, guard, target.timeout, mailbox, delimiter)
        except PrimaryReplyError as exc:
            _drop(client)
            raise ImapSessionError(OutcomeKind.DEFERRED, str(exc), exc) from None
        except ImapSessionError:
            _drop(client)
            raise
        except ImapSyntaxError as exc:
            _drop(client)
            raise ImapSessionError(OutcomeKind.FAILED, f"cannot log in to {mailbox}: {exc}") from None
        except (TimeoutError, OSError, ssl.SSLError, aioimaplib.AioImapException, ValueError, IndexError) as exc:
            _drop(client)
            raise ImapSessionError(
                OutcomeKind.DEFERRED, f"IMAP {target.host}:{target.port}: {_describe(exc)}"
            ) from None

    async def close(self) -> None:
        """Log out (best effort) and close the connection."""
        try:
            await self._guard.run("LOGOUT", self._client.logout(), min(5.0, self._deadline))
        except (TimeoutError, OSError, ssl.SSLError, aioimaplib.AioImapException, PrimaryReplyError, ValueError):
            pass
        finally:
            _drop(self._client)

    # -- delivering -------------------------------------------------------------------------

    async def append(self, folder: str, data: bytes, flags: tuple[str, ...], date: float) -> Attempt:
        """APPEND data into folder (created when missing) with flags, $MDNSent and INTERNALDATE date.

        Exchange may drop ``\\Flagged`` given in APPEND: when the server named the new copy's UID
        (APPENDUID), ``\\Flagged`` is set again with STORE.
        """
        started = time.monotonic()
        flags = _replayed(flags)
        try:
            check_literal(data)
            name = mailbox_argument(folder)
        except ImapSyntaxError as exc:
            return Attempt(OutcomeKind.FAILED, str(exc))
        for _ in range(2):
            response = await self._call(
                "APPEND",
                self._client.append(data, mailbox=name, flags=flag_list(flags), date=internal_date(date)),
                self._deadline + len(data) / _APPEND_BYTES_PER_SECOND,
            )
            text = _text(response.lines)
            if response.result == "OK":
                self._known.add(folder)
                uid = _APPENDUID.search(text)
                detail = f"appended to {folder}" + (f" (UID {uid.group(2)}, validity {uid.group(1)})" if uid else "")
                if uid and "\\Flagged" in flags:
                    detail += await self._flag_again(folder, int(uid.group(2)))
                return Attempt(OutcomeKind.DELIVERED, detail, latency=time.monotonic() - started)
            if response.result == "NO" and "[TRYCREATE]" in text.upper():
                problem = await self.create(folder)
                if problem is not None:
                    return problem
                continue
            if response.result == "NO" or classify_imap_no(text) is OutcomeKind.THROTTLED:
                # Exchange Online answers a throttled mailbox "BAD Request is throttled. Suggested Backoff ...".
                return Attempt(classify_imap_no(text), f"APPEND to {folder}: {response.result} {text}"[:300])
            return Attempt(OutcomeKind.FAILED, f"APPEND to {folder} answered {response.result}: {text}"[:300])
        return Attempt(OutcomeKind.DEFERRED, f"APPEND to {folder}: the folder could not be created")

    async def _flag_again(self, folder: str, uid: int) -> str:
        """STORE \\Flagged on the new copy uid in folder; a note for the outcome's detail."""
        if not await self._select(folder):
            return "; \\Flagged not set again (cannot select the folder)"
        response = await self._call("STORE", self._client.uid("store", str(uid), "+FLAGS.SILENT", "(\\Flagged)"))
        return "" if response.result == "OK" else f"; STORE \\Flagged answered {response.result}"

    async def create(self, folder: str) -> Attempt | None:
        """Create folder; None when it exists now, otherwise why not."""
        response = await self._call("CREATE", self._client.create(mailbox_argument(folder)))
        text = _text(response.lines)
        if response.result == "OK" or "[ALREADYEXISTS]" in text.upper():
            self._known.add(folder)
            return None
        kind = classify_imap_no(text) if response.result == "NO" else OutcomeKind.FAILED
        return Attempt(kind, f"CREATE {folder}: {text}"[:300])

    # -- looking ----------------------------------------------------------------------------

    async def _select(self, folder: str) -> bool:
        if self._selected == folder:
            return True
        response = await self._call("SELECT", self._client.select(mailbox_argument(folder)))
        self._selected = folder if response.result == "OK" else None
        if response.result != "OK" and self._client.protocol is not None:
            # A failed SELECT leaves the server in the authenticated state (RFC 3501 6.3.1).
            self._client.protocol.state = aioimaplib.AUTH
        return bool(response.result == "OK")

    async def _fetch_markers(self, numbers: list[int], *, by_uid: bool) -> list[tuple[int, str]]:
        """(number, marker) pairs of the given messages; number is the UID when by_uid."""
        found: list[tuple[int, str]] = []
        # Small chunks: aioimaplib parses a response recursively, one frame per line.
        for start in range(0, len(numbers), _FETCH_CHUNK):
            chunk = sequence_set(numbers[start : start + _FETCH_CHUNK])
            if by_uid:
                response = await self._call("FETCH", self._client.uid("fetch", chunk, _FETCH_MARKER))
            else:
                response = await self._call("FETCH", self._client.fetch(chunk, _FETCH_MARKER))
            current = 0
            for line in response.lines:
                if isinstance(line, bytearray):
                    found += [(current, value) for value in parse_marker_fields(bytes(line))]
                elif isinstance(line, bytes):
                    uid = _UID.search(line)
                    head = line.split(b" ", 1)[0]
                    current = int(uid.group(1)) if by_uid and uid else int(head) if head.isdigit() else current
        return found

    async def _search(self, *criteria: str) -> list[int]:
        response = await self._call("SEARCH", self._client.uid_search(*criteria, charset=None))
        return _numbers(response.lines) if response.result == "OK" else []

    async def find(self, folder: str, message_id: str, marker: str) -> int | None:
        """The UID of our earlier copy (same Message-ID and same content hash) in folder, or None."""
        if not await self._select(folder):
            return None
        try:
            criteria = ("HEADER", "Message-ID", quote(message_id)) if message_id else None
        except ImapSyntaxError:
            criteria = None
        if criteria is None:
            criteria = ("HEADER", MARKER_FIELD, quote(marker.split(";", 1)[0]))
        uids = await self._search(*criteria)
        if not uids:
            return None
        for uid, value in await self._fetch_markers(uids, by_uid=True):
            if value == marker:
                return uid
        return None

    async def markers(self, folder: str) -> list[str] | None:
        """Every replay marker in folder (one per copy), or None when the folder does not exist."""
        if not await self._select(folder):
            return None
        response = await self._call("SEARCH", self._client.search("HEADER", MARKER_FIELD, '""', charset=None))
        numbers = _numbers(response.lines) if response.result == "OK" else []
        if not numbers:
            return []
        return [value for _, value in await self._fetch_markers(numbers, by_uid=False)]

    async def folders(self) -> list[str]:
        """Every folder of the mailbox (decoded names)."""
        response = await self._call("LIST", self._client.list('""', '"*"'))
        names = []
        for line in response.lines[:-1]:
            found = _LIST_LINE.match(bytes(line)) if isinstance(line, bytes | bytearray) else None
            if found and b"\\noselect" not in found.group("flags").lower():
                names.append(decode_mailbox(_unquote(found.group("name"))))
        return names

    async def relocate(self, uid_folder: str, uid: int, folder: str, flags: tuple[str, ...]) -> Attempt:
        """Give the copy uid in uid_folder these flags and move it to folder (resync after a webmail change)."""
        if not await self._select(uid_folder):
            return Attempt(OutcomeKind.DEFERRED, f"cannot select {uid_folder}")
        response = await self._call("STORE", self._client.uid("store", str(uid), "FLAGS", flag_list(_replayed(flags))))
        if response.result != "OK":
            return Attempt(OutcomeKind.DEFERRED, f"STORE in {uid_folder}: {_text(response.lines)}"[:300])
        if folder == uid_folder:
            return Attempt(OutcomeKind.DELIVERED, "flags updated")
        if folder not in self._known:
            problem = await self.create(folder)
            if problem is not None:
                return problem
        target = mailbox_argument(folder)
        if "MOVE" in self._client.protocol.capabilities:
            response = await self._call("MOVE", self._client.uid("move", str(uid), target))
        else:
            response = await self._call("COPY", self._client.uid("copy", str(uid), target))
            if response.result == "OK":
                await self._call("STORE", self._client.uid("store", str(uid), "+FLAGS", "(\\Deleted)"))
                await self._call("EXPUNGE", self._client.uid("expunge", str(uid)))
        if response.result != "OK":
            return Attempt(OutcomeKind.DEFERRED, f"MOVE to {folder}: {_text(response.lines)}"[:300])
        self._selected = None if self._selected == folder else self._selected
        return Attempt(OutcomeKind.DELIVERED, f"moved from {uid_folder}")

    async def _call(self, command: str, awaitable: Awaitable[Any], deadline: float | None = None) -> Any:
        try:
            return await self._guard.run(command, awaitable, self._deadline if deadline is None else deadline)
        except PrimaryReplyError as exc:
            _drop(self._client)
            raise ImapSessionError(OutcomeKind.DEFERRED, str(exc), exc) from None
        except (TimeoutError, OSError, ssl.SSLError, aioimaplib.AioImapException, ValueError, IndexError) as exc:
            _drop(self._client)
            raise ImapSessionError(
                OutcomeKind.DEFERRED, f"IMAP connection to {self.mailbox} lost: {_describe(exc)}"
            ) from None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _drop(client: aioimaplib.IMAP4_SSL) -> None:
    protocol = client.protocol
    if protocol is not None and protocol.transport is not None:
        protocol.transport.close()
