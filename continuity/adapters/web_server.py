"""Serve an ASGI application with uvicorn on the application's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from litestar import Litestar

from continuity.config.types import HostPort


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the appliance handles signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind_sockets(listen: HostPort) -> list[socket.socket]:
    """Bound (not yet listening) sockets for every address of listen; OSError when one cannot be bound.

    The appliance binds them itself: uvicorn answers a bind error with ``sys.exit``, which
    escapes the event loop as a traceback instead of the one-sentence start-up failure.
    The sockets are set up as asyncio's ``create_server`` would (SO_REUSEADDR, IPv6-only
    sockets beside IPv4 ones).
    """
    infos = socket.getaddrinfo(listen.host or None, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class WebListener:
    """Runs the web application until stopped."""

    def __init__(self, app: Litestar, listen: HostPort) -> None:
        self._listen = listen
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
        """Start serving; returns the bound address (OSError when the address cannot be bound)."""
        sockets = await asyncio.to_thread(bind_sockets, self._listen)
        self._task = asyncio.create_task(self._server.serve(sockets=sockets), name="web")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises the bind error
                raise OSError("the web server stopped during start-up")
            await asyncio.sleep(0.01)
        listening = [sock for server in self._server.servers for sock in server.sockets]
        bound = listening[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        """Finish open requests and stop."""
        self._server.should_exit = True
        if self._task is not None:
            await self._task
