"""Fixtures of the feeds and signals tests: an appliance with a relay listener, an SMTP sink, a webhook receiver.

The sink (Postfix's smtp-sink) stands for the Internet behind the relay's next hop and for
the admins' and users' mail servers; the webhook receiver is a real HTTP server on loopback.
"""

from __future__ import annotations

import smtplib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from continuity.core.mailbox_rows import build_mailbox
from continuity.services.app import Running, start, stop
from tests.conftest import provision_standard_mailboxes
from tests.support.appliance import TEST_DOMAINS, make_settings
from tests.support.smtp_sink import SmtpSink
from tests.support.webhook_receiver import WebhookReceiver

ADMIN = "admin@example.org"
ALICE_HOME = "alice.home@home.test"
WEBHOOK_TOKEN = "w" * 40
ADMIN_TOKEN = "a" * 40


@dataclass
class RelayAppliance:
    """A running appliance with its relay listener, and the servers around it."""

    running: Running
    relay_port: int
    sink: SmtpSink
    webhook: WebhookReceiver
    overrides: dict[str, Any]

    @property
    def web(self) -> str:
        """Base URL of the web listener."""
        return f"http://{self.running.web_address.host}:{self.running.web_address.port}"

    def relay(self, sender: str, recipients: list[str], message: bytes, source: str = "127.0.0.1") -> str:
        """Send one message through the relay listener; returns the final reply line."""
        with smtplib.SMTP("127.0.0.1", self.relay_port, source_address=(source, 0)) as client:
            client.ehlo("exchange.example.com")
            code, text = client.mail(sender)
            if code != 250:
                return f"{code} {text.decode()}"
            for recipient in recipients:
                code, text = client.rcpt(recipient)
                if code != 250:
                    return f"{code} {text.decode()}"
            code, text = client.data(message)
            return f"{code} {text.decode()}"


def feed_overrides(sink: SmtpSink, webhook: WebhookReceiver, relay_port: int) -> dict[str, Any]:
    """Settings for a relay listener in front of the sink, notifications to the sink and the receiver."""
    return {
        "feeds": {
            "relay_listen": f"127.0.0.1:{relay_port}",
            "relay_networks": ["127.0.0.1/32"],
            "relay_next_hop": f"127.0.0.1:{sink.port}",
            "journal_address": "journal@continuity.example.com",
        },
        "outbound": {"smart_host": f"127.0.0.1:{sink.port}", "tls": "none"},
        "notify": {"admin_emails": [ADMIN], "webhook_url": webhook.url, "webhook_secret": "hook-secret"},
        "signals": {"webhook_token": WEBHOOK_TOKEN},
        "admin": {"token": ADMIN_TOKEN},
    }


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """base with extra's tables merged in."""
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = (
            merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A receiving SMTP server (smtp-sink) that accepts everything."""
    server = SmtpSink(tmp_path / "sink")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A webhook receiver on loopback."""
    receiver = WebhookReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@asynccontextmanager
async def feed_appliance_with(
    tmp_path: Path, sink: SmtpSink, webhook: WebhookReceiver, extra: dict[str, Any]
) -> AsyncIterator[RelayAppliance]:
    """Start an appliance with a relay listener and the standard mailboxes (alice with an alternate address)."""
    overrides = merge(feed_overrides(sink, webhook, 0), extra)
    running = await start(make_settings(tmp_path / "data", **overrides))
    try:
        # Port 0: the kernel picks a free port at bind time, so no other test can take it in between.
        assert running.feeds is not None and running.feeds.relay_address is not None
        relay_port = running.feeds.relay_address.port
        await provision_standard_mailboxes(running)
        await running.store.mailboxes.upsert(
            build_mailbox(
                "alice@example.com",
                "Alice Example",
                domains=TEST_DOMAINS,
                aliases=["a.example@example.com"],
                alternate_email=ALICE_HOME,
            )
        )
        await running.directory.refresh()
        yield RelayAppliance(running, relay_port, sink, webhook, overrides)
    finally:
        await stop(running, grace=5)


@pytest.fixture
async def feed_appliance(
    tmp_path: Path, sink: SmtpSink, webhook: WebhookReceiver, request: pytest.FixtureRequest
) -> AsyncIterator[RelayAppliance]:
    """An appliance with a relay listener; parametrize indirectly with a dict of setting overrides."""
    async with feed_appliance_with(tmp_path, sink, webhook, getattr(request, "param", {}) or {}) as feed:
        yield feed
