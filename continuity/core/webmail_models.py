"""Value types of the webmail: folders with counts, listed messages, sessions, second factors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from continuity.core.mail_folders import Flag, parse_flags


@dataclass(frozen=True, slots=True)
class FolderCount:
    """A folder of a mailbox with its message and unread counts."""

    name: str
    label: str
    total: int
    unread: int
    standard: bool


@dataclass(frozen=True, slots=True)
class ListedMessage:
    """One row of a message list (a mailbox_messages row joined with its header summary)."""

    id: int
    queue_id: str
    folder: str
    flags: str
    delivered_at: float
    from_name: str
    from_address: str
    to_addresses: str
    subject: str
    sent_at: float
    size: int
    has_attachments: bool
    preview: str

    @property
    def seen(self) -> bool:
        """True when the message was read."""
        return Flag.SEEN in parse_flags(self.flags)

    @property
    def flagged(self) -> bool:
        """True when the message is flagged."""
        return Flag.FLAGGED in parse_flags(self.flags)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message in a mailbox and where its body is."""

    id: int
    mailbox: str
    queue_id: str
    folder: str
    flags: str
    sha256: str
    size: int
    expunged: bool


@dataclass(frozen=True, slots=True)
class IndexedSummary:
    """The header summary the indexer stores per message."""

    queue_id: str
    from_name: str
    from_address: str
    to_addresses: str
    cc_addresses: str
    subject: str
    sent_at: float
    size: int
    has_attachments: bool
    preview: str
    body_text: str


@dataclass(frozen=True, slots=True)
class PendingIndex:
    """A mailbox_messages row not yet in the search index."""

    id: int
    mailbox: str
    queue_id: str
    sha256: str
    size: int
    received_at: float
    summarized: bool


class SessionStage(StrEnum):
    """How far a session got through sign-in."""

    # Password accepted, the TOTP code is still due.
    SECOND_FACTOR = "second_factor"
    AUTHENTICATED = "authenticated"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A server-side session."""

    token_hash: str
    mailbox: str
    csrf_token: str
    stage: SessionStage
    created_at: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class TotpRecord:
    """A mailbox's TOTP secret; enabled once the user confirmed a code during enrolment."""

    secret: str
    enabled: bool
    last_step: int
