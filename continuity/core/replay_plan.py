"""What the replay delivers where: standby folders to the primary's, flags, dates and the wire bytes.

Pure. The standby mailbox (``mailbox_messages``) is the source of truth: a received
message goes into the folder the user left it in (Trash, or emptied from Trash, goes to
Deleted Items), with the user's flags and the original arrival time as INTERNALDATE;
mail written in the webmail goes to Sent Items or Drafts. Every replayed copy carries an
``X-Continuity-Replay`` header naming its queue id and its body's sha256: it is how the
replay recognises its own earlier copy after a crash, and how verification counts them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from continuity.core.imap_syntax import ImapSyntaxError, checked_flags
from continuity.core.mail_folders import StandardFolder

MARKER_FIELD = "X-Continuity-Replay"
# The HELO recorded for messages written in the webmail (continuity.store.sqlite_webmail.LOCAL_HELO).
WEBMAIL_HELO = "webmail"


class ItemKind(StrEnum):
    """Where a replayed message came from."""

    # Received over SMTP while the standby served mail.
    RECEIVED = "received"
    # Written in the webmail and sent.
    SENT = "sent"
    # Written in the webmail and saved as a draft.
    DRAFT = "draft"
    # Filed by the appliance itself (e.g. a non-delivery notice in the Inbox).
    LOCAL = "local"


class Channel(StrEnum):
    """How one item is delivered."""

    IMAP = "imap"
    SMTP = "smtp"


@dataclass(frozen=True, slots=True)
class FolderMap:
    """Standby folder names to the primary's."""

    inbox: str = "INBOX"
    sent: str = "Sent Items"
    drafts: str = "Drafts"
    trash: str = "Deleted Items"
    junk: str = "Junk Email"
    user_parent: str = ""

    def standard(self, folder: StandardFolder) -> str:
        """The primary's name of a standard folder."""
        return {
            StandardFolder.INBOX: self.inbox,
            StandardFolder.SENT: self.sent,
            StandardFolder.DRAFTS: self.drafts,
            StandardFolder.TRASH: self.trash,
            StandardFolder.JUNK: self.junk,
        }[folder]

    def target(self, standby_folder: str, *, expunged: bool) -> tuple[str, ...]:
        """The folder path on the primary, as path components (the delimiter is the server's)."""
        if expunged:
            return (self.trash,)
        try:
            return (self.standard(StandardFolder(standby_folder)),)
        except ValueError:
            return (self.user_parent, standby_folder) if self.user_parent else (standby_folder,)


def join_path(components: tuple[str, ...], delimiter: str | None) -> str:
    """A folder path in the server's hierarchy; a delimiter inside a user's name is replaced.

    A webmail folder named "Q1.2026" must stay one folder on a server whose delimiter is
    ".", so the delimiter inside a component becomes "_" (IMAP has no escape for it).
    """
    if not delimiter:
        return "".join(components)
    return delimiter.join(part.replace(delimiter, "_") for part in components)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A standby mailbox row waiting for replay, with what the plan needs of its message."""

    row_id: int
    mailbox: str
    queue_id: str
    folder: str
    flags: str
    expunged: bool
    client_helo: str
    client_address: str
    sender: str
    message_id: str
    subject: str
    sha256: str
    size: int
    received_at: float
    recipients: tuple[str, ...]

    @property
    def kind(self) -> ItemKind:
        """Where the message came from."""
        if self.client_helo != WEBMAIL_HELO:
            return ItemKind.RECEIVED
        if self.folder == StandardFolder.SENT.value:
            return ItemKind.SENT
        if self.folder == StandardFolder.DRAFTS.value:
            return ItemKind.DRAFT
        return ItemKind.LOCAL


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """One journal item: deliver queue_id into mailbox's folder with flags, by channel."""

    queue_id: str
    mailbox: str
    row_id: int
    kind: ItemKind
    channel: Channel
    folder: tuple[str, ...]
    flags: tuple[str, ...]
    internal_date: float
    message_id: str
    sha256: str
    size: int
    sender: str
    subject: str
    recipients: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class ReceivedShape:
    """Where every received message goes when that does not depend on its standby row."""

    channel: Channel
    folder: tuple[str, ...]
    flags: tuple[str, ...]


def received_shape(folders: FolderMap, *, smtp_for_received: bool) -> ReceivedShape | None:
    """The journal item's channel, folder and flags shared by every received message, or None when they differ.

    By SMTP a received message lands in the Inbox with no flags, as a new message would,
    whatever the user did with it in the webmail; by IMAP it goes where the user left it.
    The store plans the shared shape in bulk (continuity.store.sqlite_replay_planning).
    """
    return ReceivedShape(Channel.SMTP, (folders.inbox,), ()) if smtp_for_received else None


def plan_item(candidate: Candidate, folders: FolderMap, *, smtp_for_received: bool) -> PlannedItem:
    """The journal item for one standby row.

    Received mail goes by SMTP when smtp_for_received (see received_shape); everything
    else goes by IMAP into its folder. Flags that cannot be sent safely are dropped and noted.
    """
    note = ""
    shape = received_shape(folders, smtp_for_received=smtp_for_received)
    if shape is not None and candidate.kind is ItemKind.RECEIVED:
        channel, folder, flags = shape.channel, shape.folder, shape.flags
    else:
        channel = Channel.IMAP
        folder = folders.target(candidate.folder, expunged=candidate.expunged)
        try:
            flags = checked_flags(candidate.flags)
        except ImapSyntaxError as exc:
            kept: list[str] = []
            for word in candidate.flags.split():
                try:
                    kept.extend(checked_flags(word))
                except ImapSyntaxError:
                    continue
            flags, note = tuple(kept), f"unsafe flags dropped: {exc}"
        if candidate.kind is ItemKind.DRAFT and "\\Draft" not in flags:
            flags = (*flags, "\\Draft")
    return PlannedItem(
        queue_id=candidate.queue_id,
        mailbox=candidate.mailbox,
        row_id=candidate.row_id,
        kind=candidate.kind,
        channel=channel,
        folder=folder,
        flags=flags,
        internal_date=candidate.received_at,
        message_id=candidate.message_id,
        sha256=candidate.sha256,
        size=candidate.size,
        sender=candidate.sender,
        subject=candidate.subject,
        recipients=candidate.recipients or (candidate.mailbox,),
        note=note,
    )


def marker_value(queue_id: str, sha256: str) -> str:
    """The X-Continuity-Replay value of a message: its queue id and its body's sha256."""
    return f"{queue_id}; sha256={sha256}"


def wire_message(queue_id: str, sha256: str, trace_header: bytes, body: bytes) -> bytes:
    """What is sent: the marker, the trace header block stored on receipt, then the body unchanged."""
    marker = f"{MARKER_FIELD}: {marker_value(queue_id, sha256)}\r\n".encode("ascii")
    return marker + trace_header + body


def body_digest(body: bytes) -> str:
    """The sha256 of a stored body (the content hash in the marker)."""
    return hashlib.sha256(body).hexdigest()


def parse_marker_fields(block: bytes) -> list[str]:
    """The X-Continuity-Replay values in a fetched header block (unfolded, stripped)."""
    text = block.decode("ascii", errors="replace").replace("\r\n\t", " ").replace("\r\n ", " ")
    values = []
    prefix = MARKER_FIELD.lower() + ":"
    for line in text.split("\r\n"):
        if line.lower().startswith(prefix):
            values.append(" ".join(line[len(prefix) :].split()))
    return values
