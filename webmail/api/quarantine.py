"""Admin API: the quarantine (``/api/v1/quarantine``): list, safe preview, release, delete (audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, get, post
from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from continuity.core.filter_records import StoredVerdict
from continuity.core.models import QueueEntry
from continuity.errors import InvalidInputError, NotFoundError, UnreadableContentError
from continuity.services import quarantine
from webmail.context import ReaderDep, StoreDep


@dataclass(frozen=True)
class FindingOut:
    """One finding of the filter pipeline."""

    code: str
    score: float
    message: str
    evidence: list[str]


@dataclass(frozen=True)
class VerdictOut:
    """The pipeline's verdict on a message."""

    verdict: str
    score: float
    reasons: list[str]
    fired: list[str]
    findings: list[FindingOut]

    @classmethod
    def of(cls, verdict: StoredVerdict | None) -> VerdictOut | None:
        """Convert a stored verdict."""
        if verdict is None:
            return None
        return cls(
            verdict=verdict.verdict.value,
            score=verdict.score,
            reasons=list(verdict.reasons),
            fired=list(verdict.fired),
            findings=[FindingOut(f.code, f.score, f.message, list(f.evidence)) for f in verdict.findings],
        )


@dataclass(frozen=True)
class HeldItem:
    """A held message as listed."""

    id: str
    sender: str
    recipients: list[str]
    subject: str
    size: int
    received_at: datetime
    verdict: VerdictOut | None

    @classmethod
    def of(cls, entry: QueueEntry, verdict: StoredVerdict | None) -> HeldItem:
        """Convert a queue entry and its verdict."""
        return cls(
            id=entry.queue_id,
            sender=entry.sender,
            recipients=list(entry.recipients),
            subject=entry.subject,
            size=entry.size,
            received_at=datetime.fromtimestamp(entry.received_at, tz=UTC),
            verdict=VerdictOut.of(verdict),
        )


@dataclass(frozen=True)
class AttachmentOut:
    """An attachment as the preview describes it (never its content)."""

    filename: str
    declared_type: str
    detected_type: str
    size: int


@dataclass(frozen=True)
class PreviewOut:
    """A safe preview: header fields, plain text, link domains and attachment descriptions."""

    message: HeldItem
    from_: str
    to: str
    reply_to: str
    date: str
    subject: str
    client_address: str
    text: str
    link_domains: list[str]
    attachments: list[AttachmentOut]


@dataclass(frozen=True)
class Decision:
    """Why an admin releases or deletes a message (written to the audit log), and who."""

    reason: str
    actor: str = ""


@dataclass(frozen=True)
class Done:
    """The outcome of a release or delete."""

    id: str
    action: str
    recipients: list[str]


def _actor(decision: Decision) -> str:
    name = " ".join(decision.actor.split())[:100]
    return f"api:{name}" if name else "api:admin-token"


class QuarantineController(Controller):
    """Quarantined messages."""

    path = "/quarantine"

    @get("/", summary="List quarantined messages, newest first")
    async def list_held(
        self,
        store: StoreDep,
        limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 100,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
        mailbox: FromQuery[str | None] = None,
    ) -> list[HeldItem]:
        entries = await store.quarantine.list(limit=limit, offset=offset, mailbox=mailbox)
        return [HeldItem.of(entry, await store.verdicts.get(entry.queue_id)) for entry in entries]

    @get("/{queue_id:str}", summary="Preview a quarantined message safely")
    async def preview(self, store: StoreDep, reader: ReaderDep, queue_id: FromPath[str]) -> PreviewOut:
        try:
            shown = await quarantine.preview(store, queue_id, reader)
        except (NotFoundError, InvalidInputError) as exc:
            raise NotFoundException(str(exc)) from None
        except UnreadableContentError as exc:
            raise ClientException(f"{exc}; download the message to read its source", status_code=422) from None
        return PreviewOut(
            message=HeldItem.of(shown.entry, shown.verdict),
            from_=shown.from_,
            to=shown.to,
            reply_to=shown.reply_to,
            date=shown.date,
            subject=shown.subject,
            client_address=shown.entry.client_address,
            text=shown.text,
            link_domains=list(shown.link_domains),
            attachments=[
                AttachmentOut(a.filename, a.declared_type, a.detected_type, a.size) for a in shown.attachments
            ],
        )

    @post(
        "/{queue_id:str}/release", summary="Release a quarantined message to its recipients (audited)", status_code=200
    )
    async def release(self, store: StoreDep, queue_id: FromPath[str], data: JSONBody[Decision]) -> Done:
        try:
            entry = await quarantine.release(store, queue_id, _actor(data), data.reason)
        except NotFoundError as exc:
            raise NotFoundException(str(exc)) from None
        except InvalidInputError as exc:
            raise ValidationException(str(exc)) from None
        return Done(entry.queue_id, "released", list(entry.recipients))

    @post("/{queue_id:str}/delete", summary="Delete a quarantined message for good (audited)", status_code=200)
    async def delete(self, store: StoreDep, queue_id: FromPath[str], data: JSONBody[Decision]) -> Done:
        try:
            entry = await quarantine.delete(store, queue_id, _actor(data), data.reason)
        except NotFoundError as exc:
            raise NotFoundException(str(exc)) from None
        except InvalidInputError as exc:
            raise ValidationException(str(exc)) from None
        return Done(entry.queue_id, "deleted", list(entry.recipients))
