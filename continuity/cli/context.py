"""Shared plumbing of the CLI: loading settings, opening the store, exit codes, async runs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from continuity.config.loader import load_settings
from continuity.config.settings import Settings
from continuity.errors import ConfigError, ContinuityError
from continuity.store.factory import open_store
from continuity.store.protocol import Store

T = TypeVar("T")

# Exit codes: 0 success, 1 the operation failed (or partly), 2 bad usage or configuration.
EXIT_FAILED = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print one sentence to stderr and exit with code."""
    click.echo(f"continuity: {message}", err=True)
    sys.exit(code)


@dataclass
class CliContext:
    """What every command can reach: the --config path and, lazily, the settings."""

    config_path: Path | None
    _settings: Settings | None = None

    def settings(self) -> Settings:
        """The validated settings; exits with code 2 and the reason when invalid."""
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                fail(str(exc), EXIT_USAGE)
        return self._settings

    @asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """The configured store, opened for the duration of a command."""
        store = await open_store(self.settings())
        try:
            yield store
        finally:
            await store.close()

    def run(self, work: Callable[[Store], Awaitable[T]]) -> T:
        """Open the store, run work(store) on an event loop, map errors to exit codes."""

        async def main() -> T:
            async with self.store() as store:
                return await work(store)

        return run_async(main())


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; turn ContinuityError into a one-sentence exit 1."""
    try:
        return asyncio.run(coroutine)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except ContinuityError as exc:
        fail(str(exc))


pass_context = click.make_pass_decorator(CliContext)


def console() -> Console:
    """A rich console; wide when output is not a terminal, so piped tables are not truncated."""
    return Console() if sys.stdout.isatty() else Console(width=250)
