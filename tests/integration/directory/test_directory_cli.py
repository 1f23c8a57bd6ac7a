"""`continuity directory sync|status` as an operator runs them, and the periodic sync inside `serve`.

Entra ID is the Graph stand-in; the admins' alert for a refused run goes to a webhook receiver.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.appliance import ServeProcess
from tests.support.graph_api import GraphStandIn, start_graph
from tests.support.webhook_receiver import WebhookReceiver

TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
CLIENT = "00001111-aaaa-2222-bbbb-3333cccc4444"
SECRET = "qWgdYAmab0YSkuL1qKv5bPX"  # a throwaway stand-in secret


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[GraphStandIn]:
    stand_in = start_graph(tmp_path, TENANT, CLIENT, SECRET)
    for index in range(4):
        stand_in.state.put_user(
            {
                "id": f"u{index}",
                "displayName": f"Staff {index}",
                "mail": f"staff{index}@example.com",
                "accountEnabled": True,
                "proxyAddresses": [f"SMTP:staff{index}@example.com"],
                "otherMails": [f"staff{index}@outside.test"],
            }
        )
    stand_in.state.put_group("g1", "Finance", ["u0", "u1"])
    yield stand_in
    stand_in.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def served(tmp_path: Path, graph: GraphStandIn, webhook: WebhookReceiver) -> ServeProcess:
    directory = {
        "source": "entra",
        "interval": 30.0,
        "entra": {
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "client_secret": SECRET,
            "authority_url": graph.url,
            "graph_url": graph.url,
            "ca_file": str(graph.ca_file),
        },
    }
    return ServeProcess(tmp_path, directory=directory, notify={"webhook_url": webhook.url})


def _addresses(served: ServeProcess, enabled: bool = True) -> list[str]:
    boxes = json.loads(served.cli("mailbox", "list", "--json").stdout)
    return sorted(box["address"] for box in boxes if box["enabled"] is enabled)


def test_dry_run_sync_guard_and_status(served: ServeProcess, graph: GraphStandIn, webhook: WebhookReceiver) -> None:
    dry = json.loads(served.cli("directory", "sync", "--dry-run", "--json").stdout)
    assert dry["outcome"] == "dry-run" and dry["counts"]["create"] == 4
    assert _addresses(served) == []

    applied = served.cli("directory", "sync")
    assert "applied; 4 create" in applied.stdout
    assert _addresses(served) == [f"staff{index}@example.com" for index in range(4)]

    for index in range(3):
        graph.state.delete_user(f"u{index}")
    refused = served.cli("directory", "sync", check=False)
    assert refused.returncode == 1
    assert "would disable 3 mailboxes, more than the limit of 1" in refused.stdout
    assert len(_addresses(served)) == 4
    alerts = webhook.wait_for(1)
    assert alerts[0].body["type"] == "directory.sync.refused" and alerts[0].body["removals"] == 3
    assert served.cli("directory", "status", check=False).returncode == 1  # the last run was refused

    served.cli("directory", "sync", "--allow-removals")
    assert _addresses(served) == ["staff3@example.com"]
    assert _addresses(served, enabled=False) == ["staff0@example.com", "staff1@example.com", "staff2@example.com"]
    status = json.loads(served.cli("directory", "status", "--json").stdout)
    assert status["source"] == "entra" and status["linked_mailboxes"] == 4 and status["enabled_mailboxes"] == 1
    assert [run["outcome"] for run in status["runs"]] == ["applied", "refused", "applied"]
    audit = json.loads(served.cli("audit", "list", "--json").stdout)
    assert [entry["action"] for entry in audit if entry["action"].startswith("directory.")] == [
        "directory.sync",
        "directory.sync.refused",
        "directory.sync",
    ]


def test_serve_syncs_at_start_and_accepts_the_new_addresses(served: ServeProcess) -> None:
    served.start()
    try:
        deadline = time.monotonic() + 30
        while "directory sync from entra (full): applied" not in served.log():
            assert time.monotonic() < deadline, served.log()
            time.sleep(0.1)
        assert _addresses(served) == [f"staff{index}@example.com" for index in range(4)]
        status = json.loads(served.cli("directory", "status", "--json").stdout)
        assert status["groups"] == {"Finance": ["staff0@example.com", "staff1@example.com"]}
    finally:
        assert served.terminate() == 0


def test_sync_without_a_source_is_a_usage_error(tmp_path: Path) -> None:
    plain = ServeProcess(tmp_path)
    result = plain.cli("directory", "sync", check=False)
    assert result.returncode == 2
    assert "[directory] source is none" in result.stderr
