"""Running the replay in the ``continuity replay`` process when no server holds the data directory.

The process takes the data directory's lock (so no ``continuity serve`` runs meanwhile),
opens the store as its owner, builds the failover controller without background tasks
and the filter pipeline, and hands back the replayer. When the run completes, the
controller's reconcile moves the state on (REPLAY_COMPLETED, then the switch back).
"""

from __future__ import annotations

from dataclasses import dataclass

from continuity.config.settings import Settings
from continuity.errors import ConfigError
from continuity.services.data_dir_lock import DataDirLock
from continuity.services.failover_wiring import FailoverServices, build_failover
from continuity.services.filter_setup import FilterService
from continuity.services.replayer import ReplayService
from continuity.store.factory import open_store
from continuity.store.protocol import Store


@dataclass
class LocalReplay:
    """The pieces of a replay run in this process."""

    store: Store
    failover: FailoverServices
    replay: ReplayService
    filters: FilterService | None
    lock: DataDirLock

    @classmethod
    async def open(cls, settings: Settings) -> LocalReplay | None:
        """Take the lock and build everything; None when a running server holds the data directory."""
        lock = DataDirLock(settings.data_dir)
        try:
            lock.acquire()
        except ConfigError:
            return None
        try:
            store = await open_store(settings, recover=True)
        except BaseException:
            lock.release()
            raise
        try:
            failover = build_failover(settings, store, background=False)
            await failover.controller.load()
            filters = (
                FilterService(settings, store.filter_memory, store.mailboxes) if settings.filters.enabled else None
            )
            if filters is not None:
                await filters.start(background=False)
            assert failover.replay is not None
            failover.replay.use_pipeline(filters.pipeline if filters is not None else None)
            return cls(store, failover, failover.replay, filters, lock)
        except BaseException:
            await store.close()
            lock.release()
            raise

    async def close(self) -> None:
        """Stop everything and release the lock."""
        try:
            await self.failover.close()
            if self.filters is not None:
                await self.filters.stop()
            await self.store.close()
        finally:
            self.lock.release()
