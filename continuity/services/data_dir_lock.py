"""An exclusive lock on the data directory, so two servers never share one spool."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from continuity.errors import ConfigError


class DataDirLock:
    """``DATA_DIR/serve.lock``, held with flock for the life of ``continuity serve``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "serve.lock"
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ConfigError naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise ConfigError(
                f"Another continuity server (pid {holder}) is already using data_dir {self.path.parent}."
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor = descriptor

    def release(self) -> None:
        """Release the lock."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
