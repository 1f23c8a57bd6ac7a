"""The quarantine workflow shared by ``continuity quarantine`` and the admin API.

A preview is safe by construction: the message is parsed, never rendered; the text is
shown as plain text with control characters removed, links as their target domains,
attachments by name, declared type, detected type and size, never opened. A release or
delete is written to the hash-chained audit log with who did it and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from continuity.core.audit import AuditRecord
from continuity.core.filter_records import StoredVerdict
from continuity.core.message_view import Address, LinkSource
from continuity.core.models import MessageState, QueueEntry
from continuity.core.queue_ids import is_queue_id
from continuity.errors import InvalidInputError, NotFoundError
from continuity.filters.domains import url_host
from continuity.filters.filetypes import sniff
from continuity.services.content_reader import ContentReader
from continuity.store.protocol import Store

_PREVIEW_TEXT = 8000


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """An attachment as the preview shows it."""

    filename: str
    declared_type: str
    detected_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Preview:
    """What an admin sees of a held message."""

    entry: QueueEntry
    verdict: StoredVerdict | None
    from_: str
    to: str
    reply_to: str
    date: str
    subject: str
    text: str
    link_domains: tuple[str, ...]
    attachments: tuple[AttachmentInfo, ...]


def _safe_text(text: str, limit: int) -> str:
    kept = "".join(char if char.isprintable() or char in "\n\t" else " " for char in text)
    lines = [line.rstrip() for line in kept.splitlines()]
    cleaned = "\n".join(lines).strip()
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "\n[... truncated]"


def _printable(text: str) -> str:
    return "".join(char if char.isprintable() else " " for char in text)


def checked_id(queue_id: str) -> str:
    """The normalised queue id, or InvalidInputError."""
    wanted = queue_id.strip().upper()
    if not is_queue_id(wanted):
        raise InvalidInputError(f"'{queue_id}' is not a queue id (16 characters, as shown by 'quarantine list')")
    return wanted


async def held_entry(store: Store, queue_id: str) -> QueueEntry:
    """The held message's queue entry, or NotFoundError."""
    wanted = checked_id(queue_id)
    entry = await store.messages.get(wanted)
    if entry is None or entry.state is not MessageState.HELD:
        raise NotFoundError(f"there is no quarantined message {wanted}")
    return entry


async def preview(store: Store, queue_id: str, reader: ContentReader) -> Preview:
    """A safe preview of a held message (reader parses it: the worker processes under serve)."""
    entry = await held_entry(store, queue_id)
    content = await store.blobs.read(entry.sha256)
    view = await reader.inspect(content)
    domains = sorted({url_host(link.url) for link in view.links if link.source is not LinkSource.IMAGE} - {""})
    attachments = tuple(
        AttachmentInfo(_printable(a.filename), a.content_type, sniff(a.data).value, len(a.data))
        for a in view.attachments
    )

    def addresses(items: tuple[Address, ...]) -> str:
        return ", ".join(_printable(f"{a.display} <{a.address}>" if a.display else a.address) for a in items)

    return Preview(
        entry=entry,
        verdict=await store.verdicts.get(entry.queue_id),
        from_=addresses(view.from_),
        to=addresses(view.to + view.cc),
        reply_to=addresses(view.reply_to),
        date=_printable(view.header("Date") or ""),
        subject=_printable(view.subject),
        text=_safe_text(view.text, _PREVIEW_TEXT),
        link_domains=tuple(domains[:50]),
        attachments=attachments,
    )


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise InvalidInputError("a reason is required (it goes to the audit log)")
    return text[:500]


async def release(store: Store, queue_id: str, actor: str, reason: str) -> QueueEntry:
    """Release a held message into its recipients' Inboxes; audited."""
    why = _reason(reason)
    entry = await held_entry(store, queue_id)
    verdict = await store.verdicts.get(entry.queue_id)
    released = await store.quarantine.release(entry.queue_id)
    await store.audit.append(
        AuditRecord.of(
            actor,
            "quarantine.release",
            why,
            {
                "queue_id": released.queue_id,
                "sender": released.sender,
                "recipients": list(released.recipients),
                "subject": released.subject,
                "message_id": released.message_id,
                "verdict": verdict.verdict.value if verdict else None,
                "findings": [finding.code for finding in verdict.findings] if verdict else [],
            },
        )
    )
    return released


async def delete(store: Store, queue_id: str, actor: str, reason: str) -> QueueEntry:
    """Delete a held message for good; audited."""
    why = _reason(reason)
    entry = await held_entry(store, queue_id)
    deleted = await store.quarantine.delete(entry.queue_id)
    await store.audit.append(
        AuditRecord.of(
            actor,
            "quarantine.delete",
            why,
            {
                "queue_id": deleted.queue_id,
                "sender": deleted.sender,
                "recipients": list(deleted.recipients),
                "subject": deleted.subject,
                "sha256": deleted.sha256,
            },
        )
    )
    return deleted
