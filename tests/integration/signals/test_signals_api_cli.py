"""The signals' webhook, admin API and CLI, and the responses when the primary itself is implicated."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from continuity.core.failover import FailoverState
from continuity.core.models import MessageState
from continuity.core.signals import MailboxStatus, SignalKind
from tests.integration.signals.conftest import ADMIN_TOKEN, WEBHOOK_TOKEN, RelayAppliance
from tests.support.appliance import clean_env, settings_data
from tests.support.messages import make_message

ALERT = {
    "mailbox": "alice@example.com",
    "title": "Impossible travel sign-in followed by a new inbox rule",
    "severity": "high",
    "source": "siem",
    "evidence": ["sign-in from 203.0.113.9 (XX)", "New-InboxRule 'RSS' moves mail from 'invoice'"],
}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_alert_with_a_bad_or_missing_token_is_refused(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    async with httpx.AsyncClient(base_url=feed.web) as client:
        missing = await client.post("/api/v1/signals", json=ALERT)
        bad = await client.post("/api/v1/signals", json=ALERT, headers=_bearer("x" * 40))
        scheme = await client.post("/api/v1/signals", json=ALERT, headers={"Authorization": f"Basic {WEBHOOK_TOKEN}"})
    assert missing.status_code == 401
    assert bad.status_code == 403
    assert scheme.status_code == 401
    assert await feed.running.store.signals.list() == []
    assert (await feed.running.store.signals.state("alice@example.com")).status is MailboxStatus.NORMAL


async def test_an_alert_raises_a_signal_and_the_responses(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    async with httpx.AsyncClient(base_url=feed.web) as client:
        taken = await client.post("/api/v1/signals", json=ALERT, headers=_bearer(WEBHOOK_TOKEN))
        invalid = await client.post("/api/v1/signals", json={"title": "no mailbox"}, headers=_bearer(WEBHOOK_TOKEN))
        outside = await client.post(
            "/api/v1/signals", json={**ALERT, "mailbox": "not an address"}, headers=_bearer(ADMIN_TOKEN)
        )
        foreign = await client.post(
            "/api/v1/signals", json={**ALERT, "mailbox": "someone@elsewhere.test"}, headers=_bearer(ADMIN_TOKEN)
        )
    assert taken.status_code == 202, taken.text
    body = taken.json()["signals"]
    assert [item["kind"] for item in body] == ["external_alert"]
    assert body[0]["mailbox"] == "alice@example.com" and "contain" in body[0]["responses"]
    assert body[0]["source"] == "webhook:siem"
    assert invalid.status_code == 400 and "mailbox" in invalid.text
    assert outside.status_code == 400
    assert foreign.status_code == 400 and "not in the protected domains" in foreign.text
    assert (await feed.running.store.signals.state("alice@example.com")).contained
    # The contained mailbox's next message is held.
    reply = await asyncio.to_thread(
        feed.relay, "alice@example.com", ["someone@outside.test"], make_message(sender="alice@example.com")
    )
    entry = await feed.running.store.messages.get(reply.rsplit(" ", 1)[1])
    assert entry is not None and entry.state is MessageState.CONTAINED
    hooks = await asyncio.to_thread(feed.webhook.wait_for, 1)
    assert hooks[0].body["kind"] == "external_alert"


async def test_a_defender_alert_names_the_mailbox_in_its_evidence(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    graph = {
        "id": "da637551227677560813_-961444813",
        "title": "Suspicious email forwarding activity",
        "severity": "medium",
        "serviceSource": "microsoftDefenderForOffice365",
        "description": "A user set up a rule forwarding mail to an outside address.",
        "evidence": [
            {"@odata.type": "#microsoft.graph.security.mailboxEvidence", "primaryAddress": "BOB@example.com"},
            {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "198.51.100.7"},
        ],
    }
    async with httpx.AsyncClient(base_url=feed.web) as client:
        taken = await client.post("/api/v1/signals", json=graph, headers=_bearer(ADMIN_TOKEN))
    assert taken.status_code == 202, taken.text
    signals = await feed.running.store.signals.list(mailbox="bob@example.com")
    assert len(signals) == 1
    signal = signals[0].signal
    assert signal.severity.value == "medium" and signal.source == "webhook:microsoftDefenderForOffice365"
    # Medium: the admins are told, the mailbox is not contained.
    assert (await feed.running.store.signals.state("bob@example.com")).status is MailboxStatus.FLAGGED


async def test_the_admin_api_lists_clears_and_releases(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    admin = _bearer(ADMIN_TOKEN)
    async with httpx.AsyncClient(base_url=feed.web) as client:
        await client.post("/api/v1/signals", json=ALERT, headers=_bearer(WEBHOOK_TOKEN))
        reply = await asyncio.to_thread(
            feed.relay,
            "alice@example.com",
            ["held@outside.test"],
            make_message("Held", 5, "alice@example.com", "held@outside.test"),
        )
        held_id = reply.rsplit(" ", 1)[1]
        listed = await client.get("/api/v1/signals", headers=admin)
        not_admin = await client.get("/api/v1/signals", headers=_bearer(WEBHOOK_TOKEN))
        states = await client.get("/api/v1/signals/mailboxes", headers=admin)
        held = await client.get("/api/v1/signals/held", headers=admin)
        no_reason = await client.post(f"/api/v1/signals/held/{held_id}/release", json={"reason": " "}, headers=admin)
        released = await client.post(
            f"/api/v1/signals/held/{held_id}/release",
            json={"reason": "checked with Alice", "actor": "ops"},
            headers=admin,
        )
        cleared = await client.post(
            "/api/v1/signals/mailboxes/a.example@example.com/clear", json={"reason": "password reset"}, headers=admin
        )
    assert listed.status_code == 200 and [item["kind"] for item in listed.json()] == ["external_alert"]
    assert not_admin.status_code == 403
    assert states.json()[0]["mailbox"] == "alice@example.com" and states.json()[0]["status"] == "contained"
    assert [item["id"] for item in held.json()] == [held_id]
    assert no_reason.status_code == 400
    assert released.status_code == 200 and released.json()["recipients"] == ["held@outside.test"]
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == {"mailbox": "alice@example.com", "previous_status": "contained", "signals_cleared": 1}
    # The relay worker picks the released message up on its next pass.
    await _wait(lambda: any("held@outside.test" in str(m["To"]) for m in feed.sink.messages(0, timeout=0)))
    store = feed.running.store
    assert (await store.signals.state("alice@example.com")).status is MailboxStatus.NORMAL
    reply = await asyncio.to_thread(
        feed.relay, "alice@example.com", ["again@outside.test"], make_message(sender="alice@example.com")
    )
    entry = await store.messages.get(reply.rsplit(" ", 1)[1])
    assert entry is not None and entry.state is not MessageState.CONTAINED
    actions = [(entry.record.action, entry.record.actor) for entry in await store.audit.list(limit=100)]
    assert ("signal.release", "api:ops") in actions and ("signal.clear", "api:admin-token") in actions


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "continuity", "--config", str(config), "signals", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )


async def test_the_cli_lists_clears_and_deletes_beside_the_running_server(
    feed_appliance: RelayAppliance, tmp_path: Path
) -> None:
    feed = feed_appliance
    config = tmp_path / "continuity.toml"
    config.write_text(tomli_w.dumps(settings_data(tmp_path / "data", **feed.overrides)))
    async with httpx.AsyncClient(base_url=feed.web) as client:
        await client.post("/api/v1/signals", json=ALERT, headers=_bearer(WEBHOOK_TOKEN))
    reply = await asyncio.to_thread(
        feed.relay,
        "alice@example.com",
        ["held@outside.test"],
        make_message("Held", 5, "alice@example.com", "held@outside.test"),
    )
    held_id = reply.rsplit(" ", 1)[1]
    listed = await asyncio.to_thread(_cli, config, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"kind": "external_alert"' in listed.stdout and "Impossible travel" in listed.stdout
    status = await asyncio.to_thread(_cli, config, "status")
    assert "contained" in status.stdout and "1 contained mailbox(es)." in status.stdout
    held = await asyncio.to_thread(_cli, config, "held", "--json")
    assert held_id in held.stdout
    refused = await asyncio.to_thread(_cli, config, "clear", "not-an-address", "--reason", "x")
    assert refused.returncode == 1 and "continuity:" in refused.stderr
    deleted = await asyncio.to_thread(_cli, config, "delete", held_id, "--reason", "spam the attacker sent")
    assert deleted.returncode == 0, deleted.stderr
    assert await feed.running.store.messages.get(held_id) is None
    cleared = await asyncio.to_thread(_cli, config, "clear", "alice@example.com", "--reason", "rules removed")
    assert cleared.returncode == 0 and "was contained" in cleared.stdout
    # The running server relays the mailbox's mail again at once.
    reply = await asyncio.to_thread(
        feed.relay, "alice@example.com", ["next@outside.test"], make_message(sender="alice@example.com")
    )
    entry = await feed.running.store.messages.get(reply.rsplit(" ", 1)[1])
    assert entry is not None and entry.state is not MessageState.CONTAINED
    actions = [entry.record.action for entry in await feed.running.store.audit.list(limit=100)]
    assert "signal.delete" in actions and "signal.clear" in actions


async def _wait(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize(
    "feed_appliance",
    [{"signals": {"primary_action": "failover", "primary_mailboxes": 2}}],
    indirect=True,
)
async def test_signals_in_several_mailboxes_fail_over_as_compromised_when_the_policy_allows(
    feed_appliance: RelayAppliance,
) -> None:
    feed = feed_appliance
    async with httpx.AsyncClient(base_url=feed.web) as client:
        for mailbox in ("alice@example.com", "bob@example.com"):
            await client.post("/api/v1/signals", json={**ALERT, "mailbox": mailbox}, headers=_bearer(WEBHOOK_TOKEN))
    primary = await feed.running.store.signals.list(mailbox="")
    assert [stored.signal.kind for stored in primary] == [SignalKind.PRIMARY_COMPROMISE]
    assert "failover" in [response.value for response in primary[0].responses]
    assert feed.running.failover is not None
    controller = feed.running.failover.controller
    await _wait(lambda: controller.record.state is FailoverState.COMPROMISED)
    assert controller.record.actor == "signals"
    # While the primary is declared compromised, nothing it sends is relayed.
    reply = await asyncio.to_thread(
        feed.relay, "news@example.com", ["reader@outside.test"], make_message(sender="news@example.com")
    )
    entry = await feed.running.store.messages.get(reply.rsplit(" ", 1)[1])
    assert entry is not None and entry.state is MessageState.CONTAINED


async def test_an_alert_about_the_primary_recommends_a_compromised_failover(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    alert = {"scope": "primary", "title": "Web shell on the Exchange server", "severity": "critical", "source": "edr"}
    async with httpx.AsyncClient(base_url=feed.web) as client:
        taken = await client.post("/api/v1/signals", json=alert, headers=_bearer(WEBHOOK_TOKEN))
    assert taken.status_code == 202, taken.text
    assert taken.json()["signals"][0]["kind"] == "primary_compromise"
    assert taken.json()["signals"][0]["responses"] == ["notify_admins", "recommend_failover"]
    actions = [entry.record.action for entry in await feed.running.store.audit.list(limit=50)]
    assert "signal.response.recommend_failover" in actions
    assert feed.running.failover is not None
    assert feed.running.failover.controller.record.state is FailoverState.NORMAL
    hooks = await asyncio.to_thread(feed.webhook.wait_for, 1)
    assert hooks[0].body["kind"] == "primary_compromise"
