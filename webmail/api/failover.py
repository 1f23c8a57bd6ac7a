"""Admin API: failover status and orders (``GET /api/v1/status``, ``POST /api/v1/failover|failback|pause|resume``).

Orders go the same way as the CLI's (continuity.services.failover_orders): stored as a
command that the running monitor carries out; the request waits for the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from litestar import Controller, Request, get, post
from litestar.exceptions import ClientException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST, HTTP_409_CONFLICT

from continuity.core.failover import FailoverEvent
from continuity.core.failover_records import CommandStatus
from continuity.services.failover_orders import carry_out
from continuity.services.failover_status import collect_status
from webmail.context import SettingsDep, StoreDep


@dataclass(frozen=True)
class FailoverOrder:
    """The body of ``POST /api/v1/failover``."""

    reason: Literal["outage", "compromise"]
    note: str


@dataclass(frozen=True)
class OrderNote:
    """The optional body of failback, pause and resume."""

    note: str = ""


@dataclass(frozen=True)
class OrderOutcome:
    """What became of an order."""

    command: int
    status: str
    state: str


def _actor(request: Request[Any, Any, Any]) -> str:
    client = request.client.host if request.client else "unknown"
    return f"api:{client}"


async def _order(
    request: Request[Any, Any, Any], store: StoreDep, settings: SettingsDep, event: FailoverEvent, note: str
) -> OrderOutcome:
    command = await carry_out(settings, store, event, note, _actor(request))
    if command.status is CommandStatus.REJECTED:
        raise ClientException(detail=f"refused: {command.result}", status_code=HTTP_409_CONFLICT)
    # A command still pending after [failover] command_timeout stays queued; status says so.
    return OrderOutcome(command.id, command.status.value, command.result)


class FailoverController(Controller):
    """Failover state and operator orders."""

    path = "/"

    @get("/status", summary="Failover state, since when and why, last probe results, queue depth, recent history")
    async def status(self, store: StoreDep) -> dict[str, object]:
        return (await collect_status(store)).as_json()

    @post("/failover", status_code=HTTP_200_OK, summary="Switch mail to the standby (outage or compromise)")
    async def failover(
        self, request: Request[Any, Any, Any], store: StoreDep, settings: SettingsDep, data: JSONBody[FailoverOrder]
    ) -> OrderOutcome:
        if not data.note.strip():
            raise ClientException(detail="a note saying why is required", status_code=HTTP_400_BAD_REQUEST)
        event = FailoverEvent.OPERATOR_COMPROMISE if data.reason == "compromise" else FailoverEvent.OPERATOR_FAILOVER
        return await _order(request, store, settings, event, data.note)

    @post("/failback", status_code=HTTP_200_OK, summary="Replay into the primary, then switch mail back")
    async def failback(
        self,
        request: Request[Any, Any, Any],
        store: StoreDep,
        settings: SettingsDep,
        data: JSONBody[OrderNote | None] = None,
    ) -> OrderOutcome:
        note = data.note if data and data.note else "operator failback"
        return await _order(request, store, settings, FailoverEvent.OPERATOR_FAILBACK, note)

    @post("/pause", status_code=HTTP_200_OK, summary="Maintenance: watch, act on nothing")
    async def pause(
        self,
        request: Request[Any, Any, Any],
        store: StoreDep,
        settings: SettingsDep,
        data: JSONBody[OrderNote | None] = None,
    ) -> OrderOutcome:
        note = data.note if data and data.note else "maintenance"
        return await _order(request, store, settings, FailoverEvent.OPERATOR_PAUSE, note)

    @post("/resume", status_code=HTTP_200_OK, summary="End a pause")
    async def resume(
        self,
        request: Request[Any, Any, Any],
        store: StoreDep,
        settings: SettingsDep,
        data: JSONBody[OrderNote | None] = None,
    ) -> OrderOutcome:
        note = data.note if data and data.note else "maintenance over"
        return await _order(request, store, settings, FailoverEvent.OPERATOR_RESUME, note)
