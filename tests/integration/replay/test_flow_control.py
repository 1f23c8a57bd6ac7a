"""A primary that throttles: the replay slows down and still completes, exactly once.

* IMAP: a real TLS proxy in front of Dovecot refuses every APPEND with
  ``NO [LIMIT] Server busy`` for a few seconds, as Exchange's IMAP budget does, then answers
  slowly for a while. The replay backs off (pauses that double, a smaller window), slows
  down on the latency, and completes once the primary recovers.
* SMTP: Postfix, the stand-in's receive connector, is reconfigured (and reloaded) to answer
  ``452`` to every recipient for a few seconds, as Exchange's back pressure answers "452
  4.3.1 Insufficient system resources"; mail written in the webmail still goes to Sent
  Items over IMAP.
"""

from __future__ import annotations

import asyncio
import smtplib
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.core.failover import FailoverEvent, FailoverState
from continuity.core.replay_journal import ItemState
from tests.support.imap_mailbox import Copy, duplicates, read_mailbox
from tests.support.imap_throttle import ThrottlingImapProxy
from tests.support.primary import PrimaryStandIn
from tests.support.replay import master_login, order, replay_overrides, wait_for_state
from tests.support.smtp_sink import SmtpSink
from tests.support.webmail import WebmailClient, deliver, mail, webmail_appliance

pytestmark = pytest.mark.slow

MESSAGES = 40


@pytest.fixture
async def proxy(primary: PrimaryStandIn) -> AsyncIterator[ThrottlingImapProxy]:
    server = ThrottlingImapProxy(primary.imaps_port, primary.cert_file, primary.key_file, primary.ca_file)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _alice(primary: PrimaryStandIn) -> list[Copy]:
    return await read_mailbox(
        primary.imaps_port, primary.ca_file, master_login("alice@example.com"), primary.master_password
    )


async def test_imap_server_busy_then_slow(tmp_path: Path, primary: PrimaryStandIn, proxy: ThrottlingImapProxy) -> None:
    proxy.busy_after, proxy.busy_for = 8, 4.0
    proxy.slow_appends, proxy.slow_delay = 12, 0.3
    overrides = replay_overrides(
        primary,
        primary={"imap_port": proxy.port},
        replay={"concurrency": 4, "throttle_pause": 0.25, "throttle_pause_max": 2.0, "latency_factor": 3.0},
    )
    async with webmail_appliance(tmp_path / "data", **overrides) as running:
        assert running.failover is not None and running.failover.replay is not None
        await order(running, FailoverEvent.OPERATOR_FAILOVER)
        for number in range(MESSAGES):
            await deliver(running, mail(f"Busy primary {number:02d}", f"message {number}"))
        started = time.monotonic()
        await order(running, FailoverEvent.OPERATOR_FAILBACK)
        await wait_for_state(running, FailoverState.NORMAL, 90)
        flow = running.failover.replay.flow
    assert proxy.busy_from > started, "the busy phase never began"
    # It backed off: a handful of refused APPENDs over the busy phase, not a tight retry loop,
    # spaced by pauses that grew; then it slowed down on the latency.
    assert 1 <= len(proxy.refused) <= 30, proxy.refused
    gaps = [later - earlier for earlier, later in zip(proxy.refused, proxy.refused[1:], strict=False)]
    assert max(gaps, default=0.0) >= 0.9, gaps
    assert flow.throttles >= 1 and flow.slowdowns >= 1, flow.describe()
    assert max(proxy.forwarded) > proxy.busy_until  # it completed after the primary recovered
    copies = await _alice(primary)
    assert duplicates(copies) == [] and len(copies) == MESSAGES


async def _postconf(primary: PrimaryStandIn, *settings: str) -> None:
    config = primary._postfix.config_dir  # type: ignore[union-attr]
    subprocess.run(["postconf", "-c", str(config), "-e", *settings], check=True)
    subprocess.run(["postfix", "-c", str(config), "reload"], check=True, capture_output=True)


def _rcpt_code(port: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("probe.test")
        client.mail("probe@outside.test")
        code, _ = client.rcpt("alice@example.com")
        client.rset()
        return int(code)


async def _wait_for_rcpt_code(primary: PrimaryStandIn, code: int) -> None:
    """Postfix reloads asynchronously: wait until a new session sees the new answer."""
    deadline = time.monotonic() + 20
    while await asyncio.to_thread(_rcpt_code, primary.smtp_port) != code:
        assert time.monotonic() < deadline, f"Postfix never answered {code}"
        await asyncio.sleep(0.1)


async def _wait_for_inbox(primary: PrimaryStandIn, count: int, timeout: float = 30.0) -> list[Copy]:
    deadline = time.monotonic() + timeout
    while True:
        copies = await _alice(primary)
        if len([c for c in copies if c.folder == "INBOX"]) >= count or time.monotonic() > deadline:
            return copies
        await asyncio.sleep(0.2)


async def test_smtp_receive_connector_answers_452_for_a_while(tmp_path: Path, primary: PrimaryStandIn) -> None:
    sink = SmtpSink(tmp_path / "sink")  # where the webmail's outbound mail goes
    sink.start()
    try:
        await _smtp_replay(tmp_path, primary, sink)
    finally:
        sink.stop()


async def _smtp_replay(tmp_path: Path, primary: PrimaryStandIn, sink: SmtpSink) -> None:
    overrides = replay_overrides(
        primary,
        replay={"method": "smtp", "smtp_tls": "none", "throttle_pause": 0.25, "throttle_pause_max": 2.0},
        outbound={"smart_host": f"127.0.0.1:{sink.port}", "tls": "none"},
    )
    async with webmail_appliance(tmp_path / "data", **overrides) as running:
        assert running.failover is not None and running.failover.replay is not None
        await order(running, FailoverEvent.OPERATOR_FAILOVER)
        for number in range(MESSAGES):
            await deliver(running, mail(f"Via the connector {number:02d}", f"message {number}"))
        client = WebmailClient(running)
        try:
            await client.login()
            await client.get("/mail/compose")
            sent = await client.post(
                "/mail/compose", {"to": "sam@outside.test", "subject": "Sent while failed over", "body": "Hi."}
            )
            assert sent.status_code == 303
        finally:
            await client.close()
        await _postconf(primary, "smtpd_recipient_restrictions = defer", "defer_code = 452")
        await _wait_for_rcpt_code(primary, 452)
        await order(running, FailoverEvent.OPERATOR_FAILBACK)
        await asyncio.sleep(3.0)
        journal = await running.store.replay.progress()
        assert sum(progress.count(ItemState.DELIVERED) for progress in journal) <= 1  # only the Sent copy (IMAP)
        await _postconf(primary, "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination")
        await _wait_for_rcpt_code(primary, 250)
        await wait_for_state(running, FailoverState.NORMAL, 90)
        flow = running.failover.replay.flow
        assert flow.throttles >= 1, flow.describe()
        deferred = await running.store.replay.items((await running.store.replay.latest_run()).id)  # type: ignore[union-attr]
        assert all(item.state is ItemState.DELIVERED for item in deferred)
        assert any(item.attempts > 1 for item in deferred)
    copies = await _wait_for_inbox(primary, MESSAGES)
    assert duplicates(copies) == []
    inbox = sorted(copy.subject for copy in copies if copy.folder == "INBOX")
    assert inbox == [f"Via the connector {number:02d}" for number in range(MESSAGES)]
    assert [(c.folder, c.subject) for c in copies if c.folder != "INBOX"] == [("Sent Items", "Sent while failed over")]
    assert all(copy.marker for copy in copies)
