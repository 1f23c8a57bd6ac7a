"""STARTTLS with a configured certificate, over a real socket."""

from __future__ import annotations

import asyncio
import smtplib
import ssl

import trustme

from continuity.services.app import Running
from tests.support.messages import make_message


def _send_over_tls(port: int, ca: trustme.CA, message: bytes) -> tuple[str, str]:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        assert client.has_extn("starttls")
        client.starttls(context=context)
        client.ehlo("client.test")
        assert not client.has_extn("starttls"), "STARTTLS must not be offered twice"
        assert not client.has_extn("auth"), "an MX offers no AUTH"
        version = client.sock.version()  # type: ignore[union-attr]
        client.sendmail("s@outside.test", ["alice@example.com"], message)
        return version or "", client.sock.cipher()[0]  # type: ignore[union-attr]


async def test_starttls_delivers_and_records_esmtps(tls_appliance: tuple[Running, trustme.CA]) -> None:
    running, ca = tls_appliance
    message = make_message()
    version, _cipher = await asyncio.to_thread(_send_over_tls, running.smtp_address.port, ca, message)
    assert version in {"TLSv1.2", "TLSv1.3"}
    [entry] = await running.store.messages.list()
    trace = await running.store.messages.trace_header(entry.queue_id)
    assert trace is not None and b"with ESMTPS id" in trace
    assert await running.store.blobs.read(entry.sha256) == message


async def test_commands_pipelined_behind_starttls_are_discarded(tls_appliance: tuple[Running, trustme.CA]) -> None:
    # STARTTLS command injection (CVE-2011-0411 class): plaintext sent after STARTTLS
    # in the same packet must not be executed inside the TLS session.
    running, ca = tls_appliance

    def attempt() -> str:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with smtplib.SMTP("127.0.0.1", running.smtp_address.port, timeout=10) as client:
            client.ehlo("c.test")
            client.send(b"STARTTLS\r\nRSET\r\n")
            code, _ = client.getreply()
            assert code == 220
            client.sock = context.wrap_socket(client.sock, server_hostname="mx.example.com")  # type: ignore[arg-type]
            client.file = None
            code, reply = client.ehlo("c.test")
            return f"{code} {reply.decode()}"

    reply = await asyncio.to_thread(attempt)
    assert reply.startswith("250"), f"the injected RSET answered first: {reply}"
