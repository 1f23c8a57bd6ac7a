"""The relay feed over real SMTP: never an open relay, durable before 250, relayed to the next hop, mirrored, pruned."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import time
from pathlib import Path

import httpx
import pytest

from continuity.core.models import MessageState
from continuity.services.mirror_window import MirrorWindow
from tests.integration.signals.conftest import RelayAppliance, feed_appliance_with
from tests.support.messages import make_message, message_id_of
from tests.support.smtp_sink import SmtpSink
from tests.support.webhook_receiver import WebhookReceiver

RELAY_PASSWORD = "relay-secret-of-the-primary"


async def _folder_total(feed: RelayAppliance, mailbox: str, folder: str) -> int:
    folders = await feed.running.store.webmail.folders(mailbox)
    return next((item.total for item in folders if item.name == folder), 0)


async def _wait_state(feed: RelayAppliance, queue_id: str, state: MessageState, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = await feed.running.store.messages.get(queue_id)
        if entry is not None and entry.state is state:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{queue_id} did not become {state.value}")


async def test_relays_the_primarys_mail_after_a_durable_commit(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    message = make_message(sender="alice@example.com", recipient="Partner.Person@Partner.Test", subject="Quarterly")
    reply = await asyncio.to_thread(feed.relay, "alice@example.com", ["Partner.Person@Partner.Test"], message)
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    queue_id = reply.rsplit(" ", 1)[1]
    entry = await feed.running.store.messages.get(queue_id)
    assert entry is not None and entry.state in (MessageState.OUTGOING, MessageState.MIRRORED)
    delivered = await asyncio.to_thread(feed.sink.messages, 1)
    assert len(delivered) == 1
    got = delivered[0]
    assert got["Message-ID"] == message_id_of(message)
    assert got["Received"] is not None and "mx.example.com" in str(got["Received"])
    # The filters' findings stay inside: no X-Continuity fields leave with relayed mail.
    assert not [name for name in got if name.lower().startswith("x-continuity")]
    await _wait_state(feed, queue_id, MessageState.MIRRORED)
    # The sender's standby mailbox keeps a copy in Sent (the window), the queue for replay does not count it.
    assert await _folder_total(feed, "alice@example.com", "Sent") == 1
    assert await feed.running.store.messages.count() == 0
    async with httpx.AsyncClient() as client:
        health = (await client.get(f"{feed.web}/healthz")).json()
    assert health == {"status": "ok"}


async def test_a_client_outside_the_relay_networks_cannot_relay(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    # 127.0.0.2 is loopback too, but not in relay_networks (127.0.0.1/32).
    reply = await asyncio.to_thread(
        feed.relay, "alice@example.com", ["victim@outside.test"], make_message(), "127.0.0.2"
    )
    assert reply.startswith("554 5.7.1"), reply

    def rcpt_without_mail_permission() -> tuple[str, str]:
        with smtplib.SMTP("127.0.0.1", feed.relay_port, source_address=("127.0.0.2", 0)) as client:
            client.ehlo("spammer.test")
            mail = client.docmd("MAIL FROM:<>")
            rcpt = client.docmd("RCPT TO:<victim@outside.test>")
            return f"{mail[0]} {mail[1].decode()}", f"{rcpt[0]} {rcpt[1].decode()}"

    mail, rcpt = await asyncio.to_thread(rcpt_without_mail_permission)
    assert mail.startswith("554 5.7.1") and rcpt[:1] == "5", (mail, rcpt)
    assert await feed.running.store.messages.list() == []
    assert feed.sink.messages(0, timeout=0.2) == []


async def test_the_mx_listener_stays_inbound_only(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    port = feed.running.smtp_address.port

    def try_relay_through_mx() -> str:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo("exchange.example.com")
            client.mail("alice@example.com")
            code, text = client.rcpt("victim@outside.test")
            return f"{code} {text.decode()}"

    # Even from an address allowed to relay on the relay listener.
    assert (await asyncio.to_thread(try_relay_through_mx)).startswith("554 5.7.1")


@pytest.mark.parametrize(
    "feed_appliance",
    [{"feeds": {"relay_networks": [], "relay_username": "exchange", "relay_password": RELAY_PASSWORD,
                "relay_auth_require_tls": False}}],
    indirect=True,
)  # fmt: skip
async def test_relay_with_smtp_auth(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance

    def session(password: str | None) -> tuple[str, str]:
        with smtplib.SMTP("127.0.0.1", feed.relay_port) as client:
            client.ehlo("exchange.example.com")
            assert client.has_extn("auth")
            if password is not None:
                try:
                    client.login("exchange", password)
                except smtplib.SMTPAuthenticationError as exc:
                    auth = f"{exc.smtp_code}"
                else:
                    auth = "235"
            else:
                auth = "-"
            code, text = client.mail("alice@example.com")
            return auth, f"{code} {text.decode()}"

    assert await asyncio.to_thread(session, None) == ("-", "530 5.7.0 Authentication required to relay")
    auth, mail = await asyncio.to_thread(session, "wrong")
    assert auth == "535" and mail.startswith("530"), (auth, mail)
    auth, mail = await asyncio.to_thread(session, RELAY_PASSWORD)
    assert auth == "235" and mail.startswith("250"), (auth, mail)

    def authenticated_send() -> None:
        with smtplib.SMTP("127.0.0.1", feed.relay_port) as client:
            client.login("exchange", RELAY_PASSWORD)
            client.sendmail("alice@example.com", ["someone@outside.test"], make_message(sender="alice@example.com"))

    await asyncio.to_thread(authenticated_send)
    assert len(await asyncio.to_thread(feed.sink.messages, 1)) == 1


@pytest.mark.parametrize(
    "feed_appliance",
    [{"feeds": {"relay_username": "exchange", "relay_password": RELAY_PASSWORD}}],
    indirect=True,
)
async def test_auth_is_not_offered_in_clear_text(feed_appliance: RelayAppliance) -> None:
    def features() -> bool:
        with smtplib.SMTP("127.0.0.1", feed_appliance.relay_port) as client:
            client.ehlo("exchange.example.com")
            return client.has_extn("auth")

    assert not await asyncio.to_thread(features)


async def test_permanent_failures_bounce_to_the_sender_and_count(
    tmp_path: Path, sink: SmtpSink, webhook: WebhookReceiver
) -> None:
    refusing = SmtpSink(tmp_path / "refusing", extra_args=("-f", "RCPT"))
    refusing.start()
    try:
        # The next hop refuses every recipient for good; [outbound] (the accepting sink) reaches the sender.
        extra = {"feeds": {"relay_next_hop": f"127.0.0.1:{refusing.port}"}}
        async with feed_appliance_with(tmp_path, sink, webhook, extra) as feed:
            message = make_message(sender="alice@example.com", recipient="nobody@outside.test", subject="to nowhere")
            reply = await asyncio.to_thread(feed.relay, "alice@example.com", ["nobody@outside.test"], message)
            queue_id = reply.rsplit(" ", 1)[1]
            await _wait_state(feed, queue_id, MessageState.MIRRORED)
            reports = await asyncio.to_thread(sink.messages, 1)
            assert len(reports) == 1
            report = reports[0]
            assert report["To"] == "alice@example.com"
            assert report.get_content_type() == "multipart/report"
            assert "nobody@outside.test" in report.as_string()
            assert feed.running.feeds is not None and feed.running.feeds.signals is not None
            await feed.running.feeds.signals.flush()
            assert len(await feed.running.store.signals.recent_bounces("alice@example.com", 0)) == 1
    finally:
        refusing.stop()


async def test_the_window_prunes_mirrored_copies_only(feed_appliance: RelayAppliance) -> None:
    feed = feed_appliance
    store = feed.running.store
    reply = await asyncio.to_thread(
        feed.relay, "alice@example.com", ["partner@outside.test"], make_message(sender="alice@example.com")
    )
    relayed = reply.rsplit(" ", 1)[1]
    await _wait_state(feed, relayed, MessageState.MIRRORED)

    def inbound() -> None:
        with smtplib.SMTP("127.0.0.1", feed.running.smtp_address.port) as client:
            client.sendmail("partner@outside.test", ["bob@example.com"], make_message(recipient="bob@example.com"))

    await asyncio.to_thread(inbound)
    entries = await store.messages.list()
    queued = [entry for entry in entries if entry.state is MessageState.QUEUED]
    assert len(queued) == 1
    mirrored = await store.messages.get(relayed)
    assert mirrored is not None
    body = store.blobs.path_for(mirrored.sha256)  # type: ignore[attr-defined]
    assert body.exists()
    window = MirrorWindow(store, window_days=1.0, history_days=28, interval=3600, clock=lambda: time.time() + 2 * 86400)
    assert await window.prune_once() == 1
    assert await store.messages.get(relayed) is None
    assert not body.exists()
    assert await _folder_total(feed, "alice@example.com", "Sent") == 0
    # Mail waiting for replay is never pruned.
    assert await store.messages.get(queued[0].queue_id) is not None


@pytest.mark.parametrize(
    "feed_appliance",
    [{"feeds": {"relay_networks": [], "relay_username": "exchange", "relay_password": RELAY_PASSWORD,
                "relay_auth_require_tls": False, "relay_auth_max_failures": 3}}],
    indirect=True,
)  # fmt: skip
async def test_auth_failures_are_limited_across_sessions(feed_appliance: RelayAppliance) -> None:
    def attempt(password: str) -> str:
        # A new session each time: a guesser does not stay in one session.
        with smtplib.SMTP("127.0.0.1", feed_appliance.relay_port) as client:
            client.ehlo("guesser.example.net")
            # One AUTH PLAIN per session (smtplib's login() would try each mechanism in turn).
            code, text = client.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0exchange\0{password}".encode()).decode())
            return f"{code} {text.decode()}"

    for guess in ("guess-one-guess-one", "guess-two-guess-two", "guess-three-guess-3"):
        assert (await asyncio.to_thread(attempt, guess)).startswith("535")
    # The address has used up its failures: even the right password is not checked now.
    locked = await asyncio.to_thread(attempt, RELAY_PASSWORD)
    assert locked.startswith("454 4.7.0 Too many failed authentication attempts"), locked
