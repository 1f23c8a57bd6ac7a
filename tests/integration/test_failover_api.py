"""The failover admin API and metrics over a real socket, with the running monitor carrying out orders."""

from __future__ import annotations

import httpx
import pytest

from continuity.services.app import Running

TOKEN = "f" * 40
SETTINGS = {"admin": {"token": TOKEN}, "failover": {"mode": "gateway", "command_poll": 0.05}}


def _url(appliance: Running, path: str) -> str:
    return f"http://127.0.0.1:{appliance.web_address.port}{path}"


@pytest.mark.parametrize("appliance", [SETTINGS], indirect=True)
async def test_orders_status_schema_and_metrics(appliance: Running) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        unauthenticated = await httpx.AsyncClient().get(_url(appliance, "/api/v1/status"))
        assert unauthenticated.status_code == 401
        status = (await client.get(_url(appliance, "/api/v1/status"))).json()
        assert status["state"] == "NORMAL" and status["queue_depth"] == 0 and status["history"] == []
        empty_note = await client.post(_url(appliance, "/api/v1/failover"), json={"reason": "outage", "note": " "})
        assert empty_note.status_code == 400
        bad_reason = await client.post(_url(appliance, "/api/v1/failover"), json={"reason": "boredom", "note": "x"})
        assert bad_reason.status_code == 400
        refused = await client.post(_url(appliance, "/api/v1/failback"))
        assert refused.status_code == 409 and "not allowed in state NORMAL" in refused.json()["detail"]
        # Gateway mode without a primary: the compromise is declared, the routing switch is retried.
        order = await client.post(
            _url(appliance, "/api/v1/failover"), json={"reason": "compromise", "note": "forwarding rule found"}
        )
        assert order.status_code == 200, order.text
        # Declared, but the switch failed (no primary to route to): the order says so.
        assert order.json()["status"] == "failed" and order.json()["state"].startswith("COMPROMISED")
        paused = (await client.post(_url(appliance, "/api/v1/pause"), json={"note": "patching"})).json()
        assert paused["state"] == "PAUSED"
        resumed = (await client.post(_url(appliance, "/api/v1/resume"))).json()
        assert resumed["state"].startswith("COMPROMISED")
        status = (await client.get(_url(appliance, "/api/v1/status"))).json()
        assert status["state"] == "COMPROMISED" and status["reason"] == "maintenance over"
        assert [entry["event"] for entry in status["history"]][:2] == ["operator_compromise", "switch_failed"]
        assert status["history"][0]["actor"] == "api:127.0.0.1"
        schema = (await client.get(_url(appliance, "/api/v1/schema/openapi.json"))).json()
        for path in ("/api/v1/status", "/api/v1/failover", "/api/v1/failback", "/api/v1/pause", "/api/v1/resume"):
            assert path in schema["paths"]
        metrics = (await client.get(_url(appliance, "/metrics"))).text
    assert 'continuity_failover_state{state="COMPROMISED"} 1.0' in metrics
    assert 'continuity_failover_state{state="NORMAL"} 0.0' in metrics
    assert "continuity_queue_depth 0.0" in metrics
    verdict = await appliance.store.audit.verify()
    assert verdict.ok and verdict.entries >= 5
