"""Message lists: a folder page by page, search results, actions on selected messages, folders."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery, QueryParameter

from continuity.core.mail_folders import Flag, StandardFolder, validate_folder_name
from continuity.core.search_query import fts_query
from continuity.errors import InvalidInputError, NotFoundError
from webmail.mail.web import ServicesDep, UserDep, error_page, form_ids, form_text, redirect, render_page

_MAX_PAGE = 100_000
_FLAG_ACTIONS = {
    "read": (Flag.SEEN, True),
    "unread": (Flag.SEEN, False),
    "flag": (Flag.FLAGGED, True),
    "unflag": (Flag.FLAGGED, False),
}


@get("/")
async def home() -> Response[Any]:
    """The mailbox is the home page."""
    return redirect("/mail")


@get("/mail")
async def folder_page(
    request: Request[Any, Any, Any],
    user: UserDep,
    services: ServicesDep,
    folder: FromQuery[str] = StandardFolder.INBOX.value,
    page: Annotated[int, QueryParameter(ge=1, le=_MAX_PAGE)] = 1,
) -> Response[Any]:
    """One page of a folder, newest first."""
    if len(folder) > 200 or not await services.store.webmail.folder_exists(user.mailbox, folder):
        return error_page(f"There is no folder named '{folder[:200]}'.", 404)
    await services.indexer.catch_up_briefly()
    size = services.settings.webmail.page_size
    messages, total = await services.store.webmail.page(user.mailbox, folder, (page - 1) * size, size)
    pages = max(1, (total + size - 1) // size)
    return await render_page(
        request, user, "list.html", folder=folder, messages=messages, total=total, page=page, pages=pages, search=""
    )


@get("/mail/quarantine")
async def quarantine_page(request: Request[Any, Any, Any], user: UserDep, services: ServicesDep) -> Response[Any]:
    """Mail for this mailbox the security filter held: listed with the reason, never opened here."""
    held = await services.store.quarantine.list(limit=200, mailbox=user.mailbox)
    reasons = {}
    for entry in held:
        verdict = await services.store.verdicts.get(entry.queue_id)
        if verdict is not None:
            reasons[entry.queue_id] = "; ".join(dict.fromkeys(f.message for f in verdict.findings)) or "; ".join(
                verdict.reasons
            )
    return await render_page(request, user, "quarantine.html", folder="", held=held, reasons=reasons, search="")


@get("/mail/search")
async def search_page(
    request: Request[Any, Any, Any],
    user: UserDep,
    services: ServicesDep,
    q: FromQuery[str] = "",
    page: Annotated[int, QueryParameter(ge=1, le=_MAX_PAGE)] = 1,
) -> Response[Any]:
    """Full-text search over subject, addresses and body of the user's mailbox."""
    await services.indexer.catch_up_briefly()
    size = services.settings.webmail.page_size
    expression = fts_query(q[:500], user.mailbox)
    messages = (
        await services.store.webmail.search(user.mailbox, expression, (page - 1) * size, size + 1) if expression else []
    )
    more = len(messages) > size
    return await render_page(
        request, user, "list.html", folder="", messages=messages[:size], total=None, page=page,
        pages=page + 1 if more else page, search=q[:500],
    )  # fmt: skip


async def apply_action(services: ServicesDep, user: UserDep, ids: list[int], action: str, target: str) -> str | None:
    """Carry out a list or message action; returns an error sentence or None."""
    webmail = services.store.webmail
    if action in _FLAG_ACTIONS:
        flag, present = _FLAG_ACTIONS[action]
        await webmail.set_flag(user.mailbox, ids, flag, present)
    elif action == "delete":
        await webmail.move(user.mailbox, ids, StandardFolder.TRASH.value)
    elif action == "junk":
        await webmail.move(user.mailbox, ids, StandardFolder.JUNK.value)
    elif action == "move":
        if not await webmail.folder_exists(user.mailbox, target):
            return f"There is no folder named '{target[:200]}'."
        await webmail.move(user.mailbox, ids, target)
    else:
        return "Choose an action."
    return None


@post("/mail/actions")
async def list_actions(request: Request[Any, Any, Any], user: UserDep, services: ServicesDep) -> Response[Any]:
    """Mark, flag, move or delete the selected messages."""
    form = await request.form()
    ids = form_ids(form)
    if not ids:
        return error_page("Select at least one message first.", 400)
    error = await apply_action(services, user, ids, form_text(form, "action", 20), form_text(form, "target", 200))
    if error:
        return error_page(error, 400)
    back = form_text(form, "back", 2000)
    return redirect(back if back.startswith("/mail") else "/mail")


@post("/mail/trash/empty")
async def empty_trash(user: UserDep, services: ServicesDep) -> Response[Any]:
    """Empty Trash (messages stay recorded as deleted for the replay)."""
    await services.store.webmail.empty_trash(user.mailbox)
    return redirect("/mail?folder=Trash")


@post("/mail/folders")
async def create_folder(request: Request[Any, Any, Any], user: UserDep, services: ServicesDep) -> Response[Any]:
    """Create a folder."""
    form = await request.form()
    try:
        name = validate_folder_name(form_text(form, "name", 500))
        await services.store.webmail.create_folder(user.mailbox, name)
    except (ValueError, InvalidInputError) as exc:
        return error_page(str(exc).capitalize() + ".", 400)
    return redirect("/mail?" + _folder_query(name))


@post("/mail/folders/delete")
async def delete_folder(request: Request[Any, Any, Any], user: UserDep, services: ServicesDep) -> Response[Any]:
    """Delete a user folder; its messages go to Trash."""
    form = await request.form()
    try:
        await services.store.webmail.delete_folder(user.mailbox, form_text(form, "name", 200))
    except NotFoundError as exc:
        return error_page(str(exc).capitalize() + ".", 404)
    return redirect("/mail")


def _folder_query(name: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"folder": name})
