"""Notifications on state changes: admin mail through the outbound path (a real SMTP server) and a webhook."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from continuity.config.show import render_effective
from continuity.core.failover import FailoverEvent
from continuity.services.failover_wiring import build_failover
from continuity.store.protocol import Store
from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import make_settings
from tests.support.ports import free_port
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.slow


class Webhook:
    """A local HTTP endpoint that records every JSON POST."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, object]]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                calls.append((self.headers.get("Authorization", ""), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink(tmp_path / "sink")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_sqlite_store(tmp_path / "continuity.db", tmp_path / "blobs")
    try:
        yield opened
    finally:
        await opened.close()


async def test_every_state_change_is_mailed_and_posted(
    tmp_path: Path, store: Store, webhook: Webhook, sink: SmtpSink
) -> None:
    settings = make_settings(
        tmp_path,
        notify={
            "admin_emails": ["ops@example.org", "oncall@example.org"],
            "webhook_url": webhook.url,
            "webhook_secret": "hook-secret",
        },
        outbound={"smart_host": f"127.0.0.1:{sink.port}", "tls": "none"},
    )
    services = build_failover(settings, store, background=False)
    await services.controller.load()
    await services.controller.fire(FailoverEvent.OPERATOR_PAUSE, actor="cli:ops", reason="patch night")
    await services.controller.fire(FailoverEvent.OPERATOR_RESUME, actor="cli:ops", reason="patched")
    await services.notifier.drain()

    assert [call[1]["state"] for call in webhook.calls] == ["PAUSED", "NORMAL"]
    authorization, first = webhook.calls[0]
    assert authorization == "Bearer hook-secret"
    assert first["previous"] == "NORMAL" and first["actor"] == "cli:ops" and first["reason"] == "patch night"
    messages = sink.messages(expected=2)
    subjects = sorted(str(message["Subject"]) for message in messages)
    assert subjects == ["[continuity mx.example.com] NORMAL -> PAUSED", "[continuity mx.example.com] PAUSED -> NORMAL"]
    assert messages[0]["To"] == "ops@example.org, oncall@example.org"
    assert messages[0]["From"] == "continuity@mx.example.com"
    body = messages[0].get_payload(decode=True)
    assert isinstance(body, bytes) and b"Who:     cli:ops" in body


async def test_the_webhook_url_is_a_secret_never_logged(
    tmp_path: Path, store: Store, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_path = "/services/T0AAA/B0BBB/s3cretW3bhookCredential"
    working = webhook.url.replace("/hook", secret_path)
    closed = f"http://127.0.0.1:{free_port()}{secret_path}"
    for url in (working, closed):
        settings = make_settings(tmp_path, notify={"webhook_url": url})
        assert "s3cret" not in render_effective(settings) and "s3cret" not in repr(settings)
        services = build_failover(settings, store, background=False)
        await services.controller.load()
        await services.controller.fire(FailoverEvent.OPERATOR_PAUSE, actor="cli:ops", reason="patch night")
        await services.controller.fire(FailoverEvent.OPERATOR_RESUME, actor="cli:ops", reason="patched")
        await services.notifier.drain()
    assert [call[1]["state"] for call in webhook.calls] == ["PAUSED", "NORMAL"]  # the working one was called
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "webhook on 127.0.0.1 failed" in logged  # the closed one was reported, by host
    assert "s3cret" not in logged and secret_path not in logged
