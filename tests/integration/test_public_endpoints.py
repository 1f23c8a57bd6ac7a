"""What anyone who reaches the web listener gets: /healthz, /metrics and the API schema, over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from continuity.core.failover import FailoverState
from continuity.services.app import Running
from continuity.store.sqlite_messages import SqliteMessageRepository

TOKEN = "a" * 40
METRICS_TOKEN = "m" * 24
SETTINGS = {
    "admin": {"token": TOKEN},
    "web": {"metrics_token": METRICS_TOKEN},
    "failover": {"mode": "gateway", "command_poll": 0.05},
}


def _url(appliance: Running, path: str) -> str:
    return f"http://127.0.0.1:{appliance.web_address.port}{path}"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every full count of the message table the running appliance makes."""
    calls: list[int] = []
    original: Callable[[SqliteMessageRepository], Awaitable[int]] = SqliteMessageRepository.count

    async def count(self: SqliteMessageRepository) -> int:
        calls.append(1)
        return await original(self)

    monkeypatch.setattr(SqliteMessageRepository, "count", count)
    return calls


@pytest.mark.parametrize("appliance", [SETTINGS], indirect=True)
async def test_healthz_says_ok_and_nothing_else(counted: list[int], appliance: Running) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as admin:
        order = await admin.post(_url(appliance, "/api/v1/failover"), json={"reason": "compromise", "note": "test"})
        assert order.status_code == 200
    assert (await appliance.store.failover.load()).state is FailoverState.COMPROMISED
    async with httpx.AsyncClient() as client:
        answers = await asyncio.gather(*(client.get(_url(appliance, "/healthz")) for _ in range(20)))
    assert all(answer.status_code == 200 and answer.json() == {"status": "ok"} for answer in answers)
    assert "compromised" not in answers[0].text.lower()
    assert counted == []  # no count of the message table


@pytest.mark.parametrize("appliance", [SETTINGS], indirect=True)
async def test_metrics_need_their_token_and_count_the_queue_rarely(counted: list[int], appliance: Running) -> None:
    async with httpx.AsyncClient() as client:
        missing = await client.get(_url(appliance, "/metrics"))
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "continuity_failover_state" not in missing.text
        wrong = await client.get(_url(appliance, "/metrics"), headers={"Authorization": "Bearer " + "x" * 24})
        assert wrong.status_code == 403 and "continuity_failover_state" not in wrong.text
        admin = await client.get(_url(appliance, "/metrics"), headers={"Authorization": f"Bearer {TOKEN}"})
        assert admin.status_code == 403  # the admin token is not the metrics token
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        scrapes = await asyncio.gather(*(client.get(_url(appliance, "/metrics"), headers=headers) for _ in range(20)))
        assert all(scrape.status_code == 200 for scrape in scrapes)
        assert "continuity_queue_depth 0.0" in scrapes[0].text
        later = await client.get(_url(appliance, "/metrics"), headers=headers)
        assert later.status_code == 200
    assert len(counted) == 1  # twenty-one scrapes, one count


@pytest.mark.parametrize("appliance", [SETTINGS], indirect=True)
async def test_the_api_schema_is_json_behind_the_admin_token(appliance: Running) -> None:
    paths = ("/api/v1/schema", "/api/v1/schema/openapi.json", "/api/v1/schema/swagger", "/api/v1/schema/redoc")
    async with httpx.AsyncClient() as client:
        for path in paths:
            anonymous = await client.get(_url(appliance, path))
            assert anonymous.status_code == 401, path
            assert "cdn" not in anonymous.text and "<script" not in anonymous.text
        headers = {"Authorization": f"Bearer {TOKEN}"}
        schema = await client.get(_url(appliance, "/api/v1/schema/openapi.json"), headers=headers)
        assert schema.status_code == 200 and "/api/v1/queue" in schema.json()["paths"]
        assert schema.headers["content-security-policy"].startswith("default-src 'none'")
        assert schema.headers["x-content-type-options"] == "nosniff"
        root = await client.get(_url(appliance, "/api/v1/schema"), headers=headers)
        assert root.status_code == 200 and root.json()["info"]["title"] == "Continuity admin API"
        for page in ("/api/v1/schema/swagger", "/api/v1/schema/redoc", "/api/v1/schema/elements"):
            served = await client.get(_url(appliance, page), headers=headers)
            assert served.status_code == 404 and "<script" not in served.text, page


async def test_metrics_without_a_token_stay_open(appliance: Running) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(_url(appliance, "/metrics"))
    assert response.status_code in (200, 503) and response.status_code != 401
