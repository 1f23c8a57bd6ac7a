"""Failover commands as an operator runs them: beside a running `continuity serve`, and with none running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.appliance import ServeProcess

pytestmark = pytest.mark.slow


def test_orders_reach_the_running_server_and_the_state_survives_a_restart(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path, failover={"mode": "gateway", "command_poll": 0.1})
    server.start()
    try:
        paused = server.cli("pause", "--note", "patching Exchange")
        assert paused.stdout.strip() == "Paused; the state is now PAUSED."
        assert "failover state NORMAL -> PAUSED on operator_pause by cli:" in server.log()
        refused = server.cli("failover", "--reason", "outage", "--note", "x", check=False)
        assert refused.returncode == 1
        assert "refused: 'operator_failover' is not allowed in state PAUSED" in refused.stderr
        status = json.loads(server.cli("status", "--json").stdout)
        assert (
            status["state"] == "PAUSED"
            and status["paused_from"] == "NORMAL"
            and status["reason"] == "patching Exchange"
        )
        assert server.terminate() == 0
        server.start()
        assert "failover: state PAUSED since" in server.log()
        text = server.cli("status").stdout
        assert "State:        PAUSED since" in text and "Why:          patching Exchange (by cli:" in text
        assert server.cli("resume").stdout.strip() == "Resumed; the state is now NORMAL."
    finally:
        if server.process is not None and server.process.poll() is None:
            server.terminate()
    history = [entry["to"] for entry in json.loads(server.cli("status", "--json").stdout)["history"]]
    assert history == ["PAUSED", "NORMAL"]
    assert "hash chain and head verified" in server.cli("audit", "verify").stdout


def test_orders_without_a_server_are_carried_out_by_the_command(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path)
    fresh = server.cli("status").stdout
    assert "State:        NORMAL since install (no transition yet)" in fresh and "1970" not in fresh
    # The compromise is declared, but no switcher is configured: mail still goes to the primary (exit 1).
    done = server.cli("failover", "--reason", "compromise", "--note", "mail rule exfiltrating", check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert (
        "continuity: Failover (compromise) carried out, but switching mail failed; the state is now COMPROMISED "
        "(last switch error: no switcher is configured"
    ) in done.stderr, done.stderr
    missing = server.cli("failover", "--note", "x", check=False)
    assert missing.returncode == 2 and "--reason" in missing.stderr
    probe = server.cli("probe", check=False)
    assert probe.returncode == 2 and "no primary is configured" in probe.stderr
    status = json.loads(server.cli("status", "--json").stdout)
    assert status["state"] == "COMPROMISED" and status["actor"].startswith("cli:")
