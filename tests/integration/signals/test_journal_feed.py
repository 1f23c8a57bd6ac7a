"""The journal feed over real SMTP: Exchange journal reports unwrapped into mirrored copies and signals."""

from __future__ import annotations

import asyncio
import smtplib
import uuid

from continuity.core.baseline import ContactKind
from continuity.core.models import MessageState
from continuity.core.signals import SignalKind
from tests.integration.signals.conftest import RelayAppliance

JOURNAL = "journal@continuity.example.com"


def journal_report(envelope: list[str], inner: bytes, *, subject: str = "Report") -> bytes:
    """An Exchange envelope journal report around inner (as the journaling agent writes it)."""
    boundary = f"jr-{uuid.uuid4().hex}"
    lines = "\r\n".join(envelope)
    return (
        (
            "From: Microsoft Exchange Server <postmaster@example.com>\r\n"
            f"To: {JOURNAL}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@exchange.example.com>\r\n"
            "Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nX-MS-Journal-Report:\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{lines}\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        ).encode()
        + inner
        + f"\r\n--{boundary}--\r\n".encode()
    )


def inner_message(sender: str, to: str, subject: str) -> tuple[bytes, str]:
    message_id = f"<{uuid.uuid4().hex}@{sender.rpartition('@')[2]}>"
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
        "Date: Mon, 23 Nov 2026 08:59:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
        "The figures you asked for.\r\n"
    ).encode(), message_id


async def _totals(feed: RelayAppliance, mailbox: str) -> dict[str, int]:
    return {item.name: item.total for item in await feed.running.store.webmail.folders(mailbox)}


async def test_an_inbound_journal_report_becomes_mirrored_copies(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    store = feed.running.store
    inner, message_id = inner_message("paula@partner.test", "bob@example.com", "Figures")
    report = journal_report(
        [
            "Sender: paula@partner.test",
            "Subject: Figures",
            f"Message-Id: {message_id}",
            "To: bob@example.com",
            "Bcc: alice@example.com",
        ],
        inner,
    )
    reply = await asyncio.to_thread(feed.relay, "postmaster@example.com", [JOURNAL], report)
    assert reply.startswith("250 2.0.0 Ok: queued as"), reply
    entry = await store.messages.get(reply.rsplit(" ", 1)[1])
    assert entry is not None
    assert entry.state is MessageState.MIRRORED
    assert entry.message_id == message_id and entry.sender == "paula@partner.test"
    # The envelope recipients come from the report (the Bcc recipient too).
    assert set(entry.recipients) == {"bob@example.com", "alice@example.com"}
    stored = await store.blobs.read(entry.sha256)
    assert stored == inner
    assert (await _totals(feed, "bob@example.com")).get("INBOX") == 1
    assert (await _totals(feed, "alice@example.com")).get("INBOX") == 1
    # Mail the primary already has is never replayed and never relayed.
    assert await store.messages.count() == 0
    assert feed.sink.messages(0, timeout=0.3) == []
    assert feed.running.feeds is not None and feed.running.feeds.signals is not None
    await feed.running.feeds.signals.flush()
    assert "paula@partner.test" in await store.signals.contacts("bob@example.com", (ContactKind.RECEIVED,))


async def test_an_outbound_journal_report_fills_sent_and_reports_forwarding(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    store = feed.running.store
    inner, message_id = inner_message("alice@example.com", "paula@partner.test", "Offer")
    report = journal_report(
        [
            "Sender: alice@example.com",
            "Subject: Offer",
            f"Message-Id: {message_id}",
            "To: paula@partner.test",
            "To: bob@example.com",
            # bob's mailbox forwards everything to an outside address.
            "To: drop@exfil.test, Forwarded: bob@example.com",
        ],
        inner,
    )
    reply = await asyncio.to_thread(feed.relay, "postmaster@example.com", [JOURNAL], report)
    assert reply.startswith("250"), reply
    assert (await _totals(feed, "alice@example.com")).get("Sent") == 1
    assert (await _totals(feed, "bob@example.com")).get("INBOX") == 1
    signals = await store.signals.list(mailbox="bob@example.com")
    assert [stored.signal.kind for stored in signals] == [SignalKind.RULE_FORWARD]
    assert "drop@exfil.test" in signals[0].signal.summary
    assert signals[0].signal.source == "journal"


async def test_journal_reports_come_alone_and_well_formed_from_the_primary_only(
    feed_appliance: RelayAppliance,
) -> None:
    feed = feed_appliance
    inner, message_id = inner_message("paula@partner.test", "bob@example.com", "x")
    report = journal_report(["Sender: paula@partner.test", f"Message-Id: {message_id}", "To: bob@example.com"], inner)

    def mixed() -> tuple[int, int]:
        with smtplib.SMTP("127.0.0.1", feed.relay_port) as client:
            client.ehlo("exchange.example.com")
            client.mail("postmaster@example.com")
            first = client.rcpt(JOURNAL)[0]
            second = client.rcpt("someone@outside.test")[0]
            return first, second

    assert await asyncio.to_thread(mixed) == (250, 452)
    broken = b"From: x@example.com\r\nX-MS-Journal-Report:\r\nSubject: no parts\r\n\r\nnothing here\r\n"
    reply = await asyncio.to_thread(feed.relay, "postmaster@example.com", [JOURNAL], broken)
    assert reply.startswith("550 5.6.0"), reply
    outsider = await asyncio.to_thread(feed.relay, "postmaster@example.com", [JOURNAL], report, "127.0.0.2")
    assert outsider.startswith("554 5.7.1"), outsider
    assert await feed.running.store.messages.list() == []
