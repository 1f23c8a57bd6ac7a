"""250 means durable on the relay listener too: kill -9 right after the replies, nothing acknowledged is lost."""

from __future__ import annotations

import smtplib
import sqlite3
from pathlib import Path

import pytest

from tests.support.appliance import ServeProcess
from tests.support.messages import make_message
from tests.support.ports import free_port, wait_for_port

pytestmark = pytest.mark.slow


def test_relayed_mail_acknowledged_with_250_survives_kill_9(tmp_path: Path) -> None:
    relay_port = free_port()
    nowhere = free_port()  # the next hop does not answer: everything stays queued for the Internet
    server = ServeProcess(
        tmp_path,
        feeds={
            "relay_listen": f"127.0.0.1:{relay_port}",
            "relay_networks": ["127.0.0.1/32"],
            "relay_next_hop": f"127.0.0.1:{nowhere}",
        },
        outbound={"timeout": 1.0},
    )
    server.start()
    wait_for_port(relay_port)
    acknowledged: list[str] = []
    try:
        with smtplib.SMTP("127.0.0.1", relay_port) as client:
            for index in range(30):
                recipient = f"partner{index}@outside.test"
                refused = client.sendmail(
                    "alice@example.com", [recipient], make_message(f"m{index}", 5, "alice@example.com", recipient)
                )
                assert refused == {}
                acknowledged.append(recipient)
    finally:
        server.kill()
    with sqlite3.connect(tmp_path / "data" / "continuity.db") as connection:
        rows = connection.execute(
            "SELECT r.address, m.state, m.sha256 FROM messages m JOIN message_recipients r USING (queue_id)"
        ).fetchall()
    stored = {address: (state, sha256) for address, state, sha256 in rows}
    assert set(acknowledged) <= set(stored)
    assert {state for state, _sha in stored.values()} <= {"outgoing", "contained"}
    for _state, sha256 in stored.values():
        assert (tmp_path / "data" / "blobs" / "bodies" / sha256).exists()
