"""``GET /metrics``: the Prometheus exposition of the failover monitor (probes, state, queue depth)."""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST

from webmail.context import WebContext


def metrics_route(context: WebContext) -> HTTPRouteHandler:
    """The /metrics handler for this appliance (503 when the failover services are not running)."""

    @get("/metrics", include_in_schema=False)
    async def metrics() -> Response[bytes]:
        failover = context.failover
        if failover is None:
            return Response(b"failover services are not running\n", status_code=503, media_type="text/plain")
        failover.metrics.queue_depth.set(await context.store.messages.count())
        return Response(failover.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return metrics
