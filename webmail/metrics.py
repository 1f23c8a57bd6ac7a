"""``GET /metrics``: the Prometheus exposition of the failover monitor (probes, state, queue depth).

With ``[web] metrics_token`` set, a scrape must send ``Authorization: Bearer <token>``
(compared in constant time; 401 without it, 403 when wrong). The queue depth is counted
at most once every ``_QUEUE_DEPTH_TTL`` seconds, however often anyone scrapes, and
concurrent scrapes share one count.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST

from webmail.context import WebContext

_QUEUE_DEPTH_TTL = 15.0


class CachedCount:
    """A count that is refreshed at most every ttl seconds; one refresh at a time."""

    def __init__(self, count: Callable[[], Awaitable[int]], ttl: float, clock: Callable[[], float] = time.monotonic):
        self._count = count
        self._ttl = ttl
        self._clock = clock
        self._value = 0
        self._at: float | None = None
        self._lock = asyncio.Lock()

    async def value(self) -> int:
        """The count, from the cache while it is fresh."""
        if self._at is not None and self._clock() - self._at < self._ttl:
            return self._value
        async with self._lock:
            if self._at is None or self._clock() - self._at >= self._ttl:
                self._value = await self._count()
                self._at = self._clock()
        return self._value


def _refusal(context: WebContext, request: Request) -> Response[bytes] | None:  # type: ignore[type-arg]
    token = context.settings.web.metrics_token
    if token is None:
        return None
    scheme, _space, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return Response(
            b"send 'Authorization: Bearer <metrics token>'\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode()):
        return Response(b"the metrics token is not valid\n", status_code=403, media_type="text/plain")
    return None


def metrics_route(context: WebContext) -> HTTPRouteHandler:
    """The /metrics handler for this appliance (503 when the failover services are not running)."""
    queue_depth = CachedCount(context.store.messages.count, _QUEUE_DEPTH_TTL)

    @get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response[bytes]:  # type: ignore[type-arg]
        refused = _refusal(context, request)
        if refused is not None:
            return refused
        failover = context.failover
        if failover is None:
            return Response(b"failover services are not running\n", status_code=503, media_type="text/plain")
        failover.metrics.queue_depth.set(await queue_depth.value())
        return Response(failover.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return metrics
