"""The replay's upkeep: replayed copies pruned after the retention, admins warned before a give-up."""

from __future__ import annotations

import hashlib
from pathlib import Path

from continuity.config.settings import Settings
from continuity.core.models import AcceptedRecipient, IncomingMessage
from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import Channel, FolderMap, plan_item
from continuity.core.replay_records import ItemUpdate, RunKind
from continuity.services.replay_finish import ReplayAlerts, Upkeep
from continuity.store.sqlite import SqliteStore

NOW = 1_800_000_000.0
DAY = 86400.0


def _message(queue_id: str) -> IncomingMessage:
    content = f"Subject: {queue_id}\r\n\r\nbody\r\n".encode()
    return IncomingMessage(
        queue_id=queue_id, sender="s@outside.test", recipients=(AcceptedRecipient("a@example.com", "a@example.com"),),
        content=content, trace_header=b"", received_at=NOW, client_address="192.0.2.1", client_helo="c.test",
        message_id=f"<{queue_id}@x>", subject=queue_id, sha256=hashlib.sha256(content).hexdigest(),
    )  # fmt: skip


async def test_prune_after_the_retention_and_warn_once_before_the_give_up(tmp_path: Path, store: SqliteStore) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "replay": {"keep_delivered_days": 7}})
    await store.messages.commit([_message("Q00000000000000A"), _message("Q00000000000000B")])
    run = await store.replay.create_run(RunKind.RESTORATION, False, NOW)
    candidates = await store.replay.candidates(10)
    planned = [(plan_item(c, FolderMap(), smtp_for_received=False), ItemState.PENDING, "") for c in candidates]
    await store.replay.add_items(run.id, planned, NOW)
    delivered, deferred = await store.replay.claim(Channel.IMAP, None, 10, NOW, run.id)
    await store.replay.record(
        [
            ItemUpdate(delivered.id, ItemState.DELIVERED, NOW, "ok", 0, 0, "INBOX", ""),
            ItemUpdate(deferred.id, ItemState.DEFERRED, NOW, "mailbox missing", 0, NOW + 60),
        ]
    )
    alerts = ReplayAlerts(store, settings.notify, settings.outbound, "standby.test")
    upkeep = Upkeep(store, settings, alerts)
    await upkeep.run(NOW + DAY)
    assert await store.messages.get(delivered.queue_id) is not None  # within the 7 days
    assert [e.record.action for e in await store.audit.list()] == []  # 1 day of retries: no warning yet
    later = Upkeep(store, settings, alerts)
    await later.run(NOW + 4.5 * DAY)  # 5 days minus 1 day of warning: warned
    await later.run(NOW + 4.6 * DAY)  # not twice
    warnings = [e for e in await store.audit.list() if e.record.action == "replay.warning"]
    assert len(warnings) == 1 and deferred.queue_id in str(warnings[0].details)
    await Upkeep(store, settings, alerts).run(NOW + 7.5 * DAY)
    assert await store.messages.get(delivered.queue_id) is None  # pruned
    assert await store.messages.get(deferred.queue_id) is not None  # never while not replayed
