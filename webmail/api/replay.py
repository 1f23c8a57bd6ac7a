"""Admin API: the replay (``GET /api/v1/replay``, ``GET /api/v1/replay/plan``, ``POST /api/v1/replay/confirm|retry``).

The same operations as ``continuity replay status``, the plan shown before a confirmation,
the confirmation after a compromise (audited with the caller's address) and ``continuity
replay retry``. The running server's replayer picks a confirmation up within
``[replay] poll`` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_409_CONFLICT

from continuity.core.audit import AuditRecord
from continuity.core.replay_records import RunKind
from continuity.services.replay_preview import confirm_restoration, run_preview
from continuity.services.replay_status import collect_status
from webmail.context import StoreDep


@dataclass(frozen=True)
class ReplayNote:
    """Why (for the audit log)."""

    note: str = ""


@dataclass(frozen=True)
class PlanRow:
    """One message copy of the plan."""

    mailbox: str
    queue_id: str
    received_at: float
    sender: str
    subject: str
    folder: str
    flags: str
    action: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """A run's plan."""

    run: int
    needs_confirmation: bool
    rows: list[PlanRow]


@dataclass(frozen=True)
class Changed:
    """What an operation changed."""

    run: int
    items: int
    status: str


def _actor(request: Request[Any, Any, Any]) -> str:
    return f"api:{request.client.host if request.client else 'unknown'}"


class ReplayController(Controller):
    """Replay status, plan, confirmation and retry."""

    path = "/replay"

    @get("/", summary="The latest replay run: counts per mailbox and outcome, manifest, next retry")
    async def status(self, store: StoreDep) -> dict[str, object]:
        return (await collect_status(store, await store.replay.latest_run())).as_json()

    @get("/plan", summary="What the current restoration run delivers where, and what it holds")
    async def plan(self, store: StoreDep, limit: FromQuery[int] = 1000) -> Plan:
        run = await store.replay.latest_run(RunKind.RESTORATION)
        if run is None:
            raise NotFoundException("there is no restoration run yet ('continuity failback' starts one)")
        rows = await run_preview(store, run)
        return Plan(
            run.id,
            run.needs_confirmation,
            [PlanRow(r.mailbox, r.queue_id, r.received_at, r.sender, r.subject, r.folder, r.flags, r.action, r.reason)
             for r in rows[: max(1, min(limit, 100_000))]],
        )  # fmt: skip

    @post("/confirm", status_code=HTTP_200_OK, summary="Confirm the replay after a compromise (audited)")
    async def confirm(self, request: Request[Any, Any, Any], store: StoreDep, data: JSONBody[ReplayNote]) -> Changed:
        if not data.note.strip():
            raise ClientException(detail="a note saying who reviewed the plan is required")
        run = await confirm_restoration(store, _actor(request), data.note.strip()[:500])
        if run is None:
            raise ClientException(detail="no replay run waits for a confirmation", status_code=HTTP_409_CONFLICT)
        return Changed(run.id, len(await store.replay.items(run.id)), run.status.value)

    @post("/retry", status_code=HTTP_200_OK, summary="Try failed message copies again (audited)")
    async def retry(self, request: Request[Any, Any, Any], store: StoreDep, data: JSONBody[ReplayNote]) -> Changed:
        run = await store.replay.latest_run()
        if run is None:
            raise NotFoundException("there is no replay run yet")
        count = await store.replay.retry_failed(run.id, time.time())
        if count:
            note = data.note.strip()[:500] or "operator retry"
            await store.audit.append(
                AuditRecord.of(_actor(request), "replay.retry", note, {"run": run.id, "items": count})
            )
        return Changed(run.id, count, run.status.value)
