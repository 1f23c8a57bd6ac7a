"""A small real IMAPS proxy in front of the stand-in's Dovecot that plays an overloaded Exchange.

Exchange throttles IMAP clients through its client throttling policies (the IMAP budget):
an APPEND beyond the budget is answered ``NO [LIMIT] Server busy`` (Exchange Online:
"NO Server Unavailable. 15"), and a busy mailbox server answers slowly. The proxy
terminates TLS with the stand-in's certificate, forwards everything to Dovecot over TLS,
and, on a schedule counted in forwarded APPENDs, first refuses every APPEND for a while,
then delays each one. It records when it refused and forwarded.

It also plays Exchange Online's per-mailbox budget: with ``mailbox_rate`` set, each
mailbox (named by the LOGIN of its connection, ``user*master``) in ``limited`` (every one
when empty) takes at most that many APPENDs per second; an APPEND sooner is answered
``NO [THROTTLED] Request is throttled. Suggested Backoff Time: N milliseconds`` (N: until
the mailbox's next slot), and the refusal and its hint are recorded per mailbox. With
``drop_flagged`` it removes ``\\Flagged`` from every APPEND's flags, as Exchange may.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from pathlib import Path

from tests.support.ports import free_port

_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r\n$")
_LOGIN_USER = re.compile(rb'^"?([^"*\s]+)')


class ThrottlingImapProxy:
    """127.0.0.1:port -> Dovecot's IMAPS port, with a busy phase and a slow phase."""

    def __init__(self, upstream_port: int, cert_file: Path, key_file: Path, ca_file: Path) -> None:
        self.port = free_port()
        self._upstream = upstream_port
        self._server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_tls.load_cert_chain(str(cert_file), str(key_file))
        self._client_tls = ssl.create_default_context(cafile=str(ca_file))
        self._server: asyncio.Server | None = None
        # After busy_after forwarded APPENDs: refuse every APPEND for busy_for seconds,
        # then delay the next slow_appends APPENDs by slow_delay seconds each.
        self.busy_after = 10**9
        self.busy_for = 0.0
        self.slow_appends = 0
        self.slow_delay = 0.0
        self.busy_from = 0.0
        self.busy_until = 0.0
        self.refused: list[float] = []
        self.forwarded: list[float] = []
        # Exchange Online's per-mailbox budget (see the module docstring).
        self.mailbox_rate = 0.0
        self.limited: set[str] = set()
        self._next_slot: dict[str, float] = {}
        self.mailbox_refused: dict[str, list[tuple[float, float]]] = {}  # (when, suggested backoff seconds)
        self.mailbox_forwarded: dict[str, list[float]] = {}
        self.appended_bytes: dict[str, list[int]] = {}
        self.drop_flagged = False
        self.append_lines: list[bytes] = []

    async def start(self) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self._server_tls)

    async def stop(self) -> None:
        """Stop listening and close connections."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def _busy(self, now: float) -> bool:
        if not self.busy_from and len(self.forwarded) >= self.busy_after:
            self.busy_from, self.busy_until = now, now + self.busy_for
        return self.busy_from <= now < self.busy_until

    def _slow(self, now: float) -> bool:
        return bool(self.busy_until) and now >= self.busy_until and self.slow_appends > 0

    def _over_budget(self, mailbox: str, now: float) -> float:
        """Seconds until mailbox may append again (0: now, and the slot is taken)."""
        if self.mailbox_rate <= 0 or (self.limited and mailbox not in self.limited):
            return 0.0
        slot = self._next_slot.get(mailbox, 0.0)
        if now < slot:
            return slot - now
        self._next_slot[mailbox] = now + 1.0 / self.mailbox_rate
        return 0.0

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1", self._upstream, ssl=self._client_tls, server_hostname="127.0.0.1"
        )
        pump = asyncio.create_task(self._pump(up_reader, writer))
        mailbox = ""
        try:
            while line := await reader.readline():
                tag, _, rest = line.partition(b" ")
                command, _, arguments = rest.partition(b" ")
                command = command.upper()
                literal = _LITERAL.search(line)
                now = time.monotonic()
                if command == b"LOGIN" and (user := _LOGIN_USER.match(arguments)):
                    mailbox = user.group(1).decode("ascii", "replace")
                if command == b"APPEND" and (wait := self._over_budget(mailbox, now)) > 0:
                    backoff = max(1, round(wait * 1000))
                    self.mailbox_refused.setdefault(mailbox, []).append((now, backoff / 1000))
                    if literal and literal.group(2):  # LITERAL+: the data follows regardless
                        await reader.readexactly(int(literal.group(1)) + 2)
                    writer.write(
                        tag
                        + b" NO [THROTTLED] Request is throttled. Suggested Backoff Time: "
                        + str(backoff).encode()
                        + b" milliseconds\r\n"
                    )
                    continue
                if command == b"APPEND" and self._busy(now):
                    self.refused.append(now)
                    if literal and literal.group(2):  # LITERAL+: the data follows regardless
                        await reader.readexactly(int(literal.group(1)) + 2)
                    writer.write(tag + b" NO [LIMIT] Server busy, try again later\r\n")
                    continue
                if command == b"APPEND":
                    self.append_lines.append(line)
                    if self.drop_flagged:
                        line = line.replace(b"\\Flagged ", b"").replace(b" \\Flagged", b"").replace(b"\\Flagged", b"")
                    if self._slow(now):
                        self.slow_appends -= 1
                        await asyncio.sleep(self.slow_delay)
                    self.forwarded.append(time.monotonic())
                    self.mailbox_forwarded.setdefault(mailbox, []).append(time.monotonic())
                    if literal:
                        self.appended_bytes.setdefault(mailbox, []).append(int(literal.group(1)))
                up_writer.write(line)
                if literal:
                    # The client sends the literal once Dovecot's "+" reached it through the pump.
                    up_writer.write(await reader.readexactly(int(literal.group(1))))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            up_writer.close()
            writer.close()
            pump.cancel()
