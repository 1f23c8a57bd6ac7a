"""The webmail's routes, mounted at the site root by webmail.app.create_app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, Router
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router

from webmail.mail import auth_routes, compose_routes, folder_routes, message_routes, settings_routes
from webmail.mail.services import WebmailServices
from webmail.mail.web import LoginRequiredError, check_request, http_error_handler, login_required_handler, provide_user

_STATIC = Path(__file__).resolve().parent.parent / "static"


async def _static_headers(response: Response[Any]) -> Response[Any]:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "max-age=3600"
    return response


def webmail_routers(services: WebmailServices) -> list[Router]:
    """The webmail pages (session, CSRF and security headers on every one) and its static assets."""

    def provide_services() -> WebmailServices:
        return services

    pages = Router(
        path="/",
        route_handlers=[
            auth_routes.login_form,
            auth_routes.login,
            auth_routes.totp_form,
            auth_routes.totp_login,
            auth_routes.logout,
            auth_routes.activate_form,
            auth_routes.activate_request,
            auth_routes.activate_password_form,
            auth_routes.activate_password,
            folder_routes.home,
            folder_routes.folder_page,
            folder_routes.search_page,
            folder_routes.quarantine_page,
            folder_routes.list_actions,
            folder_routes.empty_trash,
            folder_routes.create_folder,
            folder_routes.delete_folder,
            message_routes.message_page,
            message_routes.message_body,
            message_routes.download_part,
            message_routes.inline_part,
            message_routes.message_action,
            compose_routes.compose_form,
            compose_routes.compose_submit,
            settings_routes.settings_page,
            settings_routes.totp_start,
            settings_routes.totp_confirm,
            settings_routes.totp_disable,
            settings_routes.change_password,
        ],
        dependencies={
            "user": Provide(provide_user),
            "services": Provide(provide_services, sync_to_thread=False),
        },
        before_request=check_request,
        exception_handlers={LoginRequiredError: login_required_handler, HTTPException: http_error_handler},
        request_max_body_size=services.settings.webmail.max_upload_size,
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/static",
        directories=[_STATIC],
        include_in_schema=False,
        after_request=_static_headers,
    )
    return [pages, static]
