"""Folders and flags of a standby mailbox: the standard folders, user folder names, IMAP flags.

Folder names and flags are stored as the replay will APPEND them: standard folders map
to Exchange's well-known folders (INBOX -> Inbox, Sent -> Sent Items, Drafts -> Drafts,
Trash -> Deleted Items, Junk -> Junk Email); flags are IMAP system flags.
"""

from __future__ import annotations

from enum import StrEnum


class StandardFolder(StrEnum):
    """Folders every mailbox has."""

    INBOX = "INBOX"
    SENT = "Sent"
    DRAFTS = "Drafts"
    TRASH = "Trash"
    JUNK = "Junk"

    @property
    def label(self) -> str:
        """The name shown to users."""
        return "Inbox" if self is StandardFolder.INBOX else self.value


class Flag(StrEnum):
    """IMAP system flags kept per message and mailbox."""

    SEEN = "\\Seen"
    FLAGGED = "\\Flagged"
    ANSWERED = "\\Answered"
    DRAFT = "\\Draft"


STANDARD_NAMES = frozenset(folder.value for folder in StandardFolder)
_MAX_NAME = 100
_FORBIDDEN = set('/\\"*%')


def validate_folder_name(name: str) -> str:
    """Return the cleaned name of a new user folder, or raise ValueError with a sentence."""
    text = " ".join(name.split())
    if not text:
        raise ValueError("a folder name must not be empty")
    if len(text) > _MAX_NAME:
        raise ValueError(f"a folder name must have at most {_MAX_NAME} characters")
    if any(char in _FORBIDDEN or not char.isprintable() for char in text):
        raise ValueError('a folder name must not contain / \\ " * % or control characters')
    if text.upper() == "INBOX" or text in STANDARD_NAMES:
        raise ValueError(f"'{text}' is a standard folder")
    return text


def parse_flags(text: str) -> frozenset[Flag]:
    """The known flags in a stored flags string (unknown words are dropped)."""
    known = {flag.value: flag for flag in Flag}
    return frozenset(known[word] for word in text.split() if word in known)


def format_flags(flags: frozenset[Flag] | set[Flag]) -> str:
    """The stored form: space-separated, in a stable order."""
    return " ".join(flag.value for flag in Flag if flag in flags)


def with_flag(text: str, flag: Flag, present: bool) -> str:
    """The stored flags string with flag set or cleared."""
    flags = set(parse_flags(text))
    if present:
        flags.add(flag)
    else:
        flags.discard(flag)
    return format_flags(flags)
