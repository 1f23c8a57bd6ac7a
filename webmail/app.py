"""The litestar application served on ``[web] listen``: health, the admin API and (next) webmail.

Routers come from their own packages (``webmail.api`` for the admin API); this module
only assembles them, with the OpenAPI schema at ``/api/v1/schema``.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from continuity import __version__
from webmail.api import admin_router
from webmail.api.signals import webhook_router
from webmail.context import WebContext
from webmail.mail.router import webmail_routers
from webmail.metrics import metrics_route


@dataclass(frozen=True, slots=True)
class Health:
    """The body of ``GET /healthz``."""

    status: str
    queued_messages: int


def create_app(context: WebContext) -> Litestar:
    """Build the web application around the running appliance."""

    @get("/healthz", include_in_schema=False)
    async def healthz() -> Health:
        """Liveness and readiness: the store answers and how many messages wait for replay."""
        return Health(status="ok", queued_messages=await context.store.messages.count())

    openapi = OpenAPIConfig(
        title="Continuity admin API",
        version=__version__,
        path="/api/v1/schema",
        components=Components(
            security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer", description="[admin] token")}
        ),
    )
    handlers: list[ControllerRouterHandler] = [healthz, admin_router(context), metrics_route(context)]
    handlers.append(webhook_router(context))  # POST /api/v1/signals: its own token
    if context.webmail is not None:
        handlers += webmail_routers(context.webmail)
    return Litestar(
        route_handlers=handlers,
        openapi_config=openapi,
        logging_config=None,
        state=State({"context": context, "webmail": context.webmail}),
    )
