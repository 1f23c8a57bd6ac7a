"""The litestar application served on ``[web] listen``: health, metrics, the admin API and the webmail.

Routers come from their own packages (``webmail.api`` for the admin API); this module
only assembles them. The OpenAPI schema is served as JSON only, at ``/api/v1/schema``
and ``/api/v1/schema/openapi.json``, behind the admin token and under a CSP that allows
nothing: no documentation page with script from a CDN runs on the webmail's origin.
``/healthz`` says only that the process and its store answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Litestar, Router, get
from litestar.datastructures import ResponseHeader, State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from continuity import __version__
from webmail.api import admin_router
from webmail.api.auth import admin_guard
from webmail.api.signals import webhook_router
from webmail.context import WebContext
from webmail.mail.router import webmail_routers
from webmail.metrics import metrics_route

_SCHEMA_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Health:
    """The body of ``GET /healthz``: nothing about the failover state or the queue."""

    status: str


def create_app(context: WebContext) -> Litestar:
    """Build the web application around the running appliance."""

    @get("/healthz", include_in_schema=False)
    async def healthz() -> Health:
        """Liveness and readiness: the process and its store answer (one single-row read)."""
        await context.store.mailboxes.directory_serial()
        return Health(status="ok")

    openapi = OpenAPIConfig(
        title="Continuity admin API",
        version=__version__,
        path="/api/v1/schema",
        components=Components(
            security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer", description="[admin] token")}
        ),
        render_plugins=[JsonRenderPlugin()],
        openapi_router=Router(
            "/api/v1/schema",
            route_handlers=[],
            guards=[admin_guard],
            response_headers=[ResponseHeader(name=k, value=v) for k, v in _SCHEMA_HEADERS.items()],
            include_in_schema=False,
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
