"""Operator orders (failover, failback, pause, resume) from the CLI or the admin API.

An order is stored as a command. If ``continuity serve`` holds the data directory, its
monitor carries the command out and this waits for the result; otherwise the calling
process takes the lock and carries it out itself. Exactly one process applies
transitions at any time.
"""

from __future__ import annotations

import asyncio
import time

from continuity.config.settings import Settings
from continuity.core.failover import FailoverEvent
from continuity.core.failover_records import CommandStatus, OperatorCommand
from continuity.errors import ConfigError
from continuity.services.data_dir_lock import DataDirLock
from continuity.services.failover_wiring import build_failover
from continuity.store.protocol import Store


async def carry_out(settings: Settings, store: Store, event: FailoverEvent, note: str, actor: str) -> OperatorCommand:
    """Queue an order and return it once carried out (by the running server, or here when none runs)."""
    command = await store.failover.submit(actor, event, note)
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except ConfigError:
        deadline = time.monotonic() + settings.failover.command_timeout
        while time.monotonic() < deadline:
            current = await store.failover.command(command.id)
            if current is not None and current.status is not CommandStatus.PENDING:
                return current
            await asyncio.sleep(0.1)
        return command
    try:
        services = build_failover(settings, store, background=False)
        await services.controller.load()
        await services.controller.process_commands()
        await services.close()
    finally:
        lock.release()
    return await store.failover.command(command.id) or command
