"""The admin HTTP API over a real socket: token authentication, the queue, the OpenAPI schema."""

from __future__ import annotations

import asyncio
import smtplib

import httpx
import pytest

from continuity.services.app import Running
from tests.support.messages import make_message

TOKEN = "t" * 40


def _url(appliance: Running, path: str) -> str:
    return f"http://127.0.0.1:{appliance.web_address.port}{path}"


@pytest.mark.parametrize("appliance", [{"admin": {"token": TOKEN}}], indirect=True)
async def test_token_is_required(appliance: Running) -> None:
    async with httpx.AsyncClient() as client:
        missing = await client.get(_url(appliance, "/api/v1/queue"))
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "missing admin token" in missing.json()["detail"]
        wrong = await client.get(_url(appliance, "/api/v1/queue"), headers={"Authorization": "Bearer " + "x" * 40})
        assert wrong.status_code == 403
        assert wrong.json()["detail"] == "the admin token is not valid"


async def test_admin_api_is_disabled_without_a_token(appliance: Running) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(_url(appliance, "/api/v1/queue"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert "set [admin] token" in response.json()["detail"]


@pytest.mark.parametrize("appliance", [{"admin": {"token": TOKEN}}], indirect=True)
async def test_queue_endpoints(appliance: Running) -> None:
    message = make_message(subject="API check")

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", appliance.smtp_address.port, timeout=10) as smtp:
            smtp.sendmail("s@outside.test", ["bob@example.com"], message)

    await asyncio.to_thread(send)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(headers=headers) as client:
        listed = (await client.get(_url(appliance, "/api/v1/queue"))).json()
        assert (
            len(listed) == 1 and listed[0]["subject"] == "API check" and listed[0]["recipients"] == ["bob@example.com"]
        )
        one = await client.get(_url(appliance, f"/api/v1/queue/{listed[0]['id']}"))
        assert one.status_code == 200 and one.json()["size"] == len(message)
        missing = await client.get(_url(appliance, "/api/v1/queue/0000000000000000"))
        assert missing.status_code == 404 and "there is no queued message" in missing.json()["detail"]
        bad_limit = await client.get(_url(appliance, "/api/v1/queue"), params={"limit": "0"})
        assert bad_limit.status_code == 400
        schema = (await client.get(_url(appliance, "/api/v1/schema/openapi.json"))).json()
    assert "/api/v1/queue" in schema["paths"]
    assert schema["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"


async def test_health(appliance: Running) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(_url(appliance, "/healthz"))
    assert response.json() == {"status": "ok"}
