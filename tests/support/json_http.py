"""A small JSON-over-HTTP server on 127.0.0.1 in a thread, for stand-ins of vendors' APIs.

Why http.server: the stand-ins answer a handful of documented requests; the standard
library's threaded server needs no event loop of its own, so tests on any loop (or none)
can use it. A stand-in gives one function, ``handle(request) -> Reply``, and records
every request it saw; bodies are JSON, or forms (``application/x-www-form-urlencoded``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as the stand-in sees it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    """What the stand-in answers: a status, a JSON body (None: empty), extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class JsonHttpServer:
    """Serves handle() on 127.0.0.1 (a free port) until stop()."""

    def __init__(self, handle: Callable[[Request], Reply]) -> None:
        self.requests: list[Request] = []
        # The status answered to each request, in the same order.
        self.statuses: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                    body: Any = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
                else:
                    body = json.loads(raw) if raw else None
                request = Request(
                    self.command,
                    parts.path,
                    {key: values[0] for key, values in parse_qs(parts.query).items()},
                    {key.lower(): value for key, value in self.headers.items()},
                    body,
                )
                server.requests.append(request)
                reply = handle(request)
                server.statuses.append(reply.status)
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            # http.server's names for the methods.
            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start serving in a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
