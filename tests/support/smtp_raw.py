"""A raw SMTP client over a real socket, for conversations smtplib refuses to have.

smtplib normalises line endings and dot-stuffs, so smuggling vectors and exact
pipelining need bytes written as they are.
"""

from __future__ import annotations

import socket


class RawSmtp:
    """Send exact bytes, read exact replies."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""
        self.banner = self.reply()

    def send(self, data: bytes) -> None:
        """Write data as it is."""
        self.sock.sendall(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; unread: {self._buffer!r}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def reply(self) -> str:
        """One complete (possibly multi-line) reply, lines joined by newlines."""
        lines = [self._line()]
        while lines[-1][3:4] == b"-":
            lines.append(self._line())
        return "\n".join(line.decode("utf-8", "replace") for line in lines)

    def command(self, line: str) -> str:
        """Send one command line and return its reply."""
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def closed_by_server(self) -> bool:
        """True when the server has closed the connection."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return True

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
