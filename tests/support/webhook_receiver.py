"""A webhook receiver on loopback: an HTTP server that records every POST (headers and JSON body)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One POST the receiver got."""

    path: str
    authorization: str
    body: Any


class WebhookReceiver:
    """ThreadingHTTPServer on 127.0.0.1:<free port> answering 204 to every POST."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, self.headers.get("Authorization", ""), json.loads(raw or b"null"))
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        """Start serving in a background thread."""
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The POSTs received, waiting until at least count have arrived (or the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        with self._lock:
            return list(self.received)

    def stop(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()
