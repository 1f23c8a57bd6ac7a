"""What the appliance remembers about each directory object it provisioned (the link table's rows)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DirectoryLink:
    """A directory object tied to a standby mailbox.

    disabled_by_sync marks a mailbox this sync disabled (directory disabled or removed it), so
    that only those are enabled again when the directory enables them: a mailbox an admin
    disabled by hand stays disabled. removed: the object is gone from the directory.
    """

    external_id: str
    address: str
    groups: frozenset[str] = frozenset()
    mobile: str | None = None
    disabled_by_sync: bool = False
    removed: bool = False


@dataclass(frozen=True, slots=True)
class SyncRun:
    """The outcome of one sync run as `directory status` shows it."""

    at: float
    source: str
    mode: str
    outcome: str
    summary: str
    counts: dict[str, int]
