"""The periodic directory sync inside ``serve``: every [directory] interval, never overlapping.

A failed or refused run is logged (and a refusal alerts the admins through the sync itself);
the loop goes on, so a directory that is down for a while does not stop the appliance.
"""

from __future__ import annotations

import asyncio
import logging

from continuity.directory.service import DirectorySync
from continuity.errors import ContinuityError

log = logging.getLogger("continuity.directory")


async def sync_periodically(sync: DirectorySync, interval: float) -> None:
    """Run sync now and then every interval seconds until cancelled."""
    while True:
        try:
            await sync.run()
        except ContinuityError as exc:
            log.error("directory sync failed, retrying in %.0fs: %s", interval, exc)
        except Exception:
            log.exception("directory sync failed unexpectedly, retrying in %.0fs", interval)
        await asyncio.sleep(interval)
