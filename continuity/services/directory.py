"""An in-memory copy of the mailbox directory, kept fresh for the SMTP listener.

RCPT checks must not wait on the database, so the listener reads this snapshot. A
background task polls the store's directory serial (a counter bumped by every mailbox
or alias change, from any process such as the CLI) and reloads when it moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from continuity.core.models import DirectoryEntry
from continuity.errors import StorageError
from continuity.store.protocol import MailboxRepository

log = logging.getLogger(__name__)


class DirectoryCache:
    """The accepted addresses, refreshed when the store says they changed."""

    def __init__(self, mailboxes: MailboxRepository, poll_interval: float = 1.0) -> None:
        self._mailboxes = mailboxes
        self._poll_interval = poll_interval
        self._serial: int | None = None
        self.entries: dict[str, DirectoryEntry] = {}
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        """Reload when the directory changed; True when it was reloaded."""
        serial = await self._mailboxes.directory_serial()
        if serial == self._serial:
            return False
        entries = await self._mailboxes.directory()
        self.entries = entries
        if self._serial is not None:
            log.info("directory reloaded: %d addresses", len(entries))
        self._serial = serial
        return True

    async def start(self) -> None:
        """Load the directory and keep it fresh in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="directory-refresh")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.refresh()
            except StorageError as exc:
                log.warning("directory refresh failed, keeping the previous copy: %s", exc)

    async def stop(self) -> None:
        """Stop the background refresh."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
