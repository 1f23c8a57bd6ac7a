"""Writing mail: new, reply, reply-all, forward, drafts; sending through the outbound queue."""

from __future__ import annotations

from email.policy import SMTP
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.params import FromQuery

from continuity.core.compose import ComposeMode, Draft, NewAttachment, build_message, envelope_recipients, prefill
from continuity.core.mail_folders import Flag, StandardFolder, format_flags
from continuity.core.mime_view import Address
from continuity.errors import UnreadableContentError
from continuity.services.outbound import OutboundRefused
from continuity.store.sqlite_webmail import LocalMessage
from webmail.mail.message_routes import load
from webmail.mail.web import ServicesDep, User, UserDep, error_page, form_ids, form_text, redirect, render_page

_MODES = {mode.value: mode for mode in ComposeMode}


async def _own_addresses(services: ServicesDep, user: User) -> frozenset[str]:
    mailbox = await services.store.mailboxes.get(user.mailbox)
    aliases = mailbox.aliases if mailbox is not None else ()
    return frozenset({user.mailbox, *aliases})


@get("/mail/compose")
async def compose_form(
    request: Request[Any, Any, Any],
    user: UserDep,
    services: ServicesDep,
    mode: FromQuery[str] = "new",
    id: FromQuery[int] = 0,
    to: FromQuery[str] = "",
) -> Response[Any]:
    """The compose form, prefilled for a reply, a forward or a draft."""
    draft = Draft(to=to[:2000])
    source = None
    if id:
        try:
            loaded = await load(services, user.mailbox, id)
        except UnreadableContentError as exc:
            return error_page(f"This message cannot be replied to or forwarded: {exc}", 422)
        if loaded is None:
            return error_page("There is no such message in your mailbox.", 404)
        source = loaded
        if loaded[0].folder == StandardFolder.DRAFTS.value and mode == "draft":
            summary, parsed = loaded[1].summary, loaded[1]
            draft = Draft(
                to=", ".join(str(a) for a in summary.to),
                cc=", ".join(str(a) for a in summary.cc),
                subject=summary.subject,
                body=parsed.text or "",
                in_reply_to=summary.in_reply_to,
                references=summary.references,
            )
        elif mode in _MODES and _MODES[mode] is not ComposeMode.NEW:
            draft = prefill(_MODES[mode], loaded[1], await _own_addresses(services, user))
    attachments = source[1].attachments if source is not None and mode in ("forward", "draft") else ()
    return await render_page(
        request, user, "compose.html", draft=draft, mode=mode, source_id=id if source else 0,
        source_attachments=attachments, error="",
        reply_to_id=id if mode in ("reply", "reply_all") else 0,
        draft_id=id if source is not None and mode == "draft" else None,
    )  # fmt: skip


async def _attachments(services: ServicesDep, user: User, form: FormMultiDict) -> list[NewAttachment]:
    result: list[NewAttachment] = []
    source_id = int(form_text(form, "source_id", 19) or "0") if form_text(form, "source_id", 19).isdigit() else 0
    keep = form_ids(form, "keep")
    if source_id and keep:
        try:
            loaded = await load(services, user.mailbox, source_id)
        except UnreadableContentError:
            loaded = None  # its attachments cannot be kept; the message is sent without them
        if loaded is not None:
            content = await services.store.blobs.read(loaded[0].sha256)
            for attachment in loaded[1].attachments:
                if attachment.index in keep:
                    found = await services.reader.part(content, attachment.index)
                    if found is not None:
                        result.append(NewAttachment(attachment.filename, attachment.content_type, found))
    for upload in form.getall("attachments", []):
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read()
            name = "".join(c for c in upload.filename.replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable())
            result.append(
                NewAttachment(name[:200] or "attachment", upload.content_type or "application/octet-stream", data)
            )
    return result


@post("/mail/compose")
async def compose_submit(request: Request[Any, Any, Any], user: UserDep, services: ServicesDep) -> Response[Any]:
    """Send the message, or save it as a draft."""
    form = await request.form()
    draft = Draft(
        to=form_text(form, "to", 5000),
        cc=form_text(form, "cc", 5000),
        bcc=form_text(form, "bcc", 5000),
        subject=form_text(form, "subject", 998),
        body=form_text(form, "body", 2_000_000),
        in_reply_to=form_text(form, "in_reply_to", 998),
        references=form_text(form, "references", 4000),
        attachments=tuple(await _attachments(services, user, form)),
    )
    draft_id = int(form_text(form, "draft_id", 19)) if form_text(form, "draft_id", 19).isdigit() else None
    sender = Address(user.display_name, user.mailbox)
    hostname = services.settings.smtp.hostname

    async def again(error: str, status: int = 400) -> Response[Any]:
        return await render_page(
            request, user, "compose.html", status=status, draft=draft, mode="new", source_id=0,
            source_attachments=(), error=error, reply_to_id=0, draft_id=draft_id,
        )  # fmt: skip

    try:
        message = build_message(draft, sender, hostname=hostname)
    except ValueError as exc:
        return await again(str(exc).capitalize() + ".")
    if form_text(form, "action", 10) == "save":
        new_id = await services.store.webmail.add_local(
            LocalMessage(
                user.mailbox, StandardFolder.DRAFTS.value, format_flags({Flag.SEEN, Flag.DRAFT}), user.mailbox,
                draft.subject, str(message["Message-ID"]), message.as_bytes(policy=SMTP),
            ),
            replaces=draft_id,
        )  # fmt: skip
        return redirect(f"/mail/compose?mode=draft&id={new_id}")
    try:
        recipients = envelope_recipients(draft)
    except ValueError as exc:
        return await again(str(exc).capitalize() + ".")
    wire = message.as_bytes(policy=SMTP)
    outcome = await services.outbound.submit(user.mailbox, user.mailbox, recipients, wire, draft.subject)
    if isinstance(outcome, OutboundRefused):
        return await again(f"This message was not sent: {outcome.reason}", 422)
    if draft.bcc.strip():
        message["Bcc"] = draft.bcc.replace("\r", " ").replace("\n", " ")
    await services.store.webmail.add_local(
        LocalMessage(
            user.mailbox, StandardFolder.SENT.value, format_flags({Flag.SEEN}), user.mailbox, draft.subject,
            str(message["Message-ID"]), message.as_bytes(policy=SMTP),
        ),
        replaces=draft_id,
    )  # fmt: skip
    reply_to_id = form_text(form, "reply_to_id", 19)
    if reply_to_id.isdigit():
        await services.store.webmail.set_flag(user.mailbox, [int(reply_to_id)], Flag.ANSWERED, True)
    services.indexer.notify()
    return redirect("/mail?folder=Sent")
