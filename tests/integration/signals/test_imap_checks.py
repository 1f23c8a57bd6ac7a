"""IMAP checks against the primary stand-in (Postfix + Dovecot with a master user).

Mail relayed for a mailbox must be in its Sent Items (Outlook files it there; a stolen
password used over SMTP does not); mail delivered to a mailbox must stay in the Inbox
for more than a few seconds (a hidden rule moves it away at once). Dovecot plays the
primary's mailboxes; the test moves mail as a hidden inbox rule would.
"""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.core.signals import MailboxStatus, SignalKind
from tests.integration.signals.conftest import RelayAppliance, feed_appliance_with
from tests.support.messages import make_message, message_id_of
from tests.support.primary import MASTER_USER, PrimaryStandIn
from tests.support.smtp_sink import SmtpSink
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow

USERS = {"alice@example.com": "alice-pw", "bob@example.com": "bob-pw"}


@pytest.fixture
def primary() -> Iterator[PrimaryStandIn]:
    stand_in = PrimaryStandIn(["example.com", "example.net"], USERS)
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.close()


@pytest.fixture
async def checked(
    tmp_path: Path, sink: SmtpSink, webhook: WebhookReceiver, primary: PrimaryStandIn
) -> AsyncIterator[RelayAppliance]:
    extra: dict[str, Any] = {
        **primary.settings(imap=False),
        "failover": {"mode": "gateway", "relay_interval": 0.2, "relay_retry": 0.5},
        "replay": {
            "master_user": MASTER_USER,
            "master_password": primary.master_password,
            "ca_file": str(primary.ca_file),
        },
        "signals": {
            "imap_checks": True,
            "imap_sample_rate": 1.0,
            "sent_check_delay": 1.0,
            "inbox_check_delay": 3.0,
            "imap_timeout": 10.0,
        },
    }
    extra["monitor"] = {**extra["monitor"], "enabled": False}
    async with feed_appliance_with(tmp_path, sink, webhook, extra) as feed:
        yield feed


class Mailboxes:
    """The primary's mailboxes over IMAP, as Outlook and the attacker's hidden rule use them."""

    def __init__(self, primary: PrimaryStandIn) -> None:
        self._primary = primary

    def _open(self, mailbox: str) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self._primary.ca_file))
        client = imaplib.IMAP4_SSL("127.0.0.1", self._primary.imaps_port, ssl_context=context)
        client.login(f"{mailbox}*{MASTER_USER}", self._primary.master_password)
        return client

    def file_in_sent_items(self, mailbox: str, message: bytes) -> None:
        """What Outlook does with a message it sends."""
        client = self._open(mailbox)
        try:
            client.create('"Sent Items"')
            status, _ = client.append('"Sent Items"', "(\\Seen)", imaplib.Time2Internaldate(time.time()), message)
            assert status == "OK"
        finally:
            client.logout()

    def move_when_delivered(self, mailbox: str, subject: str, folder: str, timeout: float = 30.0) -> None:
        """What a hidden rule does: the moment the message is in the Inbox, move it away."""
        client = self._open(mailbox)
        try:
            client.create(f'"{folder}"')
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                client.select("INBOX")
                status, data = client.uid("SEARCH", "SUBJECT", f'"{subject}"')
                uids = data[0].split() if status == "OK" and data and data[0] else []
                if uids:
                    status, _ = client.uid("MOVE", uids[0].decode(), f'"{folder}"')
                    assert status == "OK"
                    return
                time.sleep(0.05)
            raise AssertionError(f"'{subject}' never reached the Inbox of {mailbox}")
        finally:
            client.logout()

    def wait_in_inbox(self, mailbox: str, subject: str, timeout: float = 30.0) -> None:
        client = self._open(mailbox)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                client.select("INBOX")
                status, data = client.search(None, "SUBJECT", f'"{subject}"')
                if status == "OK" and data and data[0]:
                    return
                time.sleep(0.1)
            raise AssertionError(f"'{subject}' never reached the Inbox of {mailbox}")
        finally:
            client.logout()


async def _wait_checks(feed: RelayAppliance, count: int, timeout: float = 40.0) -> None:
    assert feed.running.feeds is not None and feed.running.feeds.checks is not None
    checks = feed.running.feeds.checks
    deadline = time.monotonic() + timeout
    while checks.completed < count:
        assert time.monotonic() < deadline, f"only {checks.completed} of {count} IMAP checks ran"
        await asyncio.sleep(0.1)


async def test_mail_relayed_behind_the_users_back_is_missing_from_sent_items(
    checked: RelayAppliance, primary: PrimaryStandIn
) -> None:
    feed = checked
    mailboxes = Mailboxes(primary)
    genuine = make_message("Sent from Outlook", 5, "alice@example.com", "partner@outside.test")
    await asyncio.to_thread(mailboxes.file_in_sent_items, "alice@example.com", genuine)
    assert (await asyncio.to_thread(feed.relay, "alice@example.com", ["partner@outside.test"], genuine)).startswith(
        "250"
    )
    sneaky = make_message("Sent over SMTP with a stolen password", 5, "alice@example.com", "victim@outside.test")
    assert (await asyncio.to_thread(feed.relay, "alice@example.com", ["victim@outside.test"], sneaky)).startswith("250")
    await _wait_checks(feed, 2)
    signals = await feed.running.store.signals.list(mailbox="alice@example.com")
    assert [stored.signal.kind for stored in signals] == [SignalKind.SENT_ITEMS_MISSING]
    evidence = " ".join(signals[0].signal.evidence)
    assert message_id_of(sneaky) in evidence and message_id_of(genuine) not in evidence
    assert signals[0].signal.source == "imap"
    # Medium: the admins hear about it; the mailbox is flagged, not contained.
    assert (await feed.running.store.signals.state("alice@example.com")).status is MailboxStatus.FLAGGED


async def test_mail_a_hidden_rule_moves_out_of_the_inbox_raises_a_signal(
    checked: RelayAppliance, primary: PrimaryStandIn
) -> None:
    feed = checked
    mailboxes = Mailboxes(primary)

    def inbound(subject: str) -> None:
        with smtplib.SMTP("127.0.0.1", feed.running.smtp_address.port) as client:
            client.sendmail(
                "paula@partner.test", ["bob@example.com"], make_message(subject, 5, recipient="bob@example.com")
            )

    await asyncio.to_thread(inbound, "Invoice 4711 overdue")
    await asyncio.to_thread(mailboxes.move_when_delivered, "bob@example.com", "Invoice 4711 overdue", "RSS Feeds")
    await asyncio.to_thread(inbound, "Lunch on Friday")
    await asyncio.to_thread(mailboxes.wait_in_inbox, "bob@example.com", "Lunch on Friday")
    await _wait_checks(feed, 2)
    signals = await feed.running.store.signals.list(mailbox="bob@example.com")
    assert [stored.signal.kind for stored in signals] == [SignalKind.INBOX_VANISHED]
    assert "RSS Feeds" in signals[0].signal.summary
