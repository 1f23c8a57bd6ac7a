"""What the directory sync stores: the link of each directory object to its mailbox, cursors, runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from continuity.directory.core.links import DirectoryLink, SyncRun


class DirectorySyncRepository(Protocol):
    """Links (directory id -> mailbox, groups, contact), each source's cursor and the last runs."""

    async def links(self) -> dict[str, DirectoryLink]:
        """Every stored link by external id."""
        ...

    async def save_links(self, links: Mapping[str, DirectoryLink]) -> None:
        """Replace the link table with links, in one transaction."""
        ...

    async def cursor(self, source: str) -> str:
        """Where the next incremental read of source starts ("" for a full read)."""
        ...

    async def set_cursor(self, source: str, cursor: str) -> None:
        """Remember the cursor of source ("" forgets it: the next read is full)."""
        ...

    async def record_run(self, run: SyncRun) -> None:
        """Keep one run's outcome (the newest 100 are kept)."""
        ...

    async def runs(self, limit: int = 10) -> list[SyncRun]:
        """The newest runs, newest first."""
        ...

    async def groups(self) -> dict[str, list[str]]:
        """Each failover group's member mailboxes (addresses, sorted), groups sorted by name."""
        ...
