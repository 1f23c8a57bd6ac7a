"""While RESTORING lasts: webmail changes reach the primary, retries, warnings, give-up and the straggler replay.

bob's mailbox does not exist on the primary yet (the master user's login for it is refused),
so his copy is retried while alice's are delivered, and the run stays open. Meanwhile
alice files and flags delivered messages in the webmail: the replay moves and flags the
copies on the primary instead of appending them again. In the second test bob never
appears: the admins are warned before his copy is given up; it stays on the standby and
an operator's retry delivers it, after failback, through a straggler run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuity.core.failover import FailoverEvent, FailoverState
from continuity.core.mail_folders import Flag
from continuity.core.models import MessageState
from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import RunKind, RunStatus
from continuity.services.app import Running
from tests.support.imap_mailbox import Copy, duplicates, read_mailbox
from tests.support.primary import PrimaryStandIn
from tests.support.replay import USERS, master_login, order, replay_overrides, wait_for_run, wait_for_state
from tests.support.smtp_sink import SmtpSink
from tests.support.webmail import deliver, mail, webmail_appliance

pytestmark = pytest.mark.slow


@pytest.fixture
def alice_only() -> Iterator[PrimaryStandIn]:
    stand_in = PrimaryStandIn(["example.com", "example.net"], {"alice@example.com": USERS["alice@example.com"]})
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.close()


def _provision_bob(primary: PrimaryStandIn) -> None:
    with (primary.workdir / "dovecot" / "users").open("a") as users:
        users.write(f"bob@example.com:{{PLAIN}}{USERS['bob@example.com']}\n")


async def _mailbox(primary: PrimaryStandIn, address: str) -> list[Copy]:
    return await read_mailbox(primary.imaps_port, primary.ca_file, master_login(address), primary.master_password)


async def _wait_for_item(running: Running, subject: str, state: ItemState, attempts: int = 0) -> None:
    deadline = time.monotonic() + 30
    while True:
        run = await running.store.replay.latest_run()
        items = await running.store.replay.items(run.id) if run else []
        if any(i.subject == subject and i.state is state and i.attempts >= attempts for i in items):
            return
        assert time.monotonic() < deadline, [(i.subject, i.state, i.attempts, i.detail) for i in items]
        await asyncio.sleep(0.1)


async def _row_id(running: Running, subject: str) -> int:
    [listed] = [
        m for m in (await running.store.webmail.page("alice@example.com", "INBOX", 0, 50))[0] if m.subject == subject
    ]
    return listed.id


async def test_webmail_changes_during_restoring_reach_the_primary(tmp_path: Path, alice_only: PrimaryStandIn) -> None:
    primary = alice_only
    async with webmail_appliance(tmp_path / "data", **replay_overrides(primary)) as running:
        await order(running, FailoverEvent.OPERATOR_FAILOVER)
        for subject in ("Filed later", "Flagged later", "Left alone"):
            await deliver(running, mail(subject, subject.lower()))
        await deliver(running, mail("For bob", "hi bob"), ["bob@example.com"])
        await order(running, FailoverEvent.OPERATOR_FAILBACK)
        await _wait_for_item(running, "Left alone", ItemState.DELIVERED)
        await _wait_for_item(running, "For bob", ItemState.DEFERRED, attempts=1)
        assert running.failover is not None and running.failover.controller.record.state is FailoverState.RESTORING

        # alice files one delivered message and flags another in the webmail.
        webmail = running.store.webmail
        await webmail.create_folder("alice@example.com", "Later")
        await webmail.move("alice@example.com", [await _row_id(running, "Filed later")], "Later")
        await webmail.set_flag("alice@example.com", [await _row_id(running, "Flagged later")], Flag.FLAGGED, True)
        deadline = time.monotonic() + 30
        while True:
            copies = {copy.subject: copy for copy in await _mailbox(primary, "alice@example.com")}
            if copies["Filed later"].folder == "Later" and "\\Flagged" in copies["Flagged later"].flags:
                break
            assert time.monotonic() < deadline, copies
            await asyncio.sleep(0.2)
        assert running.failover.controller.record.state is FailoverState.RESTORING

        # bob's mailbox appears on the primary: his copy goes through, the run completes.
        _provision_bob(primary)
        await wait_for_state(running, FailoverState.NORMAL, 60)
        items = {item.subject: item for item in await running.store.replay.items(1)}
        assert items["Filed later"].detail == "moved from INBOX" and items["Filed later"].placed_folder == "Later"
        assert items["For bob"].attempts >= 2
    alice = await _mailbox(primary, "alice@example.com")
    assert duplicates(alice) == [] and len(alice) == 3
    assert {(c.subject, c.folder, tuple(sorted(c.flags))) for c in alice} == {
        ("Filed later", "Later", ("$MDNSent",)),
        ("Flagged later", "INBOX", ("$MDNSent", "\\Flagged")),
        ("Left alone", "INBOX", ("$MDNSent",)),
    }
    assert [c.subject for c in await _mailbox(primary, "bob@example.com")] == ["For bob"]


async def test_warning_before_giving_up_then_an_operator_retry(tmp_path: Path, alice_only: PrimaryStandIn) -> None:
    primary = alice_only
    sink = SmtpSink(tmp_path / "sink")
    sink.start()
    overrides = replay_overrides(
        primary,
        replay={"give_up_after": 4.0, "warn_before": 3.0, "retry_initial": 0.3, "retry_max": 1.0},
        notify={"admin_emails": ["admin@example.net"]},
        outbound={"smart_host": f"127.0.0.1:{sink.port}", "tls": "none"},
    )
    try:
        async with webmail_appliance(tmp_path / "data", **overrides) as running:
            await order(running, FailoverEvent.OPERATOR_FAILOVER)
            await deliver(running, mail("For bob", "hi bob"), ["bob@example.com"])
            await deliver(running, mail("For alice", "hi alice"))
            await order(running, FailoverEvent.OPERATOR_FAILBACK)
            # Warned first (at 1 s of retries), given up at 4 s; the run then completes and fails back.
            await wait_for_state(running, FailoverState.NORMAL, 60)
            run = await running.store.replay.get_run(1)
            assert run is not None and run.status is RunStatus.COMPLETED
            [bob] = [item for item in await running.store.replay.items(1) if item.mailbox == "bob@example.com"]
            assert bob.state is ItemState.FAILED and bob.detail.startswith("gave up after"), bob
            actions = [entry.record.action for entry in await running.store.audit.list(200)]
            assert actions.index("replay.warning") < actions.index("replay.failures")
            subjects = sorted(str(m["Subject"]) for m in sink.messages(2, timeout=20))
            assert any("will be given up" in subject for subject in subjects), subjects
            assert any("1 failed" in subject for subject in subjects), subjects
            # Never lost: the message is still on the standby, not replayed.
            entry = await running.store.messages.get(bob.queue_id)
            assert entry is not None and entry.state is MessageState.QUEUED

            # The mailbox is created; an operator retries: a straggler run delivers it after failback.
            _provision_bob(primary)
            assert await running.store.replay.retry_failed(run.id, time.time()) == 1
            assert running.failover is not None and running.failover.replay is not None
            running.failover.replay.wake()
            straggler = await wait_for_run(running, RunStatus.COMPLETED, 30)
            deadline = time.monotonic() + 30
            while (latest := await running.store.replay.latest_run()) is None or latest.kind is not RunKind.STRAGGLERS:
                assert time.monotonic() < deadline, straggler
                await asyncio.sleep(0.1)
            await wait_for_run(running, RunStatus.COMPLETED, 30)
            entry = await running.store.messages.get(bob.queue_id)
            assert entry is not None and entry.state is MessageState.REPLAYED
    finally:
        sink.stop()
    assert [c.subject for c in await _mailbox(primary, "bob@example.com")] == ["For bob"]
