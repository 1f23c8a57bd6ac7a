"""Serve an ASGI application with uvicorn on the application's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn
from litestar import Litestar

from continuity.config.types import HostPort


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the appliance handles signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebListener:
    """Runs the web application until stopped."""

    def __init__(self, app: Litestar, listen: HostPort) -> None:
        config = uvicorn.Config(
            app,
            host=listen.host,
            port=listen.port,
            loop="none",
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> tuple[str, int]:
        """Start serving; returns the bound address."""
        self._task = asyncio.create_task(self._server.serve(), name="web")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises the bind error
                raise OSError("the web server stopped during start-up")
            await asyncio.sleep(0.01)
        sockets = [sock for server in self._server.servers for sock in server.sockets]
        bound = sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        """Finish open requests and stop."""
        self._server.should_exit = True
        if self._task is not None:
            await self._task
