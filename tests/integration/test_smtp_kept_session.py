"""The replay's kept SMTP session (pipelined transactions) against real servers: smtp-sink, Postfix, the appliance."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from continuity.adapters.smtp_client import SmtpDelivery
from continuity.adapters.smtp_kept_session import SmtpSession
from continuity.config.outbound import OutboundSettings
from continuity.core.delivery import DeliveryStatus
from continuity.services.app import Running
from tests.support.messages import make_message
from tests.support.primary import PrimaryStandIn
from tests.support.smtp_sink import SmtpSink


def _session(port: int, **settings: Any) -> SmtpSession:
    delivery = SmtpDelivery(OutboundSettings(**settings), helo_name="standby.example.com")
    return delivery.session("127.0.0.1", port)


@pytest.fixture
def sink(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    server = SmtpSink(tmp_path, extra_args=tuple(getattr(request, "param", ())))
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "sink",
    [(), ("-p",), ("-e",)],
    ids=["pipelining", "no-pipelining", "helo-only"],
    indirect=True,
)
async def test_many_messages_over_one_connection(sink: SmtpSink) -> None:
    session = _session(sink.port)
    try:
        for number in range(5):
            results = await session.send(
                "replay@example.com", ["alice@example.com", "bob@example.com"], make_message(subject=f"m{number}")
            )
            assert [(r.status, r.code) for r in results] == [(DeliveryStatus.DELIVERED, 250)] * 2
    finally:
        await session.close()
    received = sink.messages(expected=5)
    assert sorted(str(message["Subject"]) for message in received) == [f"m{number}" for number in range(5)]
    for message in received:
        assert message.get_all("X-Rcpt-Args") == ["<alice@example.com>", "<bob@example.com>"]
        assert message["X-Helo-Args"] == "standby.example.com"


async def test_dots_and_line_ends_reach_the_server_intact(sink: SmtpSink) -> None:
    body = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n"
    session = _session(sink.port)
    try:
        [result] = await session.send("replay@example.com", ["alice@example.com"], body)
    finally:
        await session.close()
    assert result.status is DeliveryStatus.DELIVERED
    [received] = sink.messages()
    payload = received.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.rstrip(b"\r\n").splitlines() == [b".leading dot", b"..two", b".", b"end"]


async def test_per_recipient_outcomes_and_reuse_after_a_refusal(appliance: Running) -> None:
    session = _session(appliance.smtp_address.port)
    try:
        mixed = await session.send(
            "s@outside.test", ["alice@example.com", "nobody@example.com", "x@gmail.test"], make_message()
        )
        refused = await session.send("s@outside.test", ["nobody@example.com"], make_message())
        after = await session.send("s@outside.test", ["bob@example.com"], make_message())
    finally:
        await session.close()
    assert [(r.recipient, r.status, r.code) for r in mixed] == [
        ("alice@example.com", DeliveryStatus.DELIVERED, 250),
        ("nobody@example.com", DeliveryStatus.FAILED, 550),
        ("x@gmail.test", DeliveryStatus.FAILED, 554),
    ]
    assert [(r.status, r.code) for r in refused] == [(DeliveryStatus.FAILED, 550)]
    assert [(r.status, r.code) for r in after] == [(DeliveryStatus.DELIVERED, 250)]
    assert await appliance.store.messages.count() == 2


async def test_addresses_that_could_inject_commands_are_never_sent(sink: SmtpSink) -> None:
    session = _session(sink.port)
    try:
        results = await session.send(
            "replay@example.com", ["x@y.test>\r\nRCPT TO:<evil@z.test", "alice@example.com"], make_message()
        )
        sender = await session.send("a@b.test>\r\nRSET", ["alice@example.com"], make_message())
    finally:
        await session.close()
    assert [(r.status, r.code) for r in results] == [(DeliveryStatus.FAILED, 553), (DeliveryStatus.DELIVERED, 250)]
    assert [(r.status, r.code) for r in sender] == [(DeliveryStatus.FAILED, 553)]
    [received] = sink.messages()
    assert received.get_all("X-Rcpt-Args") == ["<alice@example.com>"]


@pytest.mark.parametrize("sink", [("-r", "RCPT")], indirect=True)
async def test_a_soft_refusal_of_every_recipient_defers_with_the_code(sink: SmtpSink) -> None:
    session = _session(sink.port)
    try:
        first = await session.send("replay@example.com", ["alice@example.com"], make_message())
        second = await session.send("replay@example.com", ["bob@example.com"], make_message())
    finally:
        await session.close()
    for results in (first, second):
        [result] = results
        assert result.status is DeliveryStatus.DEFERRED and result.code // 100 == 4


@pytest.mark.parametrize("sink", [("-w", "3")], indirect=True)
async def test_a_server_that_stalls_defers_and_the_next_message_reconnects(sink: SmtpSink) -> None:
    session = _session(sink.port, timeout=1.0)
    try:
        [stalled] = await session.send("replay@example.com", ["alice@example.com"], make_message())
    finally:
        await session.close()
    assert stalled.status is DeliveryStatus.DEFERRED and stalled.code == 0
    assert "no reply to MAIL within 1s" in stalled.text


@pytest.mark.parametrize("sink", [("-q", "DATA")], indirect=True)
async def test_a_dropped_connection_defers_and_is_reopened(sink: SmtpSink) -> None:
    session = _session(sink.port)
    try:
        first = await session.send("replay@example.com", ["alice@example.com"], make_message())
        second = await session.send("replay@example.com", ["alice@example.com"], make_message())
    finally:
        await session.close()
    for [result] in (first, second):
        assert result.status is DeliveryStatus.DEFERRED and result.code == 0
        assert "closed the connection" in result.text or "connection lost" in result.text


async def test_nothing_listening_defers() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    session = _session(port, timeout=2.0)
    [result] = await session.send("replay@example.com", ["alice@example.com"], make_message())
    assert result.status is DeliveryStatus.DEFERRED and f"cannot connect to 127.0.0.1:{port}" in result.text


async def test_a_server_that_is_not_smtp_is_refused_clearly() -> None:
    async def speak_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(speak_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        session = _session(port, timeout=2.0)
        [result] = await session.send("replay@example.com", ["alice@example.com"], make_message())
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is DeliveryStatus.DEFERRED
    assert "not an SMTP reply" in result.text


@pytest.fixture
def primary() -> Iterator[PrimaryStandIn]:
    stand_in = PrimaryStandIn(["example.com"], {"alice@example.com": "secret"})
    stand_in.start()
    yield stand_in
    stand_in.close()


async def test_a_primary_in_maintenance_is_answered_with_its_greeting(primary: PrimaryStandIn) -> None:
    await asyncio.to_thread(primary.maintenance, True)
    session = _session(primary.smtp_port, tls="none")
    try:
        [result] = await session.send("replay@example.com", ["alice@example.com"], make_message())
    finally:
        await session.close()
    assert (result.status, result.code) == (DeliveryStatus.DEFERRED, 421)
    assert "Service not available" in result.text


async def test_starttls_into_postfix(primary: PrimaryStandIn) -> None:
    untrusted = _session(primary.smtp_port, tls="required")
    trusted = _session(primary.smtp_port, tls="required", ca_file=str(primary.ca_file))
    try:
        [refused] = await untrusted.send("replay@example.com", ["alice@example.com"], make_message())
        delivered = [await trusted.send("replay@example.com", ["alice@example.com"], make_message()) for _ in range(3)]
    finally:
        await untrusted.close()
        await trusted.close()
    assert refused.status is DeliveryStatus.DEFERRED and "certificate" in refused.text.lower()
    assert [[(r.status, r.code) for r in results] for results in delivered] == [[(DeliveryStatus.DELIVERED, 250)]] * 3


async def test_opportunistic_tls_encrypts_without_checking_the_certificate(
    tls_appliance: tuple[Running, trustme.CA],
) -> None:
    running, _ = tls_appliance
    session = _session(running.smtp_address.port)  # opportunistic is the default
    try:
        [result] = await session.send("s@outside.test", ["alice@example.com"], make_message())
    finally:
        await session.close()
    assert result.status is DeliveryStatus.DELIVERED
    [entry] = await running.store.messages.list()
    trace = await running.store.messages.trace_header(entry.queue_id)
    assert trace is not None and b"with ESMTPS id" in trace
