"""Admin API: the message queue (``GET /api/v1/queue``, ``GET /api/v1/queue/{queue_id}``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter

from continuity.core.models import QueueEntry
from continuity.core.queue_ids import is_queue_id
from webmail.context import StoreDep


@dataclass(frozen=True)
class QueueItem:
    """One queued message as the API shows it."""

    id: str
    message_id: str
    sender: str
    recipients: list[str]
    size: int
    state: str
    received_at: datetime
    subject: str

    @classmethod
    def of(cls, entry: QueueEntry) -> QueueItem:
        """Convert a store entry."""
        return cls(
            id=entry.queue_id,
            message_id=entry.message_id,
            sender=entry.sender,
            recipients=list(entry.recipients),
            size=entry.size,
            state=entry.state.value,
            received_at=datetime.fromtimestamp(entry.received_at, tz=UTC),
            subject=entry.subject,
        )


class QueueController(Controller):
    """Queued messages."""

    path = "/queue"

    @get("/", summary="List queued messages, newest first")
    async def list_queue(
        self,
        store: StoreDep,
        limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 100,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> list[QueueItem]:
        return [QueueItem.of(entry) for entry in await store.messages.list(limit=limit, offset=offset)]

    @get("/{queue_id:str}", summary="One queued message")
    async def get_message(self, store: StoreDep, queue_id: FromPath[str]) -> QueueItem:
        wanted = queue_id.upper()
        entry = await store.messages.get(wanted) if is_queue_id(wanted) else None
        if entry is None:
            raise NotFoundException(f"there is no queued message {queue_id}")
        return QueueItem.of(entry)
