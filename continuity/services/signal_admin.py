"""Admin actions on signals shared by ``continuity signals`` and the admin API: clear a mailbox, review held mail.

Everything works on the store, so it works the same whether or not ``continuity serve``
runs: the running server reads a mailbox's state for every message it relays, so a clear
takes effect with the next message. Every action is written to the audit log.
"""

from __future__ import annotations

import time

from continuity.core.addresses import normalize_address
from continuity.core.audit import AuditRecord
from continuity.core.models import QueueEntry
from continuity.core.signals import MailboxState
from continuity.errors import InvalidInputError
from continuity.services.quarantine import checked_id
from continuity.store.protocol import Store

# The name `signals clear` takes for the primary as a whole (its signals have no mailbox).
PRIMARY = "primary"


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise InvalidInputError("a reason is required (it goes to the audit log)")
    return text[:500]


def mailbox_key(address: str) -> str:
    """The mailbox a command names ("" for 'primary'); InvalidInputError when it is not an address."""
    text = address.strip()
    if text.lower() == PRIMARY:
        return ""
    try:
        return normalize_address(text)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None


async def resolve(store: Store, address: str) -> str:
    """The mailbox an address (or alias) belongs to, or the normalised address itself."""
    key = mailbox_key(address)
    if not key:
        return key
    directory = await store.mailboxes.directory()
    entry = directory.get(key)
    return entry.mailbox if entry is not None else key


async def clear(store: Store, address: str, actor: str, reason: str) -> tuple[MailboxState, int]:
    """Set a mailbox (or 'primary') back to normal: open signals cleared, containment lifted; audited."""
    why = _reason(reason)
    mailbox = await resolve(store, address)
    before, cleared = await store.signals.clear(mailbox, actor, time.time())
    await store.audit.append(
        AuditRecord.of(
            actor,
            "signal.clear",
            why,
            {
                "mailbox": mailbox or PRIMARY,
                "previous_status": before.status.value,
                "previous_reason": before.reason,
                "signals_cleared": cleared,
            },
        )
    )
    return before, cleared


async def release(store: Store, queue_id: str, actor: str, reason: str) -> QueueEntry:
    """Let held outbound mail go to the Internet; audited."""
    why = _reason(reason)
    entry = await store.feeds.release(checked_id(queue_id))
    await store.audit.append(
        AuditRecord.of(
            actor,
            "signal.release",
            why,
            {
                "queue_id": entry.queue_id,
                "sender": entry.sender,
                "recipients": list(entry.recipients),
                "subject": entry.subject,
                "message_id": entry.message_id,
            },
        )
    )
    return entry


async def delete(store: Store, queue_id: str, actor: str, reason: str) -> QueueEntry:
    """Delete held outbound mail for good; audited."""
    why = _reason(reason)
    entry = await store.feeds.delete(checked_id(queue_id))
    await store.audit.append(
        AuditRecord.of(
            actor,
            "signal.delete",
            why,
            {
                "queue_id": entry.queue_id,
                "sender": entry.sender,
                "recipients": list(entry.recipients),
                "sha256": entry.sha256,
            },
        )
    )
    return entry
