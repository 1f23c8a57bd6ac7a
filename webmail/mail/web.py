"""Plumbing shared by the webmail's handlers: templates, the signed-in user, CSRF, headers, errors."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.datastructures import Cookie, FormMultiDict
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.params import SkipValidation
from litestar.response import Redirect
from litestar.status_codes import (
    HTTP_303_SEE_OTHER,
    HTTP_404_NOT_FOUND,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

from continuity.core.mail_folders import StandardFolder
from continuity.core.webmail_models import SessionRecord, SessionStage
from webmail.mail.services import WebmailServices
from webmail.security.headers import page_headers
from webmail.security.sessions import CSRF_FIELD, new_token, tokens_equal

_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_ENV = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths reachable without a signed-in session.
PUBLIC_PREFIXES = ("/login", "/activate", "/static/")


def _format_time(value: float) -> str:
    moment = time.gmtime(value)
    if time.time() - value < 20 * 3600:
        return time.strftime("%H:%M", moment)
    return time.strftime("%d %b %Y", moment)


def _format_size(value: int) -> str:
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value = value / 1024  # type: ignore[assignment]
    return f"{value} B"


_ENV.filters["when"] = _format_time
_ENV.filters["size"] = _format_size
_ENV.globals["query"] = lambda **kw: urlencode({k: v for k, v in kw.items() if v not in (None, "")})


class LoginRequiredError(Exception):
    """The request needs a signed-in session."""


@dataclass(frozen=True, slots=True)
class User:
    """The signed-in user of a request."""

    mailbox: str
    display_name: str
    session: SessionRecord

    @property
    def csrf(self) -> str:
        """The session's CSRF token, for forms."""
        return self.session.csrf_token


UserDep: TypeAlias = NamedDependency[SkipValidation[User]]
ServicesDep: TypeAlias = NamedDependency[SkipValidation[WebmailServices]]


def services_of(request: Request[Any, Any, Any]) -> WebmailServices:
    """The webmail services of the application."""
    services: WebmailServices = request.app.state.webmail
    return services


def render(template: str, *, status: int = 200, cookies: list[Cookie] | None = None, **context: Any) -> Response[str]:
    """An HTML page from a template, with the security headers."""
    body = _ENV.get_template(template).render(**context)
    return Response(body, status_code=status, media_type=MediaType.HTML, headers=page_headers(), cookies=cookies or [])


async def render_page(
    request: Request[Any, Any, Any], user: User, template: str, *, status: int = 200, **context: Any
) -> Response[str]:
    """A signed-in page: adds the folder list, the failover banner and the CSRF token."""
    services = services_of(request)
    folders = await services.store.webmail.folders(user.mailbox)
    return render(
        template,
        status=status,
        user=user,
        csrf=user.csrf,
        folders=folders,
        failover=await services.failover_banner(),
        standard=StandardFolder,
        **context,
    )


def redirect(path: str, cookies: list[Cookie] | None = None) -> Redirect:
    """A 303 redirect (after a POST)."""
    return Redirect(path, status_code=HTTP_303_SEE_OTHER, headers=page_headers(), cookies=cookies or [])


def error_page(message: str, status: int) -> Response[str]:
    """A plain error page with a sentence."""
    return render("error.html", status=status, message=message)


def client_address(request: Request[Any, Any, Any]) -> str:
    """The client's IP address."""
    return request.client.host if request.client else "unknown"


def _own_origins(request: Request[Any, Any, Any]) -> set[str]:
    services = services_of(request)
    origins = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
    if services.settings.webmail.public_url:
        public = services.settings.webmail.public_url
        origins.add(public.split("/", 3)[0] + "//" + public.split("/", 3)[2])
    return origins


async def check_request(request: Request[Any, Any, Any]) -> Response[str] | None:
    """before_request hook: resolve the session; refuse unsafe requests without a valid CSRF token."""
    services = services_of(request)
    session = await services.sessions.find(request)
    request.state.session = session
    if request.method in _SAFE_METHODS:
        return None
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin not in _own_origins(request):
        return error_page("This request came from another site and was refused.", 403)
    form: FormMultiDict = await request.form()
    presented = str(form.get(CSRF_FIELD) or request.headers.get("x-csrf-token") or "")
    expected = [session.csrf_token] if session is not None else []
    if session is None or session.stage is not SessionStage.AUTHENTICATED:
        # The sign-in forms (still open during the second step) carry the pre-session token.
        expected.append(request.cookies.get(services.sessions.names.pre, ""))
    if not presented or not any(token and tokens_equal(presented, token) for token in expected):
        return error_page(
            "This form has expired or did not come from this site. Go back, reload the page and try again.", 403
        )
    return None


async def provide_user(request: Request[Any, Any, Any]) -> User:
    """The signed-in user; LoginRequiredError (a redirect to the sign-in page) without one."""
    session: SessionRecord | None = request.state.get("session")
    if session is None or session.stage is not SessionStage.AUTHENTICATED:
        raise LoginRequiredError
    mailbox = await services_of(request).store.mailboxes.get(session.mailbox)
    if mailbox is None or not mailbox.enabled:
        await services_of(request).sessions.end(session)
        raise LoginRequiredError
    return User(mailbox.address, mailbox.display_name, session)


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Client errors of the webmail as a page with a sentence (not litestar's JSON)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        limit = services_of(request).settings.webmail.max_upload_size / 1_048_576
        return error_page(f"The message with its attachments is larger than the limit of {limit:.1f} MB.", 413)
    if exc.status_code == HTTP_404_NOT_FOUND:
        return error_page("There is no such page.", 404)
    if exc.status_code < HTTP_500_INTERNAL_SERVER_ERROR:
        return error_page(f"The request was not understood: {exc.detail}", exc.status_code)
    return error_page("Something went wrong on the server; try again.", exc.status_code)


def login_required_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Send the browser to the sign-in page."""
    return redirect("/login")


def pre_session(request: Request[Any, Any, Any]) -> tuple[str, list[Cookie]]:
    """The pre-session CSRF token of a sign-in form, and the cookie to set when it is new."""
    services = services_of(request)
    existing = request.cookies.get(services.sessions.names.pre, "")
    if existing and len(existing) < 100:
        return existing, []
    token = new_token()
    return token, [services.sessions.pre_cookie(token)]


def form_text(form: FormMultiDict, name: str, limit: int = 10_000) -> str:
    """A text field of a form ('' when absent), cut to limit characters."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def form_ids(form: FormMultiDict, name: str = "id") -> list[int]:
    """The integer values of a repeated field."""
    result = []
    for value in form.getall(name, []):
        if isinstance(value, str) and value.isdigit() and len(value) < 19:
            result.append(int(value))
    return result
