"""SMTP conversations with the in-process appliance over real loopback sockets."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from continuity.services.app import Running
from tests.support.messages import make_message, message_id_of, nested_multipart
from tests.support.smtp_raw import RawSmtp


def _port(appliance: Running) -> int:
    return appliance.smtp_address.port


def _sendmail(port: int, sender: str, recipients: list[str], message: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.sendmail(sender, recipients, message)


async def _raw(port: int) -> RawSmtp:
    return await asyncio.to_thread(RawSmtp, "127.0.0.1", port)


async def _talk(client: RawSmtp, *lines: str) -> list[str]:
    return [await asyncio.to_thread(client.command, line) for line in lines]


async def test_accepted_message_is_stored_byte_identical(appliance: Running) -> None:
    message = make_message(recipient="alice@example.com")
    refused = await asyncio.to_thread(
        _sendmail, _port(appliance), "sender@outside.test", ["alice@example.com"], message
    )
    assert refused == {}
    [entry] = await appliance.store.messages.list()
    assert entry.message_id == message_id_of(message)
    assert entry.recipients == ("alice@example.com",)
    assert entry.sender == "sender@outside.test"
    assert entry.size == len(message)
    assert entry.state.value == "queued"
    assert await appliance.store.blobs.read(entry.sha256) == message
    trace = await appliance.store.messages.trace_header(entry.queue_id)
    assert trace is not None
    # The filter pipeline's fields come first, then the Received field ending the block.
    assert trace.startswith(b"X-Continuity-Verdict: accept;") and b"\r\nReceived: from " in trace
    assert f"id {entry.queue_id}".encode() in trace
    assert b"for <alice@example.com>" in trace


async def test_reply_names_the_queue_id(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    replies = await _talk(client, "EHLO client.test", "MAIL FROM:<s@outside.test>", "RCPT TO:<bob@example.com>", "DATA")
    assert replies[-1].startswith("354")
    reply = await _talk(client, make_message(recipient="bob@example.com").decode() + ".")
    [entry] = await appliance.store.messages.list()
    assert reply == [f"250 2.0.0 Ok: queued as {entry.queue_id}"]
    client.close()


async def test_banner_and_ehlo_reveal_no_software(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    assert client.banner == "220 mx.example.com ESMTP"
    [ehlo] = await _talk(client, "EHLO client.test")
    assert ehlo.splitlines() == ["250-mx.example.com", "250-SIZE 52428800", "250-8BITMIME", "250 PIPELINING"]
    [help_reply] = await _talk(client, "HELP")
    assert "python" not in help_reply.lower() and "aiosmtpd" not in help_reply.lower()
    client.close()


async def test_unknown_user_is_refused_with_550_5_1_1(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    replies = await _talk(client, "EHLO c.test", "MAIL FROM:<s@outside.test>", "RCPT TO:<nobody@example.com>")
    assert replies[-1] == "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
    client.close()


@pytest.mark.parametrize(
    "recipient",
    [
        "victim@gmail.test",
        "alice%gmail.test@example.com",
        "@example.com:victim@gmail.test",
        "victim@example.com.evil.test",
    ],
)
async def test_relay_attempts_are_denied(appliance: Running, recipient: str) -> None:
    client = await _raw(_port(appliance))
    replies = await _talk(client, "EHLO c.test", "MAIL FROM:<s@outside.test>", f"RCPT TO:<{recipient}>", "DATA")
    assert replies[2][:3] in {"554", "550", "501"}, replies[2]
    assert replies[3].startswith("503"), "DATA without an accepted recipient must fail"
    assert await appliance.store.messages.count() == 0
    client.close()


async def test_relay_denied_text(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    replies = await _talk(client, "EHLO c.test", "MAIL FROM:<s@outside.test>", "RCPT TO:<victim@gmail.test>")
    assert replies[-1] == "554 5.7.1 <victim@gmail.test>: Relay access denied"
    client.close()


async def test_alias_and_case_resolve_to_the_mailbox(appliance: Running) -> None:
    message = make_message(recipient="A.Example@EXAMPLE.com")
    await asyncio.to_thread(_sendmail, _port(appliance), "s@outside.test", ["A.Example@EXAMPLE.com"], message)
    [entry] = await appliance.store.messages.list()
    assert entry.recipients == ("a.example@example.com",)


async def test_disabled_mailbox_is_refused(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    replies = await _talk(client, "EHLO c.test", "MAIL FROM:<s@outside.test>", "RCPT TO:<carol@example.net>")
    assert replies[-1] == "550 5.2.1 <carol@example.net>: Mailbox disabled, not accepting messages"
    client.close()


async def test_null_sender_is_accepted(appliance: Running) -> None:
    await asyncio.to_thread(
        _sendmail, _port(appliance), "", ["bob@example.com"], make_message(recipient="bob@example.com")
    )
    [entry] = await appliance.store.messages.list()
    assert entry.sender == ""


@pytest.mark.parametrize("appliance", [{"smtp": {"max_message_size": 4096}}], indirect=True)
async def test_oversize_is_refused_with_552(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    replies = await _talk(client, "EHLO c.test", "MAIL FROM:<s@outside.test> SIZE=100000")
    assert "250-SIZE 4096" in replies[0]
    assert replies[1].startswith("552")
    replies = await _talk(client, "MAIL FROM:<s@outside.test>", "RCPT TO:<bob@example.com>", "DATA")
    assert replies[-1].startswith("354")
    big = make_message(recipient="bob@example.com", size=20_000).decode()
    [reply] = await _talk(client, big + ".")
    assert reply == "552 5.3.4 Message size exceeds fixed maximum message size of 4096 bytes"
    # The session stays in step: a small message right after is accepted.
    replies = await _talk(client, "MAIL FROM:<s@outside.test>", "RCPT TO:<bob@example.com>", "DATA")
    [reply] = await _talk(client, make_message(recipient="bob@example.com", body_lines=3).decode() + ".")
    assert reply.startswith("250 2.0.0")
    assert await appliance.store.messages.count() == 1
    client.close()


SMUGGLED = (
    b"MAIL FROM:<spoof@bank.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
    b"From: ceo@bank.test\r\nSubject: smuggled\r\n\r\npay now\r\n"
)


@pytest.mark.parametrize(
    "vector",
    [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\x00"],
    ids=["LF.CRLF", "CRLF.LF", "LF.LF", "CR.CR", "CRLF.CR", "CR.CRLF", "NUL"],
)
async def test_smuggling_vectors_are_refused_and_nothing_is_smuggled(appliance: Running, vector: bytes) -> None:
    client = await _raw(_port(appliance))
    replies = await _talk(client, "EHLO c.test", "MAIL FROM:<s@outside.test>", "RCPT TO:<bob@example.com>", "DATA")
    assert replies[-1].startswith("354")
    payload = b"From: s@outside.test\r\nSubject: innocent\r\n\r\nhello" + vector + SMUGGLED + b"\r\n.\r\n"
    await asyncio.to_thread(client.send, payload)
    reply = await asyncio.to_thread(client.reply)
    assert reply.startswith("550 5.6.0 Message refused"), reply
    # Exactly one reply: the smuggled commands were part of the refused message.
    [noop] = await _talk(client, "NOOP")
    assert noop.startswith("250")
    assert await appliance.store.messages.count() == 0
    client.close()


async def test_pipelined_transaction(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    [ehlo] = await _talk(client, "EHLO c.test")
    assert "PIPELINING" in ehlo
    await asyncio.to_thread(
        client.send,
        b"MAIL FROM:<s@outside.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\n"
        b"RCPT TO:<bob@example.com>\r\nDATA\r\n",
    )
    replies = [await asyncio.to_thread(client.reply) for _ in range(5)]
    assert [reply[:3] for reply in replies] == ["250", "250", "550", "250", "354"]
    message = make_message(recipient="alice@example.com")
    await asyncio.to_thread(client.send, message + b".\r\nQUIT\r\n")
    assert (await asyncio.to_thread(client.reply)).startswith("250 2.0.0")
    assert (await asyncio.to_thread(client.reply)).startswith("221")
    [entry] = await appliance.store.messages.list()
    assert entry.recipients == ("alice@example.com", "bob@example.com")
    assert await appliance.store.blobs.read(entry.sha256) == message


async def test_dot_stuffing_is_undone(appliance: Running) -> None:
    body = b"Subject: dots\r\n\r\n.leading\r\n..double\r\nend.\r\n"
    await asyncio.to_thread(_sendmail, _port(appliance), "s@outside.test", ["bob@example.com"], body)
    [entry] = await appliance.store.messages.list()
    assert await appliance.store.blobs.read(entry.sha256) == body


@pytest.mark.parametrize("appliance", [{"smtp": {"max_recipients": 3}}], indirect=True)
async def test_recipient_limit(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    rcpts = [f"RCPT TO:<{who}@example.com>" for who in ("alice", "bob", "a.example", "alice")]
    replies = await _talk(client, "EHLO c.test", "MAIL FROM:<s@outside.test>", *rcpts)
    assert [reply[:3] for reply in replies[2:]] == ["250", "250", "250", "452"]
    assert replies[-1] == "452 4.5.3 Too many recipients for one message"
    client.close()


@pytest.mark.parametrize("appliance", [{"smtp": {"max_messages_per_ip_per_minute": 2}}], indirect=True)
async def test_message_rate_limit_per_ip(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    replies = await _talk(
        client,
        "EHLO c.test",
        "MAIL FROM:<s@outside.test>",
        "RSET",
        "MAIL FROM:<s@outside.test>",
        "RSET",
        "MAIL FROM:<s@outside.test>",
    )
    assert replies[-1] == "451 4.7.1 Too many messages from your address; try again later"
    client.close()


@pytest.mark.parametrize("appliance", [{"smtp": {"max_sessions_per_ip": 2}}], indirect=True)
async def test_concurrent_session_limit_per_ip(appliance: Running) -> None:
    first, second = await _raw(_port(appliance)), await _raw(_port(appliance))
    third = await _raw(_port(appliance))
    assert first.banner.startswith("220") and second.banner.startswith("220")
    assert third.banner == "421 4.7.0 Too many connections from your address; try again later"
    assert await asyncio.to_thread(third.closed_by_server)
    first.close()
    await asyncio.sleep(0.2)
    fourth = await _raw(_port(appliance))
    assert fourth.banner.startswith("220")
    for client in (second, third, fourth):
        client.close()


@pytest.mark.parametrize(
    "appliance", [{"smtp": {"limit_exempt_networks": ["127.0.0.0/8"], "max_sessions_per_ip": 1}}], indirect=True
)
async def test_exempt_networks_skip_the_limits(appliance: Running) -> None:
    clients = [await _raw(_port(appliance)) for _ in range(3)]
    assert all(client.banner.startswith("220") for client in clients)
    for client in clients:
        client.close()


@pytest.mark.parametrize("appliance", [{"smtp": {"max_errors": 3}}], indirect=True)
async def test_error_limit_closes_the_session(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    replies = await _talk(
        client, "EHLO c.test", "MAIL FROM:<s@outside.test>", "RCPT TO:<x@gmail.test>", "RCPT TO:<y@gmail.test>"
    )
    assert replies[-1].startswith("554")
    await asyncio.to_thread(client.send, b"RCPT TO:<z@gmail.test>\r\n")
    assert (await asyncio.to_thread(client.reply)).startswith("554")
    assert await asyncio.to_thread(client.reply) == "421 4.7.0 Too many errors in this session; closing connection"
    assert await asyncio.to_thread(client.closed_by_server)


@pytest.mark.parametrize("appliance", [{"smtp": {"max_header_size": 2048}}], indirect=True)
async def test_header_size_limit(appliance: Running) -> None:
    big_header = b"X-Padding: " + b"a" * 70 + b"\r\n"
    message = big_header * 40 + make_message(recipient="bob@example.com")
    with pytest.raises(smtplib.SMTPDataError) as error:
        await asyncio.to_thread(_sendmail, _port(appliance), "s@outside.test", ["bob@example.com"], message)
    assert error.value.smtp_code == 552
    assert b"header section exceeds 2048 bytes" in error.value.smtp_error


@pytest.mark.parametrize("appliance", [{"smtp": {"max_mime_depth": 4}}], indirect=True)
async def test_mime_nesting_limit(appliance: Running) -> None:
    await asyncio.to_thread(_sendmail, _port(appliance), "s@outside.test", ["bob@example.com"], nested_multipart(3))
    with pytest.raises(smtplib.SMTPDataError) as error:
        await asyncio.to_thread(_sendmail, _port(appliance), "s@outside.test", ["bob@example.com"], nested_multipart(6))
    assert error.value.smtp_code == 554
    assert await appliance.store.messages.count() == 1


async def test_command_line_length_limit(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    [reply] = await _talk(client, "EHLO " + "a" * 2000)
    assert reply.startswith("500")
    [reply] = await _talk(client, "NOOP")
    assert reply.startswith("250")
    client.close()


@pytest.mark.parametrize("appliance", [{"smtp": {"max_line_length": 2000}}], indirect=True)
async def test_data_line_length_limit(appliance: Running) -> None:
    client = await _raw(_port(appliance))
    await _talk(client, "EHLO c.test", "MAIL FROM:<s@outside.test>", "RCPT TO:<bob@example.com>", "DATA")
    [reply] = await _talk(client, "Subject: long\r\n\r\n" + "x" * 3000 + "\r\n.")
    assert reply == "500 5.5.2 Line too long: a line of the message exceeds 2000 bytes"
    assert await appliance.store.messages.count() == 0
    client.close()


async def test_concurrent_clients_all_get_durable_250(appliance: Running) -> None:
    messages = [make_message(recipient="alice@example.com", subject=f"n{i}") for i in range(40)]
    await asyncio.gather(
        *(asyncio.to_thread(_sendmail, _port(appliance), "s@outside.test", ["alice@example.com"], m) for m in messages)
    )
    entries = await appliance.store.messages.list()
    assert sorted(e.message_id for e in entries) == sorted(message_id_of(m) for m in messages)
    assert appliance.committer.committed_items == 40
