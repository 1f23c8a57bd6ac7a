"""The litestar application served on ``[web] listen``.

For now it answers the health check that load balancers and the operator's monitoring
poll; webmail and the admin API mount here as they are built.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Litestar, get

from continuity.store.protocol import Store


@dataclass(frozen=True, slots=True)
class Health:
    """The body of ``GET /healthz``."""

    status: str
    queued_messages: int


def create_app(store: Store) -> Litestar:
    """Build the web application around an open store."""

    @get("/healthz")
    async def healthz() -> Health:
        """Liveness and readiness: the store answers and how many messages wait for replay."""
        return Health(status="ok", queued_messages=await store.messages.count())

    return Litestar(route_handlers=[healthz], openapi_config=None, logging_config=None)
