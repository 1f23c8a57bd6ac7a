"""What a directory source hands the sync: users as the directory sees them, and what went away."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class SourceKind(StrEnum):
    """Where the mailboxes come from (``[directory] source``)."""

    NONE = "none"
    AD = "ad"
    ENTRA = "entra"


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """One mail-enabled user, shared or resource mailbox as the directory describes it.

    external_id is the directory's immutable id (AD objectGUID, Entra object id); addresses
    are not identities, since they are renamed.
    """

    external_id: str
    address: str
    display_name: str
    aliases: tuple[str, ...] = ()
    enabled: bool = True
    alternate_email: str | None = None
    mobile: str | None = None
    kind: str = "user"


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """One read of the directory.

    changed holds the users read in full this time (everyone, or only what changed since the
    saved cursor). removed holds ids the directory reported as deleted or moved out of scope;
    present, when not None, is every id in scope now, so a linked mailbox missing from it was
    removed.
    memberships, when not None, is every in-scope user's complete set of failover groups.
    cursor is what the next run starts from (DirSync cookie, USN, Graph delta links), saved
    only once the batch is applied.
    """

    changed: tuple[DirectoryUser, ...]
    removed: tuple[str, ...] = ()
    present: frozenset[str] | None = None
    memberships: Mapping[str, frozenset[str]] | None = None
    cursor: str = ""
    mode: str = "full"
    warnings: tuple[str, ...] = field(default=())
