"""``continuity queue list`` pages through the queue: every message once, newest first, in valid JSON.

2,500 messages, several with the same arrival time (the keyset's tie on the queue id),
listed by the real command in pages of 1,000: ``--limit 0`` gives all of them, a limit
cuts at that many, and the table form counts them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from continuity.core.models import AcceptedRecipient, IncomingMessage
from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import ServeProcess

MESSAGES = 2500
NOW = 1_800_000_000.0


def _message(number: int) -> IncomingMessage:
    body = f"Subject: {number}\r\n\r\nbody {number}\r\n".encode()
    return IncomingMessage(
        queue_id=f"Q{number:015d}", sender="s@outside.test",
        recipients=(AcceptedRecipient("a@example.com", "a@example.com"),),
        content=body, trace_header=b"Received: test\r\n", received_at=NOW + number // 7, client_address="192.0.2.1",
        client_helo="c.test", message_id=f"<{number}@x>", subject=str(number), sha256=hashlib.sha256(body).hexdigest(),
    )  # fmt: skip


async def test_every_message_once_newest_first(tmp_path: Path) -> None:
    served = ServeProcess(tmp_path)
    data = tmp_path / "data"
    store = await open_sqlite_store(data / "continuity.db", data / "blobs")
    try:
        for start in range(0, MESSAGES, 500):
            await store.messages.commit([_message(n) for n in range(start, start + 500)])
    finally:
        await store.close()
    listed = json.loads(served.cli("queue", "list", "--json", "--limit", "0").stdout)
    expected = sorted((f"Q{n:015d}" for n in range(MESSAGES)), key=lambda q: (int(q[1:]) // 7, q), reverse=True)
    assert [entry["id"] for entry in listed] == expected
    limited = json.loads(served.cli("queue", "list", "--json", "--limit", "1234").stdout)
    assert [entry["id"] for entry in limited] == expected[:1234]
    assert json.loads(served.cli("queue", "list", "--json").stdout)[-1]["id"] == expected[999]
    assert served.cli("queue", "list", "--limit", "0").stdout.rstrip().endswith(f"{MESSAGES} messages.")
    refused = served.cli("queue", "list", "--limit", "-1", check=False)
    assert refused.returncode == 2 and "-1" in refused.stderr
