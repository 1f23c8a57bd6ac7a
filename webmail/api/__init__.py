"""The admin HTTP API under ``/api/v1``: token-authenticated, described by an OpenAPI schema."""

from __future__ import annotations

from litestar import Router

from webmail.api.auth import admin_guard
from webmail.api.failover import FailoverController
from webmail.api.quarantine import QuarantineController
from webmail.api.queue import QueueController
from webmail.api.replay import ReplayController
from webmail.api.signals import SignalsController
from webmail.context import WebContext


def admin_router(context: WebContext) -> Router:
    """Every admin endpoint, behind the admin token guard."""
    return Router(
        path="/api/v1",
        route_handlers=[FailoverController, QueueController, QuarantineController, ReplayController, SignalsController],
        guards=[admin_guard],
        dependencies=context.dependencies(),
        tags=["admin"],
        security=[{"BearerToken": []}],
    )
