"""The admin API's authentication: a bearer token from ``[admin] token``, compared in constant time."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, ServiceUnavailableException
from litestar.handlers.base import BaseRouteHandler

from webmail.context import WebContext


def admin_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    """Allow the request only with ``Authorization: Bearer <admin token>``."""
    context: WebContext = connection.app.state.context
    configured = context.settings.admin.token
    if configured is None:
        raise ServiceUnavailableException("the admin API is disabled: set [admin] token (CONTINUITY_ADMIN__TOKEN)")
    header = connection.headers.get("authorization", "")
    scheme, _space, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise NotAuthorizedException(
            "missing admin token: send 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(presented.strip().encode(), configured.get_secret_value().encode()):
        raise PermissionDeniedException("the admin token is not valid")
