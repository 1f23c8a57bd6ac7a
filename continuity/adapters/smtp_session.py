"""One inbound SMTP session: aiosmtpd's protocol with the appliance's limits added.

aiosmtpd (>= 1.4.6) parses the protocol; this subclass adds what an Internet-facing MX
needs and aiosmtpd lacks: per-IP session limits, a hard error limit per session, a
graceful drain on shutdown, a version-free banner, a faster address parser for the
common ``<user@domain>`` form, and a typed envelope.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import re
import ssl
from typing import Any, AnyStr

from aiosmtpd.smtp import MISSING, SMTP, Envelope, login_always_fail

from continuity.adapters import smtp_replies
from continuity.adapters.smtp_data import DataTooLarge, LineTooLong, read_data
from continuity.core.client_limits import ClientLimiter
from continuity.core.models import AcceptedRecipient

# Replies sent at once even with pipelined input waiting: the STARTTLS go-ahead and
# replies after which the connection closes.
_FLUSH_NOW = frozenset({"220", "221", "421"})

# The plain "<local@domain> [params]" form of MAIL/RCPT arguments: no quotes, no
# source routes, no comments. Anything else goes to aiosmtpd's full RFC 5322 parser.
# The space and the parameters are possessive: "\s+(.*)" gave back one space at a time to a
# ".*" that rescanned the rest, quadratic on "<a@b>" + many spaces + a line break inside.
# Taking the whole space run first loses no match: a shorter run only hands ".*" more spaces.
_SIMPLE_PATH = re.compile(r"<([^<>()\[\]\\\",;:@\s]+@[A-Za-z0-9.-]+)>(?:\s++(.*+))?\Z")
_NULL_PATH = re.compile(r"<>(?:\s++(.*+))?\Z")


def handler_hooks(handler: Any) -> dict[str, Any]:
    """The handle_* hooks of handler by command name, as aiosmtpd looks them up."""
    hooks = {name[len("handle_") :]: getattr(handler, name) for name in dir(handler) if name.startswith("handle_")}
    ehlo = hooks.get("EHLO")
    if ehlo is not None and len(inspect.signature(ehlo).parameters) != 5:
        raise TypeError("handle_EHLO must take (server, session, envelope, hostname, responses)")
    return hooks


class SessionEnvelope(Envelope):
    """aiosmtpd's envelope plus the recipients as the directory resolved them."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[AcceptedRecipient] = []


class SessionRegistry:
    """The live sessions of one listener, so shutdown can drain them."""

    def __init__(self) -> None:
        self.sessions: set[ContinuitySMTP] = set()
        self.draining = False
        self.all_closed = asyncio.Event()

    def remove(self, session: ContinuitySMTP) -> None:
        """Forget a closed session; set all_closed when draining and none is left."""
        self.sessions.discard(session)
        if self.draining and not self.sessions:
            self.all_closed.set()

    def drain(self) -> None:
        """Close idle sessions now; the others close when their transaction ends."""
        self.draining = True
        if not self.sessions:
            self.all_closed.set()
        for session in list(self.sessions):
            session.close_if_idle()


class ContinuitySMTP(SMTP):
    """aiosmtpd's SMTP protocol with per-IP limits, an error limit and graceful drain."""

    def __init__(
        self,
        handler: Any,
        *,
        hooks: dict[str, Any],
        limiter: ClientLimiter,
        registry: SessionRegistry,
        max_errors: int,
        max_line_length: int,
        data_size_limit: int,
        hostname: str,
        tls_context: ssl.SSLContext | None,
        timeout: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        # aiosmtpd's own __init__ introspects the protocol and the handler with
        # inspect.getmembers() on every connection, which costs a quarter of the CPU of
        # a whole one-message session. This sets the same state from per-class caches
        # (hooks is computed once per handler by handler_hooks()). The unit test
        # test_smtp_session_init compares it with aiosmtpd's __init__ attribute by
        # attribute, so an aiosmtpd release that changes its state fails that test.
        self.line_length_limit = max_line_length + 2
        self.__ident__ = "ESMTP"
        self.loop = loop
        asyncio.StreamReaderProtocol.__init__(
            self,
            asyncio.StreamReader(loop=loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=loop,
        )
        self.event_handler = handler
        self.data_size_limit = data_size_limit
        self.enable_SMTPUTF8 = False
        self._decode_data = False
        # Per session, unlike aiosmtpd's class-wide dict that EHLO keeps growing.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        self.hostname = hostname
        self.tls_context = tls_context
        self.require_starttls = False
        self._timeout_duration = timeout
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = True
        self._proxy_timeout = None
        self._authenticator = None
        self._auth_callback = login_always_fail
        self._auth_required = False
        self._auth_methods = {}  # an MX offers no AUTH
        self._handle_hooks = hooks
        self._ehlo_hook_ver = "new"
        self._smtp_methods = {command: getattr(self, attribute) for command, attribute in _COMMANDS}
        self._enforce_call_limit = False
        # The appliance's own state.
        self._limiter = limiter
        self._registry = registry
        self._max_errors = max_errors
        self._errors = 0
        self._client_ip: str | None = None
        self._closing = False
        self._counted = False
        self._replies: list[bytes] = []
        self._flush_scheduled = False

    @property
    def client_ip(self) -> str:
        """The client's IP address."""
        return self._client_ip or "unknown"

    def _create_envelope(self) -> SessionEnvelope:
        return SessionEnvelope()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            peer = transport.get_extra_info("peername")
            self._client_ip = str(peer[0]) if peer else "unknown"
            self._registry.sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        if self in self._registry.sessions:
            self._registry.remove(self)
            if self._client_ip is not None and self._counted:
                self._limiter.close_session(self._client_ip)
                self._counted = False
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._registry.draining:
            await self._send_and_close(smtp_replies.SHUTTING_DOWN)
            return
        if not self._limiter.open_session(self.client_ip):
            await self._send_and_close(smtp_replies.TOO_MANY_SESSIONS)
            return
        self._counted = True
        await super()._handle_client()

    def _input_pending(self) -> bool:
        # StreamReader has no public way to ask whether input is buffered.
        return bool(self._reader._buffer)  # type: ignore[attr-defined]

    def _flush_replies(self) -> None:
        self._flush_scheduled = False
        if self._replies and self.transport is not None:
            self._writer.write(b"".join(self._replies))
        self._replies.clear()

    async def _send_and_close(self, reply: str) -> None:
        self._closing = True
        self._flush_replies()
        if self.transport is None:
            return
        self._writer.write(reply.encode("ascii") + b"\r\n")
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()
        if self.transport is not None:
            self.transport.close()

    @property
    def in_transaction(self) -> bool:
        """True between MAIL FROM and the end of the transaction (DATA reply or RSET)."""
        return bool(self.envelope is not None and self.envelope.mail_from)

    def close_if_idle(self) -> None:
        """Send 421 and close unless a transaction is in progress (then close after it)."""
        if not self.in_transaction and not self._closing and self.transport is not None:
            asyncio.get_running_loop().create_task(self._send_and_close(smtp_replies.SHUTTING_DOWN))

    async def push(self, status: AnyStr) -> None:
        text = status if isinstance(status, str) else status.decode("ascii", "replace")
        self._replies.append(text.encode("ascii", "replace") + b"\r\n")
        if self._input_pending() and text[:3] not in _FLUSH_NOW and "goodbye" not in text:
            # RFC 2920 section 3.2: while pipelined commands are still waiting, hold the
            # replies and send the group's replies as one unit (one segment, one syscall).
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush_replies)
        else:
            self._flush_replies()
            await self._writer.drain()
        if self._closing or text[3:4] == "-":
            return  # already closing, or not the last line of a multi-line reply
        if text[:1] in ("4", "5"):
            self._errors += 1
            if self._errors >= self._max_errors:
                await self._send_and_close(smtp_replies.TOO_MANY_ERRORS)
                return
        if self._registry.draining and not self.in_transaction and not text.startswith("221"):
            # Shutting down: the transaction (if any) has ended, so close politely now.
            await self._send_and_close(smtp_replies.SHUTTING_DOWN)

    async def smtp_DATA(self, arg: str | None) -> None:  # noqa: N802 - aiosmtpd naming
        # aiosmtpd reads DATA one line per await; this reads it in a few large chunks
        # with the same result (tests/unit/adapters/test_smtp_data_reader.py compares
        # both on generated input), which halves the CPU of a 10 KB message.
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        result = await read_data(self._reader, self.data_size_limit, self.line_length_limit)
        if isinstance(result, DataTooLarge):
            self._end_transaction()
            await self.push(smtp_replies.too_much_data(self.data_size_limit or 0))
            return
        if isinstance(result, LineTooLong):
            self._end_transaction()
            await self.push(smtp_replies.line_too_long(self.line_length_limit - 2))
            return
        self.envelope.content = self.envelope.original_content = result
        status = await self._call_handler_hook("DATA")
        self._end_transaction()
        await self.push("250 OK" if status is MISSING else status)

    def _end_transaction(self) -> None:
        self._set_post_data_state()  # type: ignore[no-untyped-call]

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _SIMPLE_PATH.match(arg)
        if match is not None:
            return match.group(1), match.group(2) or ""
        match = _NULL_PATH.match(arg)
        if match is not None:
            return "<>", match.group(1) or ""
        result: tuple[str | None, str | None] = super()._getaddr(arg)
        return result


# (command, method name) of every smtp_* method, computed once for the class.
_COMMANDS = tuple((name[len("smtp_") :], name) for name in dir(ContinuitySMTP) if name.startswith("smtp_"))
