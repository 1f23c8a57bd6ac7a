"""Admin API of the compromise signals, and the webhook for external alerts.

Behind the admin token (``/api/v1/signals/...``): list signals, list mailbox states,
clear a mailbox, review held outbound mail (release, delete); every change is audited.

``POST /api/v1/signals`` takes an alert from a SIEM or Microsoft Defender
(continuity.core.external_alerts); it accepts ``[signals] webhook_token`` or the admin
token, refuses a missing token with 401 and a wrong one with 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Router, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from continuity.core.external_alerts import parse_alert
from continuity.core.models import QueueEntry
from continuity.core.signals import MailboxState, StoredSignal
from continuity.errors import InvalidInputError, NotFoundError
from continuity.services import signal_admin
from webmail.api.auth import admin_guard
from webmail.context import StoreDep, WebContext


def _iso(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


@dataclass(frozen=True)
class SignalOut:
    """One recorded signal."""

    id: int
    at: datetime
    kind: str
    mailbox: str
    severity: str
    summary: str
    evidence: list[str]
    source: str
    queue_id: str
    responses: list[str]
    cleared_at: datetime | None

    @classmethod
    def of(cls, stored: StoredSignal) -> SignalOut:
        """Convert a stored signal."""
        signal = stored.signal
        return cls(
            id=stored.id,
            at=_iso(signal.at),
            kind=signal.kind.value,
            mailbox=signal.mailbox,
            severity=signal.severity.value,
            summary=signal.summary,
            evidence=list(signal.evidence),
            source=signal.source,
            queue_id=signal.queue_id,
            responses=[response.value for response in stored.responses],
            cleared_at=_iso(stored.cleared_at) if stored.cleared_at is not None else None,
        )


@dataclass(frozen=True)
class MailboxStateOut:
    """A mailbox's standing."""

    mailbox: str
    status: str
    since: datetime
    reason: str
    cleared_at: datetime | None
    cleared_by: str

    @classmethod
    def of(cls, state: MailboxState) -> MailboxStateOut:
        """Convert a mailbox state."""
        return cls(
            mailbox=state.mailbox or signal_admin.PRIMARY,
            status=state.status.value,
            since=_iso(state.since),
            reason=state.reason,
            cleared_at=_iso(state.cleared_at) if state.cleared_at else None,
            cleared_by=state.cleared_by,
        )


@dataclass(frozen=True)
class HeldOut:
    """Outbound mail held for review."""

    id: str
    mailbox: str
    sender: str
    recipients: list[str]
    subject: str
    size: int
    received_at: datetime
    reason: str


@dataclass(frozen=True)
class Decision:
    """Why an admin clears a mailbox, releases or deletes held mail (for the audit log), and who."""

    reason: str
    actor: str = ""


@dataclass(frozen=True)
class Cleared:
    """The outcome of a clear."""

    mailbox: str
    previous_status: str
    signals_cleared: int


@dataclass(frozen=True)
class Done:
    """The outcome of a release or delete."""

    id: str
    action: str
    recipients: list[str]


@dataclass(frozen=True)
class AlertTaken:
    """The signals an external alert raised."""

    signals: list[SignalOut]


def _actor(decision: Decision) -> str:
    name = " ".join(decision.actor.split())[:100]
    return f"api:{name}" if name else "api:admin-token"


def _done(entry: QueueEntry, action: str) -> Done:
    return Done(entry.queue_id, action, list(entry.recipients))


class SignalsController(Controller):
    """Mailbox states and held outbound mail (the list of signals is ``GET /api/v1/signals``)."""

    path = "/signals"

    @get("/mailboxes", summary="Mailboxes that are flagged or contained (or were cleared)")
    async def mailboxes(self, store: StoreDep) -> list[MailboxStateOut]:
        return [MailboxStateOut.of(state) for state in await store.signals.states()]

    @post("/mailboxes/{address:str}/clear", status_code=200, summary="Clear a mailbox (or 'primary'); audited")
    async def clear(self, store: StoreDep, address: FromPath[str], data: JSONBody[Decision]) -> Cleared:
        try:
            before, cleared = await signal_admin.clear(store, address, _actor(data), data.reason)
        except InvalidInputError as exc:
            raise ValidationException(str(exc)) from None
        return Cleared(before.mailbox or signal_admin.PRIMARY, before.status.value, cleared)

    @get("/held", summary="Outbound mail held for review, newest first")
    async def held(
        self,
        store: StoreDep,
        limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 100,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
        mailbox: FromQuery[str | None] = None,
    ) -> list[HeldOut]:
        items = await store.feeds.held(limit, offset, mailbox.lower() if mailbox else None)
        return [
            HeldOut(
                item.entry.queue_id,
                item.mailbox,
                item.entry.sender,
                list(item.entry.recipients),
                item.entry.subject,
                item.entry.size,
                _iso(item.entry.received_at),
                item.reason,
            )
            for item in items
        ]

    @post("/held/{queue_id:str}/release", status_code=200, summary="Relay held outbound mail after all; audited")
    async def release(self, store: StoreDep, queue_id: FromPath[str], data: JSONBody[Decision]) -> Done:
        try:
            return _done(await signal_admin.release(store, queue_id, _actor(data), data.reason), "released")
        except NotFoundError as exc:
            raise NotFoundException(str(exc)) from None
        except InvalidInputError as exc:
            raise ValidationException(str(exc)) from None

    @post("/held/{queue_id:str}/delete", status_code=200, summary="Delete held outbound mail for good; audited")
    async def delete(self, store: StoreDep, queue_id: FromPath[str], data: JSONBody[Decision]) -> Done:
        try:
            return _done(await signal_admin.delete(store, queue_id, _actor(data), data.reason), "deleted")
        except NotFoundError as exc:
            raise NotFoundException(str(exc)) from None
        except InvalidInputError as exc:
            raise ValidationException(str(exc)) from None


def webhook_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    """Allow ``Authorization: Bearer <[signals] webhook_token or [admin] token>``."""
    context: WebContext = connection.app.state.context
    tokens = [
        secret.get_secret_value().encode()
        for secret in (context.settings.signals.webhook_token, context.settings.admin.token)
        if secret is not None
    ]
    if not tokens:
        raise ServiceUnavailableException("the signals webhook is disabled: set [signals] webhook_token")
    scheme, _space, presented = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise NotAuthorizedException(
            "missing token: send 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
        )
    given = presented.strip().encode()
    # Compare with every token (no early exit), so timing does not tell which one matched.
    matches = [hmac.compare_digest(given, token) for token in tokens]
    if not any(matches):
        raise PermissionDeniedException("the token is not valid")


@get("/signals", guards=[admin_guard], summary="Compromise signals, newest first")
async def list_signals(
    store: StoreDep,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 100,
    mailbox: FromQuery[str | None] = None,
    open_only: FromQuery[bool] = False,
) -> list[SignalOut]:
    """Signals with their evidence and responses (admin token)."""
    try:
        key = await signal_admin.resolve(store, mailbox) if mailbox else None
    except InvalidInputError as exc:
        raise ValidationException(str(exc)) from None
    return [SignalOut.of(item) for item in await store.signals.list(limit, key, open_only=open_only)]


@post("/signals", guards=[webhook_guard], status_code=HTTP_202_ACCEPTED, summary="An alert from a SIEM or Defender")
async def post_alert(request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> AlertTaken:
    """Raise signals from an alert; the policy's responses follow as for the appliance's own signals."""
    context: WebContext = request.app.state.context
    if context.signals is None:
        raise ServiceUnavailableException("compromise signals are off ([signals] enabled = false)")
    primary = frozenset({context.settings.primary.host.lower()} - {""})
    try:
        alert = parse_alert(data, primary)
    except InvalidInputError as exc:
        raise ValidationException(str(exc)) from None
    foreign = [mailbox for mailbox in alert.mailboxes if mailbox.rpartition("@")[2] not in context.settings.domains]
    if foreign:
        raise ValidationException(f"{', '.join(foreign)}: not in the protected domains")
    stored = await context.signals.external_alert(alert)
    return AlertTaken([SignalOut.of(item) for item in stored])


def webhook_router(context: WebContext) -> Router:
    """``/api/v1/signals``: GET lists (admin token), POST takes an external alert (webhook or admin token)."""
    return Router(
        path="/api/v1",
        route_handlers=[list_signals, post_alert],
        dependencies=context.dependencies(),
        tags=["signals"],
        security=[{"BearerToken": []}],
    )
