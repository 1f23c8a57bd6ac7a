"""Compromise scenarios driven through real SMTP: a sudden flood, an inbox-rule forward, a hijacked reply, a newsletter.

The relay listener stands where the primary's smart host would be; its next hop, the
admins' and the users' mail servers are one smtp-sink; the webhook receiver is a real
HTTP server. History is what the appliance would have learned in the weeks before.
"""

from __future__ import annotations

import asyncio
import io
import smtplib
import threading
import time
import uuid
import zipfile
from email.message import EmailMessage, Message
from email.policy import SMTP

import pytest

from continuity.core.baseline import ContactKind, ContactObservation, SendEvent
from continuity.core.delivery import DeliveryStatus, RecipientResult
from continuity.core.dsn import build_dsn
from continuity.core.models import MessageState
from continuity.core.signals import MailboxStatus, Response, SignalKind
from tests.integration.signals.conftest import ADMIN, ALICE_HOME, RelayAppliance
from tests.support.messages import make_message

DAY = 86400.0


def _send_many(port: int, sender: str, recipients: list[str], connections: int) -> list[str]:
    """One message per recipient over a few parallel connections; the final reply of each."""
    replies: list[str] = []

    def worker(chunk: list[str]) -> None:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo("exchange.example.com")
            for recipient in chunk:
                code, _text = client.mail(sender)
                client.rcpt(recipient)
                code, text = client.data(make_message(sender=sender, recipient=recipient, subject="Hello"))
                replies.append(f"{code} {text.decode()}")

    chunks = [recipients[index::connections] for index in range(connections)]
    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


async def _seed_history(
    feed: RelayAppliance, mailbox: str, hours: list[float], recipients_per_hour: list[str], per_message: int = 1
) -> None:
    """Weeks of ordinary sending: in each of hours, one message per recipient (all known correspondents)."""
    store = feed.running.store
    sends = []
    for hour in hours:
        for index in range(0, len(recipients_per_hour), per_message):
            sends.append((mailbox, SendEvent(hour + index * 0.5, per_message, 0)))
    await store.signals.add_sends(sends)
    at = min(hours)
    await store.signals.add_contacts(
        [ContactObservation(mailbox, address, ContactKind.SENT, at) for address in recipients_per_hour]
    )


def _to(message: Message) -> str:
    return str(message.get("To", ""))


async def test_a_sudden_flood_to_strangers_is_contained_and_both_notifications_go_out(
    feed_appliance: RelayAppliance,
) -> None:
    feed = feed_appliance
    now = time.time()
    regulars = [f"colleague{index}@partner.test" for index in range(10)]
    # Four weeks of a few messages a day to the same ten people.
    await _seed_history(feed, "alice@example.com", [now - day * DAY - 3 * 3600 for day in range(1, 28)], regulars[:4])
    strangers = [f"stranger{index}@outside.test" for index in range(500)]
    replies = await asyncio.to_thread(_send_many, feed.relay_port, "alice@example.com", strangers, 5)
    assert len(replies) == 500 and all(reply.startswith("250") for reply in replies)
    store = feed.running.store
    state = await store.signals.state("alice@example.com")
    assert state.status is MailboxStatus.CONTAINED
    held = await store.feeds.held(limit=1000)
    relayed = 500 - len(held)
    # Contained within a bounded number of messages: the never-seen-recipients threshold (20).
    assert relayed <= 20, relayed
    assert all(item.mailbox == "alice@example.com" and "contained" in item.reason for item in held)
    signals = await store.signals.list(mailbox="alice@example.com")
    kinds = {stored.signal.kind for stored in signals}
    assert SignalKind.NEW_RECIPIENTS in kinds
    first = min(signals, key=lambda stored: stored.id)
    assert {Response.CONTAIN, Response.NOTIFY_USER, Response.NOTIFY_ADMINS} <= set(first.responses)
    # Both notifications: the admins (mail and webhook) and the user at the alternate address.
    delivered = await asyncio.to_thread(feed.sink.messages, relayed + 2)
    to_admin = [m for m in delivered if ADMIN in _to(m)]
    to_user = [m for m in delivered if ALICE_HOME in _to(m)]
    containing = [m for m in to_admin if "new_recipients: alice@example.com" in str(m["Subject"])]
    assert len(containing) == 1
    assert "now CONTAINED" in containing[0].get_content()  # type: ignore[attr-defined]
    assert to_user and "alice@example.com" in str(to_user[0]["Subject"])
    strangers_reached = [m for m in delivered if "outside.test" in _to(m)]
    assert len(strangers_reached) == relayed
    hooks = await asyncio.to_thread(feed.webhook.wait_for, 1)
    assert hooks[0].authorization == "Bearer hook-secret"
    assert hooks[0].body["type"] == "signal" and hooks[0].body["mailbox"] == "alice@example.com"
    assert "contain" in hooks[0].body["responses"]
    # Every signal and response is in the audit log.
    actions = [entry.record.action for entry in await store.audit.list(limit=200)]
    assert "signal.new_recipients" in actions and "signal.response.contain" in actions
    assert "signal.response.notify_user" in actions and "signal.response.notify_admins" in actions
    # The attack did not become the mailbox's history or its known correspondents.
    assert feed.running.feeds is not None and feed.running.feeds.signals is not None
    await feed.running.feeds.signals.flush()
    known = await store.signals.contacts("alice@example.com", (ContactKind.SENT,))
    assert len(known & set(strangers)) == relayed


async def test_a_newsletter_mailbox_with_history_is_not_flagged(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    from continuity.core.mailbox_rows import build_mailbox
    from tests.support.appliance import TEST_DOMAINS

    await feed.running.store.mailboxes.upsert(build_mailbox("news@example.com", "Newsletter", domains=TEST_DOMAINS))
    await feed.running.directory.refresh()
    subscribers = [f"reader{index}@subscribers.test" for index in range(300)]
    now = time.time()
    # A weekly newsletter to the same 300 subscribers for the last four weeks.
    await _seed_history(feed, "news@example.com", [now - week * 7 * DAY for week in range(1, 5)], subscribers)
    replies = await asyncio.to_thread(_send_many, feed.relay_port, "news@example.com", subscribers, 4)
    assert all(reply.startswith("250") for reply in replies)
    store = feed.running.store
    assert await store.signals.list(mailbox="news@example.com") == []
    assert (await store.signals.state("news@example.com")).status is MailboxStatus.NORMAL
    assert await store.feeds.held() == []
    delivered = await asyncio.to_thread(feed.sink.messages, 300, 30.0)
    assert len([m for m in delivered if "subscribers.test" in _to(m)]) == 300


def _forwarded_by_rule(owner: str, target: str) -> bytes:
    return (
        f"From: Partner <partner@partner.test>\r\nTo: {target}\r\nSubject: FW: Payment run\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        f"X-MS-Exchange-Inbox-Rules-Loop: {owner}\r\n"
        "X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Please find the payment run attached.\r\n"
    ).encode()


async def test_an_inbox_rule_forward_outside_raises_a_signal_on_its_first_message(
    feed_appliance: RelayAppliance,
) -> None:
    feed = feed_appliance
    store = feed.running.store
    message = _forwarded_by_rule("bob@example.com", "collector@exfil.test")
    reply = await asyncio.to_thread(feed.relay, "bob@example.com", ["collector@exfil.test"], message)
    assert reply.startswith("250"), reply
    signals = await store.signals.list(mailbox="bob@example.com")
    assert [stored.signal.kind for stored in signals] == [SignalKind.RULE_FORWARD]
    evidence = " ".join(signals[0].signal.evidence)
    assert "collector@exfil.test" in evidence and "Mailbox Rules Agent" in evidence
    # Forwarding to the outside is a high signal: the mailbox is contained, the forward itself held.
    assert (await store.signals.state("bob@example.com")).contained
    held = await store.feeds.held(mailbox="bob@example.com")
    assert [item.entry.queue_id for item in held] == [reply.rsplit(" ", 1)[1]]
    # The same target again is no new finding.
    await asyncio.to_thread(feed.relay, "bob@example.com", ["collector@exfil.test"], _forwarded_by_rule(
        "bob@example.com", "collector@exfil.test"))  # fmt: skip
    assert len(await store.signals.list(mailbox="bob@example.com")) == 1


def _invoice_from_partner() -> tuple[bytes, str]:
    message_id = f"<{uuid.uuid4().hex}@partner.test>"
    message = EmailMessage()
    message["From"] = "Paula Partner <paula@partner.test>"
    message["To"] = "Bob Example <bob@example.com>"
    message["Subject"] = "Invoice 4711"
    message["Message-ID"] = message_id
    message["Date"] = "Mon, 23 Nov 2026 08:00:00 +0000"
    message.set_content(
        "Hello Bob,\n\nthe invoice is on our portal: https://portal.partner.test/invoices/4711\n\nPaula\n"
    )
    return message.as_bytes(policy=SMTP), message_id


def _reply(sender: str, original_id: str, *, link: str = "", attachment: bool = False, text: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "Paula Partner <paula@partner.test>"
    message["Subject"] = "RE: Invoice 4711"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
    message["In-Reply-To"] = original_id
    message["References"] = original_id
    message["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    message.set_content(text or f"Hi Paula,\n\nplease see the document: {link}\n\nBob\n")
    if attachment:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as handle:
            handle.writestr("Invoice_4711.pdf", b"%PDF-1.4 not really\n")
        message.add_attachment(archive.getvalue(), maintype="application", subtype="zip", filename="Invoice_4711.zip")
    return message.as_bytes(policy=SMTP)


async def test_a_hijacked_reply_sent_from_inside_is_held(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    store = feed.running.store
    invoice, invoice_id = _invoice_from_partner()

    def inbound() -> None:
        with smtplib.SMTP("127.0.0.1", feed.running.smtp_address.port) as client:
            client.sendmail("paula@partner.test", ["bob@example.com"], invoice)

    await asyncio.to_thread(inbound)
    # An ordinary answer in the thread goes out.
    normal = _reply("Bob Example <bob@example.com>", invoice_id, text="Hi Paula,\n\nthanks, paid today.\n\nBob\n")
    reply = await asyncio.to_thread(feed.relay, "bob@example.com", ["paula@partner.test"], normal)
    entry = await store.messages.get(reply.rsplit(" ", 1)[1])
    assert entry is not None and entry.state in (MessageState.OUTGOING, MessageState.MIRRORED)
    # The attacker's reply from the same mailbox: a new download site and an archive.
    hijacked = _reply(
        "Bob Example <bob@example.com>", invoice_id, link="https://docs-share.evil.test/Invoice_4711", attachment=True
    )
    reply = await asyncio.to_thread(feed.relay, "bob@example.com", ["paula@partner.test"], hijacked)
    assert reply.startswith("250"), reply
    queue_id = reply.rsplit(" ", 1)[1]
    entry = await store.messages.get(queue_id)
    assert entry is not None and entry.state is MessageState.CONTAINED
    verdict = await store.verdicts.get(queue_id)
    assert verdict is not None and "compromise.hijacked_reply" in [f.code for f in verdict.findings]
    signals = await store.signals.list(mailbox="bob@example.com")
    assert [stored.signal.kind for stored in signals] == [SignalKind.MALICIOUS_OUTBOUND]
    assert "compromise.hijacked_reply" in signals[0].signal.evidence[0]
    held = await store.feeds.held(mailbox="bob@example.com")
    assert [item.entry.queue_id for item in held] == [queue_id]
    delivered = await asyncio.to_thread(feed.sink.messages, 2)
    to_partner = [m for m in delivered if "paula@partner.test" in _to(m)]
    assert len(to_partner) == 1 and "paid today" in to_partner[0].as_string()


async def test_a_bank_detail_change_from_our_own_mailbox_is_held(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    message = make_message(sender="alice@example.com", recipient="accounts@customer.test", subject="Our bank details")
    text = (
        b"Dear customer,\r\n\r\nour bank details have changed. Please remit all future payments to our new\r\n"
        b"account: IBAN DE89 3704 0044 0532 0130 00.\r\n\r\nKind regards, Alice\r\n"
    )
    message = message.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + text
    reply = await asyncio.to_thread(feed.relay, "alice@example.com", ["accounts@customer.test"], message)
    entry = await feed.running.store.messages.get(reply.rsplit(" ", 1)[1])
    assert entry is not None and entry.state is MessageState.CONTAINED
    signals = await feed.running.store.signals.list(mailbox="alice@example.com")
    assert signals and "compromise.bank_change" in signals[0].signal.evidence[0]


@pytest.mark.parametrize("feed_appliance", [{"signals": {"bounces_per_hour": 5}}], indirect=True)
async def test_a_burst_of_bounce_reports_contains_the_mailbox(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance

    def bounce_reports(count: int) -> None:
        with smtplib.SMTP("127.0.0.1", feed.running.smtp_address.port) as client:
            for index in range(count):
                failed = [RecipientResult(f"gone{index}@outside.test", DeliveryStatus.FAILED, 550, "5.1.1 unknown")]
                report = build_dsn("mx.outside.test", "alice@example.com", failed, b"Subject: spam\r\n\r\n", "X", 0.0)
                client.sendmail("", ["alice@example.com"], report)

    await asyncio.to_thread(bounce_reports, 5)
    deadline = time.monotonic() + 10
    while not (await feed.running.store.signals.state("alice@example.com")).contained:
        assert time.monotonic() < deadline, "the bounce burst was not noticed"
        await asyncio.sleep(0.1)
    signals = await feed.running.store.signals.list(mailbox="alice@example.com")
    assert [stored.signal.kind for stored in signals] == [SignalKind.BOUNCE_BURST]
    assert signals[0].signal.evidence[0] == "5 hard bounces in the last hour"
