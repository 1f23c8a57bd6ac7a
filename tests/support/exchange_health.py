"""A small HTTPS server answering Exchange's health endpoints with "200 OK" (part of the primary stand-in).

Run as a process (``python -m tests.support.exchange_health PORT CERT KEY [DOWN_PATH...]``)
so stopping the stand-in stops it like a real server; paths given as DOWN_PATH answer 503.
"""

from __future__ import annotations

import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEALTH_PATHS = (
    "/owa/healthcheck.htm",
    "/ews/healthcheck.htm",
    "/Autodiscover/healthcheck.htm",
    "/mapi/healthcheck.htm",
)


def serve(port: int, cert: str, key: str, down: frozenset[str]) -> None:
    """Serve until killed."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in HEALTH_PATHS and self.path not in down:
                status, body = 200, b"200 OK<br/>server.example.com<br/>"
            elif self.path in down:
                status, body = 503, b"503 Service Unavailable"
            else:
                status, body = 404, b"not found"
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], sys.argv[3], frozenset(sys.argv[4:]))
