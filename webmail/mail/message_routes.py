"""Reading one message: the page, its sandboxed body, attachments, inline images, actions."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Request, Response, get, post
from litestar.enums import MediaType
from litestar.params import FromPath, FromQuery

from continuity.core.mail_folders import Flag, StandardFolder, parse_flags
from continuity.core.mime_view import MessageView
from continuity.core.webmail_models import StoredMessage
from continuity.errors import ContinuityError, UnreadableContentError
from webmail.mail.folder_routes import apply_action
from webmail.mail.services import WebmailServices
from webmail.mail.web import ServicesDep, UserDep, error_page, form_text, redirect, render_page, services_of
from webmail.security.headers import download_headers, frame_headers

_INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# A message that cannot be parsed in time is shown as this much of its source text.
_SOURCE_SHOWN = 512 * 1024
_FRAME_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;color:#1b1f24;margin:12px;overflow-wrap:anywhere}"
    "img{max-width:100%;height:auto}table{max-width:100%}.real-link{color:#8a4b00;font-size:.85em}"
)


def inline_token(services: WebmailServices, message_id: int) -> str:
    """The capability that lets the sandboxed frame (which sends no cookie) load a message's inline images."""
    return hmac.new(services.inline_secret, str(message_id).encode(), hashlib.sha256).hexdigest()[:32]


async def load(services: WebmailServices, mailbox: str, message_id: int) -> tuple[StoredMessage, MessageView] | None:
    """A message of mailbox and its parsed view, or None; raises UnreadableContentError past the deadline."""
    stored = await services.store.webmail.get(mailbox, message_id)
    if stored is None:
        return None
    content = await services.store.blobs.read(stored.sha256)
    return stored, await services.reader.view(content)


async def _source_page(
    request: Request[Any, Any, Any], user: UserDep, services: WebmailServices, stored: StoredMessage, reason: str
) -> Response[Any]:
    """The message as source text, for one that could not be parsed (bounded, never parsed here)."""
    content = await services.store.blobs.read(stored.sha256)
    shown = content[:_SOURCE_SHOWN]
    return await render_page(
        request,
        user,
        "source.html",
        message=stored,
        reason=reason,
        source=shown.decode("utf-8", "replace"),
        truncated=len(content) > len(shown),
        shown_bytes=len(shown),
        total_bytes=len(content),
    )


@get("/mail/message/{message_id:int}")
async def message_page(
    request: Request[Any, Any, Any],
    user: UserDep,
    services: ServicesDep,
    message_id: FromPath[int],
    images: FromQuery[int] = 0,
) -> Response[Any]:
    """The message: headers, security banner, body, attachments, actions."""
    try:
        stored = await services.store.webmail.get(user.mailbox, message_id)
        if stored is None:
            return error_page("There is no such message in your mailbox.", 404)
        if Flag.SEEN not in parse_flags(stored.flags):
            await services.store.webmail.set_flag(user.mailbox, [stored.id], Flag.SEEN, True)
        content = await services.store.blobs.read(stored.sha256)
        try:
            parsed, blocked = await services.reader.page(content)
        except UnreadableContentError as exc:
            return await _source_page(request, user, services, stored, str(exc))
    except ContinuityError as exc:
        return error_page(f"This message cannot be read: {exc}", 500)
    return await render_page(
        request,
        user,
        "message.html",
        message=stored,
        view=parsed,
        flags=parse_flags(stored.flags),
        flag=Flag,
        banner=await services.security_banner(stored.queue_id),
        images=bool(images),
        blocked_images=blocked,
        is_draft=stored.folder == StandardFolder.DRAFTS.value,
    )


@get("/mail/message/{message_id:int}/body")
async def message_body(
    user: UserDep, services: ServicesDep, message_id: FromPath[int], images: FromQuery[int] = 0
) -> Response[Any]:
    """The sanitized HTML body, a document of its own for the sandboxed iframe."""
    stored = await services.store.webmail.get(user.mailbox, message_id)
    if stored is None:
        return error_page("This message has no HTML body.", 404)
    content = await services.store.blobs.read(stored.sha256)
    base = f"/mail/inline/{message_id}/{inline_token(services, message_id)}/"
    try:
        clean = await services.reader.frame(content, bool(images), base)
    except UnreadableContentError:
        clean = None
    if clean is None:
        return error_page("This message has no HTML body.", 404)
    document = (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        f"<style>{_FRAME_STYLE}</style></head><body>{clean.html}</body></html>"
    )
    return Response(document, media_type=MediaType.HTML, headers=frame_headers(bool(images)))


@get("/mail/message/{message_id:int}/part/{index:int}")
async def download_part(
    user: UserDep, services: ServicesDep, message_id: FromPath[int], index: FromPath[int]
) -> Response[Any]:
    """Download an attachment: always as a file, never shown by the browser."""
    try:
        loaded = await load(services, user.mailbox, message_id)
        attachment = next((a for a in loaded[1].attachments if a.index == index), None) if loaded else None
        if loaded is None or attachment is None:
            return error_page("There is no such attachment.", 404)
        content = await services.store.blobs.read(loaded[0].sha256)
        found = await services.reader.part(content, index)
    except UnreadableContentError as exc:
        return error_page(f"This attachment cannot be read: {exc}", 422)
    if found is None:
        return error_page("There is no such attachment.", 404)
    return Response(found, media_type="application/octet-stream", headers=download_headers(attachment.filename))


@get("/mail/inline/{message_id:int}/{token:str}/{content_id:path}")
async def inline_part(
    request: Request[Any, Any, Any], message_id: FromPath[int], token: FromPath[str], content_id: FromPath[str]
) -> Response[Any]:
    """An inline image (cid:) of a message, for its sandboxed frame; only raster image types."""
    services = services_of(request)
    if not hmac.compare_digest(token, inline_token(services, message_id)):
        return Response("not found", status_code=404, media_type=MediaType.TEXT)
    stored = await services.store.webmail.get(None, message_id)
    if stored is None:
        return Response("not found", status_code=404, media_type=MediaType.TEXT)
    content = await services.store.blobs.read(stored.sha256)
    wanted = content_id.lstrip("/")
    try:
        parsed = await services.reader.view(content)
        attachment = next((a for a in parsed.attachments if a.content_id and a.content_id == wanted), None)
        if attachment is None or attachment.content_type not in _INLINE_TYPES:
            return Response("not found", status_code=404, media_type=MediaType.TEXT)
        found = await services.reader.part(content, attachment.index)
    except UnreadableContentError:
        return Response("not found", status_code=404, media_type=MediaType.TEXT)
    # The sandboxed frame has an opaque origin, so for this request it is another origin: the
    # capability in the URL, not the origin, is what guards the image.
    headers = {
        **frame_headers(False),
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    return Response(found or b"", media_type=attachment.content_type, headers=headers)


@post("/mail/message/{message_id:int}/action")
async def message_action(
    request: Request[Any, Any, Any], user: UserDep, services: ServicesDep, message_id: FromPath[int]
) -> Response[Any]:
    """Read/unread, flag, move, delete one message."""
    form = await request.form()
    stored = await services.store.webmail.get(user.mailbox, message_id)
    if stored is None:
        return error_page("There is no such message in your mailbox.", 404)
    action = form_text(form, "action", 20)
    error = await apply_action(services, user, [message_id], action, form_text(form, "target", 200))
    if error:
        return error_page(error, 400)
    if action in ("delete", "junk", "move"):
        from urllib.parse import urlencode

        return redirect("/mail?" + urlencode({"folder": stored.folder}))
    return redirect(f"/mail/message/{message_id}")
