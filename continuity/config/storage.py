"""Settings of the message store (the ``[storage]`` table)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class StorageBackend(StrEnum):
    """Store implementations the appliance can open."""

    SQLITE = "sqlite"


class StorageSettings(BaseModel):
    """Which store holds mailboxes, queue rows and message bodies."""

    model_config = ConfigDict(extra="forbid")

    backend: StorageBackend = Field(
        default=StorageBackend.SQLITE,
        description="Store implementation: sqlite (embedded, the default).",
    )
    sqlite_path: Path | None = Field(
        default=None, description="SQLite database file (default: DATA_DIR/continuity.db)."
    )
    blob_dir: Path | None = Field(
        default=None, description="Directory of content-addressed message bodies (default: DATA_DIR/blobs)."
    )
    group_commit_max: int = Field(
        default=256,
        ge=1,
        description="Most messages made durable by one group commit (one fsync round shared by all).",
    )
