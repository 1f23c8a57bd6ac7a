"""After a compromise: the replay waits for an operator, shows what it will deliver, and holds the primary's own mail.

Outside senders connect from 127.0.0.2; the (compromised) primary sends from 127.0.0.1,
its address in [primary] host. The failback starts RESTORING but nothing is delivered:
``continuity replay`` (a separate process, while the server runs) refuses to go on
without a confirmation when it cannot ask, shows the plan, and with ``--yes`` confirms
it; the server's replayer then delivers the outside mail and keeps the primary's message
in quarantine for review.
"""

from __future__ import annotations

import asyncio
import smtplib
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import tomli_w

from continuity.core.failover import FailoverEvent, FailoverState
from continuity.core.failover_records import CommandStatus
from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import RunStatus
from continuity.services.failover_orders import carry_out
from continuity.services.replay_gate import COMPROMISE_FINDING
from tests.support.appliance import clean_env, settings_data
from tests.support.imap_mailbox import read_mailbox
from tests.support.messages import make_message
from tests.support.primary import PrimaryStandIn
from tests.support.replay import master_login, order, replay_overrides, wait_for_run, wait_for_state
from tests.support.webmail import webmail_appliance

pytestmark = pytest.mark.slow

TOKEN = "r" * 40


def _send(port: int, source: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as client:
        client.sendmail("someone@outside.test", ["alice@example.com"], make_message(subject=subject))


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "continuity", "--config", str(config), "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
    )


async def test_compromise_replay_waits_for_confirmation_and_holds_the_primarys_mail(
    tmp_path: Path, primary: PrimaryStandIn
) -> None:
    overrides = replay_overrides(primary, monitor={"hold_down": 0}, admin={"token": TOKEN})
    data_dir = tmp_path / "data"
    config = tmp_path / "continuity.toml"
    config.write_text(tomli_w.dumps(settings_data(data_dir, **overrides)))
    async with webmail_appliance(data_dir, **overrides) as running:
        assert running.webmail is not None
        settings = running.webmail.settings
        assert await order(running, FailoverEvent.OPERATOR_COMPROMISE, "mailbox rules exfiltrating") is (
            FailoverState.COMPROMISED
        )
        port = running.smtp_address.port
        for subject in ("Customer order 1", "Customer order 2"):
            await asyncio.to_thread(_send, port, "127.0.0.2", subject)
        await asyncio.to_thread(_send, port, "127.0.0.1", "Forwarded by the compromised primary")

        # The failback is accepted (no probes here and hold_down = 0), but nothing is delivered yet.
        command = await carry_out(settings, running.store, FailoverEvent.OPERATOR_FAILBACK, "cleaned up", "test")
        assert command.status is CommandStatus.DONE and command.result.startswith("RESTORING"), command
        run = await wait_for_run(running, RunStatus.AWAITING_CONFIRMATION)
        await asyncio.sleep(1.0)
        assert running.failover is not None and running.failover.replay is not None
        progress = await running.failover.replay.progress()
        assert not progress.completed and "confirmation" in progress.detail
        copies = await read_mailbox(
            primary.imaps_port, primary.ca_file, master_login("alice@example.com"), primary.master_password
        )
        assert copies == []
        # The primary's own message is held for review already.
        held = await running.store.quarantine.list()
        assert [entry.subject for entry in held] == ["Forwarded by the compromised primary"]
        verdict = await running.store.verdicts.get(held[0].queue_id)
        assert verdict is not None and [f.code for f in verdict.findings] == [COMPROMISE_FINDING]

        # The admin API shows the same plan and refuses a confirmation without a note.
        api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{running.web_address.port}/api/v1/replay",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        try:
            plan = (await api.get("/plan")).json()
            assert plan["needs_confirmation"] and {row["action"] for row in plan["rows"]} == {"deliver", "hold"}
            assert (await api.post("/confirm", json={"note": " "})).status_code == 400
            assert (await api.get("/")).json()["run"]["status"] == "awaiting_confirmation"
        finally:
            await api.aclose()

        # Without a terminal and without --yes: the plan, and a refusal.
        refused = await asyncio.to_thread(_cli, config)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "Confirmation needed" in refused.stderr
        assert "Customer order 1" in refused.stdout and "hold" in refused.stdout
        dry = await asyncio.to_thread(_cli, config, "--dry-run")
        assert dry.returncode == 0 and "Dry run" in dry.stdout, dry.stdout + dry.stderr
        assert (await running.store.replay.get_run(run.id)).needs_confirmation  # type: ignore[union-attr]

        # With --yes, after the plan: confirmed, delivered, and the state moves on.
        confirmed = await asyncio.to_thread(_cli, config, "--yes", "--note", "reviewed with the security team")
        assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
        assert "Confirmed: 2 message copies will be delivered" in confirmed.stdout
        await wait_for_state(running, FailoverState.NORMAL, 60)
        items = await running.store.replay.items(run.id)
        assert sorted((item.subject, item.state) for item in items) == [
            ("Customer order 1", ItemState.DELIVERED),
            ("Customer order 2", ItemState.DELIVERED),
            ("Forwarded by the compromised primary", ItemState.HELD),
        ]
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as api_after:
            url = f"http://127.0.0.1:{running.web_address.port}/api/v1/replay"
            assert (await api_after.post(f"{url}/confirm", json={"note": "again"})).status_code == 409
            status = (await api_after.get(f"{url}/")).json()
            assert status["run"]["status"] == "completed" and status["totals"]["delivered"] == 2
            assert status["run"]["manifest"].endswith(".jsonl")
        actions = [(entry.record.actor, entry.record.action) for entry in await running.store.audit.list(200)]
        assert any(action == "replay.confirm" and actor.startswith("cli:") for actor, action in actions)
        assert ("replayer", "replay.hold") in actions
    copies = await read_mailbox(
        primary.imaps_port, primary.ca_file, master_login("alice@example.com"), primary.master_password
    )
    assert sorted(copy.subject for copy in copies) == ["Customer order 1", "Customer order 2"]
