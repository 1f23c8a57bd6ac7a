"""Sign-in, second factor, sign-out and first-login activation pages."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from continuity.core.addresses import domain_of, normalize_address
from continuity.core.login_throttle import KeyFailures, Throttled, ThrottlePolicy, ThrottleScope, ip_key
from continuity.core.webmail_models import SessionStage
from continuity.passwords import check_password_policy, hash_password
from webmail.mail.services import WebmailServices
from webmail.mail.signin import Refused, check_code, check_password, throttle_policy
from webmail.mail.web import client_address, error_page, form_text, pre_session, redirect, render, services_of
from webmail.security.devices import Device
from webmail.security.logsafe import typed_address
from webmail.security.sessions import new_token

log = logging.getLogger("continuity.webmail")

_NOTICES = {
    "activated": "Your password is set. Sign in with it now.",
    "signed_out": "You are signed out.",
    "expired": "Your session ended. Sign in again.",
}
_ACTIVATION_SENT = (
    "If this account is waiting for activation, a link was sent to its alternate e-mail address. "
    "It works once, for a limited time."
)
_ACTIVATION_PER_IP = 5


def _activation_throttle(found: list[KeyFailures], window: float, now: float) -> Throttled | None:
    """Five activation requests per client network and window (each one counts, answered or not)."""
    if found[0].count < _ACTIVATION_PER_IP:
        return None
    return Throttled(ThrottleScope.IP, window)


def _policy(services: WebmailServices) -> ThrottlePolicy:
    return throttle_policy(services.settings)


def _device(request: Request[Any, Any, Any], services: WebmailServices) -> Device | None:
    return services.devices.read(request.cookies.get(services.devices.name), time.time())


def _signed_in(request: Request[Any, Any, Any], services: WebmailServices, mailbox: str, token: str) -> Redirect:
    """To the mailbox, with the new session and (when on) a fresh device cookie."""
    cookies = [services.sessions.session_cookie(token)]
    if services.devices.enabled:
        cookies.append(services.devices.issue(mailbox, time.time(), _device(request, services)))
    return redirect("/mail", cookies=cookies)


def _login_page(
    request: Request[Any, Any, Any], message: str = "", status: int = 200, address: str = ""
) -> Response[str]:
    token, cookies = pre_session(request)
    notice = _NOTICES.get(request.query_params.get("notice", ""), "")
    return render(
        "login.html", status=status, cookies=cookies, csrf=token, error=message, notice=notice, address=address
    )


@get("/login")
async def login_form(request: Request[Any, Any, Any]) -> Response[Any]:
    """The sign-in form."""
    session = request.state.get("session")
    if session is not None and session.stage is SessionStage.AUTHENTICATED:
        return redirect("/mail")
    return _login_page(request)


@post("/login")
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    """Check address and password; go on to the code or to the mailbox."""
    services = services_of(request)
    form = await request.form()
    address, password = form_text(form, "address", 320), form_text(form, "password", 1024)
    client = client_address(request)
    outcome = await check_password(
        services.store, _policy(services), address, password, client, _device(request, services)
    )
    if isinstance(outcome, Refused):
        log.info("webmail sign-in refused for %s from [%s]: %s", typed_address(address), client, outcome.message)
        return _login_page(request, outcome.message, outcome.status, address)
    log.info("webmail password accepted for <%s> from [%s]", outcome.mailbox, client)
    stage = SessionStage.SECOND_FACTOR if outcome.second_factor else SessionStage.AUTHENTICATED
    token = await services.sessions.start(outcome.mailbox, stage, client, request.state.get("session"))
    if not outcome.second_factor:
        return _signed_in(request, services, outcome.mailbox, token)
    return redirect("/login/totp", cookies=[services.sessions.session_cookie(token)])


@get("/login/totp")
async def totp_form(request: Request[Any, Any, Any]) -> Response[Any]:
    """The second-factor form."""
    session = request.state.get("session")
    if session is None or session.stage is not SessionStage.SECOND_FACTOR:
        return redirect("/login")
    return render("login_totp.html", csrf=session.csrf_token, error="")


@post("/login/totp")
async def totp_login(request: Request[Any, Any, Any]) -> Response[Any]:
    """Check the code; a new session replaces the half-signed-in one."""
    services = services_of(request)
    session = request.state.get("session")
    if session is None or session.stage is not SessionStage.SECOND_FACTOR:
        return redirect("/login")
    form = await request.form()
    refused = await check_code(
        services.store, _policy(services), session.mailbox, form_text(form, "code", 20), client_address(request)
    )
    if refused is not None:
        log.info("webmail sign-in code refused for <%s> from [%s]", session.mailbox, client_address(request))
        return render("login_totp.html", status=refused.status, csrf=session.csrf_token, error=refused.message)
    token = await services.sessions.start(session.mailbox, SessionStage.AUTHENTICATED, client_address(request), session)
    return _signed_in(request, services, session.mailbox, token)


@post("/logout")
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    """End the session."""
    services = services_of(request)
    session = request.state.get("session")
    if session is not None:
        await services.sessions.end(session)
    return redirect("/login?notice=signed_out", cookies=[services.sessions.clear_session_cookie()])


@get("/activate")
async def activate_form(request: Request[Any, Any, Any]) -> Response[Any]:
    """Ask for an activation link."""
    token, cookies = pre_session(request)
    return render("activate.html", cookies=cookies, csrf=token, sent="", error="")


async def _send_activation(services: WebmailServices, mailbox_address: str, alternate: str, token: str) -> None:
    link = f"{services.settings.webmail.public_url}/activate/{token}"
    hours = services.settings.webmail.activation_hours
    sender = f"no-reply@{domain_of(mailbox_address)}"
    message = EmailMessage()
    message["From"] = email.utils.formataddr(("Mail continuity service", sender))
    message["To"] = alternate
    message["Subject"] = f"Activate your standby mailbox {mailbox_address}"
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain=domain_of(mailbox_address))
    message.set_content(
        f"Someone (hopefully you) asked to activate the standby mailbox {mailbox_address}.\n\n"
        f"Open this link within {hours} hours to choose your password:\n\n{link}\n\n"
        "If you did not ask for this, ignore this message; nothing changes.\n"
    )
    await services.outbound.submit(
        mailbox_address, sender, [alternate], message.as_bytes(policy=SMTP), str(message["Subject"])
    )


@post("/activate")
async def activate_request(request: Request[Any, Any, Any]) -> Response[Any]:
    """Send an activation link to the account's alternate address (same answer whatever the account)."""
    services = services_of(request)
    token_field, cookies = pre_session(request)
    if not services.settings.webmail.public_url:
        return error_page("Activation by e-mail is not set up here. Ask your administrator for a password.", 503)
    key, now = f"activate:{ip_key(client_address(request))}", time.time()
    window = services.settings.webmail.throttle_minutes * 60.0
    attempt = await services.store.webmail_auth.begin_attempt(
        [key], now - window, now, lambda found: _activation_throttle(found, window, now)
    )
    if attempt.throttled is not None:
        return render(
            "activate.html",
            status=429,
            cookies=cookies,
            csrf=token_field,
            sent="",
            error="Too many activation requests from your network address. Try again later.",
        )
    form = await request.form()
    try:
        address = normalize_address(form_text(form, "address", 320))
    except ValueError:
        address = ""
    mailbox = await services.store.mailboxes.get(address) if address else None
    if mailbox is not None and mailbox.enabled and not mailbox.has_password and mailbox.alternate_email:
        token = new_token()
        await services.store.webmail_auth.create_activation(
            token, mailbox.address, services.settings.webmail.activation_hours * 3600.0
        )
        await _send_activation(services, mailbox.address, mailbox.alternate_email, token)
    return render("activate.html", cookies=cookies, csrf=token_field, sent=_ACTIVATION_SENT, error="")


@get("/activate/{token:str}")
async def activate_password_form(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    """Choose a password with a valid activation link."""
    services = services_of(request)
    mailbox = await services.store.webmail_auth.activation_mailbox(token) if len(token) < 100 else None
    if mailbox is None:
        return error_page("This activation link is not valid: it was used already or has expired.", 404)
    csrf, cookies = pre_session(request)
    return render("activate_password.html", cookies=cookies, csrf=csrf, mailbox=mailbox, token=token, error="")


@post("/activate/{token:str}")
async def activate_password(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    """Set the first password and use the link up."""
    services = services_of(request)
    mailbox = await services.store.webmail_auth.activation_mailbox(token) if len(token) < 100 else None
    if mailbox is None:
        return error_page("This activation link is not valid: it was used already or has expired.", 404)
    form = await request.form()
    password, again = form_text(form, "password", 1024), form_text(form, "password_again", 1024)
    error = ""
    try:
        check_password_policy(password)
    except ValueError as exc:
        error = str(exc).capitalize() + "."
    if not error and password != again:
        error = "The two passwords differ."
    if error:
        csrf, cookies = pre_session(request)
        return render(
            "activate_password.html", status=400, cookies=cookies, csrf=csrf, mailbox=mailbox, token=token, error=error
        )
    password_hash = await asyncio.to_thread(hash_password, password)
    if await services.store.webmail_auth.consume_activation(token, password_hash) is None:
        return error_page("This activation link is not valid: it was used already or has expired.", 404)
    await services.store.webmail_auth.delete_sessions_of(mailbox)
    await services.audit(mailbox, "webmail.activate", "password set with an activation link", client_address(request))
    return redirect("/login?notice=activated")
