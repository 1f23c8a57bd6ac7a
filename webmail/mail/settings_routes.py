"""Account settings: the TOTP second factor (enrol with a QR code, disable) and the password."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from continuity.passwords import check_password_policy, hash_password
from webmail.mail.signin import Refused, check_current_password, throttle_policy
from webmail.mail.web import ServicesDep, UserDep, client_address, form_text, redirect, render_page
from webmail.security.totp import matching_step, new_secret, provisioning_uri, qr_svg

_NOTICES = {
    "totp_on": "Two-step sign-in is on. From now on you also need a code from your authenticator app.",
    "totp_off": "Two-step sign-in is off.",
    "password": "Your password was changed. Other sessions were signed out.",
}


async def _page(
    request: Request[Any, Any, Any], user: UserDep, services: ServicesDep, error: str = "", status: int = 200
) -> Response[Any]:
    record = await services.store.webmail_auth.totp(user.mailbox)
    enrolling = record is not None and not record.enabled
    qr = secret = ""
    if record is not None and enrolling:
        uri = provisioning_uri(record.secret, user.mailbox, services.settings.webmail.totp_issuer)
        qr, secret = qr_svg(uri), record.secret
    return await render_page(
        request, user, "settings.html", status=status, totp_enabled=record is not None and record.enabled,
        enrolling=enrolling, qr_svg=qr, secret=secret, error=error,
        notice=_NOTICES.get(request.query_params.get("notice", ""), ""),
    )  # fmt: skip


@get("/settings")
async def settings_page(request: Request[Any, Any, Any], user: UserDep, services: ServicesDep) -> Response[Any]:
    """Two-step sign-in and password."""
    return await _page(request, user, services)


@post("/settings/totp/start")
async def totp_start(user: UserDep, services: ServicesDep) -> Response[Any]:
    """Begin enrolment: a new secret, shown as a QR code until a code confirms it."""
    await services.store.webmail_auth.start_totp(user.mailbox, new_secret())
    return redirect("/settings")


@post("/settings/totp/confirm")
async def totp_confirm(request: Request[Any, Any, Any], user: UserDep, services: ServicesDep) -> Response[Any]:
    """Finish enrolment with a code from the app."""
    form = await request.form()
    record = await services.store.webmail_auth.totp(user.mailbox)
    if record is None or record.enabled:
        return redirect("/settings")
    step = matching_step(record.secret, form_text(form, "code", 20))
    if step is None or not await services.store.webmail_auth.use_totp_step(user.mailbox, step, enable=True):
        return await _page(request, user, services, "That code is not right. Enter the code your app shows now.", 400)
    await services.audit(user.mailbox, "webmail.totp_on", "two-step sign-in turned on", client_address(request))
    return redirect("/settings?notice=totp_on")


async def _password_refused(
    request: Request[Any, Any, Any], services: ServicesDep, user: UserDep, password: str
) -> Refused | None:
    return await check_current_password(
        services.store, throttle_policy(services.settings), user.mailbox, password, client_address(request)
    )


@post("/settings/totp/disable")
async def totp_disable(request: Request[Any, Any, Any], user: UserDep, services: ServicesDep) -> Response[Any]:
    """Turn two-step sign-in off (needs the password)."""
    form = await request.form()
    refused = await _password_refused(request, services, user, form_text(form, "password", 1024))
    if refused is not None:
        return await _page(request, user, services, refused.message, refused.status)
    await services.store.webmail_auth.disable_totp(user.mailbox)
    await services.audit(user.mailbox, "webmail.totp_off", "two-step sign-in turned off", client_address(request))
    return redirect("/settings?notice=totp_off")


@post("/settings/password")
async def change_password(request: Request[Any, Any, Any], user: UserDep, services: ServicesDep) -> Response[Any]:
    """Change the password; every other session of the account ends."""
    form = await request.form()
    refused = await _password_refused(request, services, user, form_text(form, "current", 1024))
    if refused is not None:
        message = "The current password is not right." if refused.status == 400 else refused.message
        return await _page(request, user, services, message, refused.status)
    new, again = form_text(form, "new", 1024), form_text(form, "again", 1024)
    try:
        check_password_policy(new)
    except ValueError as exc:
        return await _page(request, user, services, str(exc).capitalize() + ".", 400)
    if new != again:
        return await _page(request, user, services, "The two new passwords differ.", 400)
    await services.store.mailboxes.set_password_hash(user.mailbox, await asyncio.to_thread(hash_password, new))
    await services.store.webmail_auth.delete_sessions_of(user.mailbox, keep=user.session.token_hash)
    await services.audit(user.mailbox, "webmail.password", "password changed in the webmail", client_address(request))
    return redirect("/settings?notice=password")
