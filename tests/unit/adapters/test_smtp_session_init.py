"""ContinuitySMTP sets up the same state as aiosmtpd's own __init__ (which it skips for speed)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiosmtpd.smtp import SMTP

from continuity.adapters.smtp_session import ContinuitySMTP, SessionRegistry, handler_hooks
from continuity.core.client_limits import ClientLimiter, ClientLimitPolicy

OWN_ATTRIBUTES = {
    "_limiter",
    "_registry",
    "_max_errors",
    "_errors",
    "_client_ip",
    "_closing",
    "_counted",
    "_replies",
    "_flush_scheduled",
}


class Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        return responses


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if callable(value) and hasattr(value, "__func__"):
        return value.__func__.__name__
    if isinstance(value, asyncio.StreamReader):
        return ("StreamReader", value._limit)  # type: ignore[attr-defined]
    return value


async def test_same_attributes_as_aiosmtpd() -> None:
    loop = asyncio.get_running_loop()
    handler = Handler()
    theirs = SMTP(
        handler,
        data_size_limit=4096,
        hostname="mx.test",
        ident="ESMTP",
        timeout=30,
        loop=loop,
        auth_exclude_mechanism=["LOGIN", "PLAIN"],
    )
    theirs.line_length_limit = 1002
    ours = ContinuitySMTP(
        handler,
        hooks=handler_hooks(handler),
        limiter=ClientLimiter(ClientLimitPolicy(10, 0), time.monotonic),
        registry=SessionRegistry(),
        max_errors=5,
        max_line_length=1000,
        data_size_limit=4096,
        hostname="mx.test",
        tls_context=None,
        timeout=30,
        loop=loop,
    )
    their_state = {key: value for key, value in vars(theirs).items()}
    our_state = {key: value for key, value in vars(ours).items() if key not in OWN_ATTRIBUTES}
    # Ours adds a per-session command_size_limits (aiosmtpd shares one dict class-wide).
    assert set(our_state) == set(their_state) | {"command_size_limits"}
    skip = {
        "_stream_reader",
        "_stream_reader_wr",
        "_strong_reader",
        "_closed",
        "_loop",
        "loop",
        "_client_connected_cb",
        "command_size_limits",
        "_stream_writer",
        "_transport",
        "_paused",
        "_drain_waiters",
        "_connection_lost",
        "_over_ssl",
        "_source_traceback",
        "_task",
    }
    for key in set(our_state) - skip:
        if key == "require_starttls":  # aiosmtpd stores `tls_context and flag` (None here)
            assert bool(our_state[key]) == bool(their_state[key])
            continue
        assert _comparable(our_state[key]) == _comparable(their_state[key]), key
    assert ours._stream_reader._limit == 1002  # type: ignore[attr-defined]
