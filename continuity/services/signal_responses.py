"""Carrying out the responses to a signal: record, audit, notify, contain, and act on the primary.

Every signal and every response is written to the hash-chained audit log. Notifications go
through the failover notifier (mail through the appliance's own outbound path, and the
webhook), in the background; containment is stored before this returns, so the next
message of the mailbox is already held; a COMPROMISED failover is ordered through the
failover command queue, which the running monitor carries out like an operator's order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from continuity.core.audit import AuditRecord
from continuity.core.failover import FailoverEvent
from continuity.core.signals import (
    MailboxState,
    MailboxStatus,
    Response,
    ResponsePolicy,
    Signal,
    StoredSignal,
    responses_for,
)
from continuity.errors import ContinuityError
from continuity.services.notifier import Notifier
from continuity.services.signal_notices import SignalNotice, UserNotice
from continuity.store.protocol import Store

log = logging.getLogger("continuity.signals")

ACTOR = "signals"


class Responder:
    """Records signals and carries out the responses the policy calls for."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        policy: ResponsePolicy,
        appliance: str,
        *,
        contact: str = "",
        on_recorded: Callable[[StoredSignal], None] | None = None,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self.policy = policy
        self._appliance = appliance
        self._contact = contact
        self._on_recorded = on_recorded

    async def _audit(self, action: str, reason: str, details: dict[str, object]) -> None:
        try:
            await self._store.audit.append(AuditRecord.of(ACTOR, action, reason, details))
        except ContinuityError as exc:
            log.error("audit entry %s could not be written: %s", action, exc)

    async def handle(self, signal: Signal, state: MailboxState | None) -> tuple[StoredSignal, MailboxState | None]:
        """Record signal, respond to it, and return it with the mailbox's state afterwards."""
        responses = responses_for(signal, state, self.policy)
        stored = await self._store.signals.record(signal, responses)
        if self._on_recorded is not None:
            self._on_recorded(stored)
        details: dict[str, object] = {
            "signal_id": stored.id,
            "kind": signal.kind.value,
            "mailbox": signal.mailbox,
            "severity": signal.severity.value,
            "source": signal.source,
            "queue_id": signal.queue_id,
            "evidence": list(signal.evidence),
            "responses": [response.value for response in responses],
        }
        await self._audit(f"signal.{signal.kind.value}", signal.summary, details)
        log.warning(
            "signal %s (%s) for %s from %s: %s; evidence: %s; responses: %s",
            signal.kind.value,
            signal.severity.value,
            signal.mailbox or "the primary",
            signal.source,
            signal.summary,
            " | ".join(signal.evidence),
            ", ".join(response.value for response in responses) or "none",
        )
        after = state
        if signal.mailbox and Response.CONTAIN not in responses:
            after = await self._store.signals.set_status(
                signal.mailbox, MailboxStatus.FLAGGED, signal.summary, signal.at
            )
        for response in responses:
            after = await self._respond(response, stored, after)
        return stored, after

    async def _respond(
        self, response: Response, stored: StoredSignal, state: MailboxState | None
    ) -> MailboxState | None:
        signal = stored.signal
        base: dict[str, object] = {"signal_id": stored.id, "mailbox": signal.mailbox, "kind": signal.kind.value}
        if response is Response.CONTAIN:
            state = await self._store.signals.set_status(
                signal.mailbox, MailboxStatus.CONTAINED, f"{signal.kind.value}: {signal.summary}", signal.at
            )
            await self._audit(
                "signal.response.contain",
                f"outbound mail of {signal.mailbox} is held for review",
                {**base, "status": state.status.value},
            )
        elif response is Response.NOTIFY_ADMINS:
            self._notifier.announce(SignalNotice(stored, self._appliance))
            await self._audit("signal.response.notify_admins", "admins and webhook notified", base)
        elif response is Response.NOTIFY_USER:
            mailbox = await self._store.mailboxes.get(signal.mailbox)
            alternate = mailbox.alternate_email if mailbox is not None else None
            if alternate:
                self._notifier.mail(UserNotice(stored, self._appliance, self._contact), [alternate])
                await self._audit(
                    "signal.response.notify_user",
                    "the user was told at their alternate address",
                    {**base, "to": alternate},
                )
            else:
                await self._audit(
                    "signal.response.notify_user", "the user has no alternate address; not told", {**base, "to": None}
                )
        elif response is Response.RECOMMEND_FAILOVER:
            await self._audit(
                "signal.response.recommend_failover",
                "a COMPROMISED failover is recommended to the admins",
                {**base, "command": "continuity failover --reason compromise --note '...'"},
            )
        elif response is Response.FAILOVER:
            command = await self._store.failover.submit(
                ACTOR, FailoverEvent.OPERATOR_COMPROMISE, f"signals: {signal.summary}"
            )
            await self._audit(
                "signal.response.failover",
                "a COMPROMISED failover was ordered",
                {**base, "command_id": command.id},
            )
            log.error("signals ordered a COMPROMISED failover (command %d): %s", command.id, signal.summary)
        return state
