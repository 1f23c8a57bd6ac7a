"""Open the store the settings name; the only place that knows the concrete backends."""

from __future__ import annotations

from continuity.config.settings import Settings
from continuity.config.storage import StorageBackend
from continuity.store.protocol import Store
from continuity.store.sqlite import open_sqlite_store


async def open_store(settings: Settings, *, recover: bool = False) -> Store:
    """Open the configured store; recover=True only for the process that owns the data dir."""
    if settings.storage.backend is StorageBackend.SQLITE:
        return await open_sqlite_store(
            settings.database_path, settings.blob_path, recover=recover, key_path=settings.webmail_key_path
        )
    raise AssertionError(f"unhandled storage backend {settings.storage.backend}")
