"""Sending from the webmail through the outbound queue to a real SMTP server (Postfix's smtp-sink).

Replies with attachments arrive DKIM-signed and a copy lands in Sent; permanent failures
file a non-delivery notice in the Inbox; temporary ones are retried; activation links
travel the same way.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from continuity.adapters.dkim_signer import DkimSigner
from continuity.adapters.smtp_client import SmtpDelivery
from continuity.config.dkim import DkimSettings
from continuity.config.outbound import OutboundSettings
from continuity.core.mailbox_rows import build_mailbox
from continuity.services.app import Running
from continuity.services.outbound import OutboundService
from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import TEST_DOMAINS
from tests.support.ports import free_port
from tests.support.smtp_sink import SmtpSink
from tests.support.webmail import WebmailClient, all_delivered, deliver, mail, webmail_appliance

ALICE = "alice@example.com"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "example.com.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture
async def wm(tmp_path: Path, sink: SmtpSink, dkim_key: tuple[Path, bytes]) -> AsyncIterator[Running]:
    async with webmail_appliance(
        tmp_path / "data",
        outbound={"smart_host": f"127.0.0.1:{sink.port}", "tls": "none"},
        dkim={"keys": [{"domain": "example.com", "selector": "standby", "private_key": str(dkim_key[0])}]},
        webmail={"public_url": "https://standby.example.com"},
    ) as running:
        yield running


async def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_reply_with_attachment_is_signed_delivered_and_filed_in_sent(
    wm: Running, client: WebmailClient, sink: SmtpSink, dkim_key: tuple[Path, bytes]
) -> None:
    await deliver(wm, mail("Contract draft", "Can you check this?", sender="Sam <sam@remote.test>"))
    await client.login()
    [original] = [m.id for m in (await wm.store.webmail.page(ALICE, "INBOX", 0, 10))[0]]
    form = await client.get("/mail/compose", params={"mode": "reply", "id": original})
    assert 'value="Re: Contract draft"' in form.text and "sam@remote.test" in form.text
    sent = await client.post(
        "/mail/compose",
        {
            "to": "Sam <sam@remote.test>",
            "cc": "",
            "bcc": "hidden@remote.test",
            "subject": "Re: Contract draft",
            "body": "Looks good, see my notes.",
            "in_reply_to": re.search(r'name="in_reply_to" value="([^"]*)"', form.text).group(1),  # type: ignore[union-attr]
            "reply_to_id": original,
            "action": "send",
        },
        files={"attachments": ("notes.txt", b"clause 4 needs work\n", "text/plain")},
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/mail?folder=Sent"
    await all_delivered(wm)
    [received] = await asyncio.to_thread(sink.messages)
    assert received["Subject"] == "Re: Contract draft" and received["In-Reply-To"]
    assert received.get_all("X-Rcpt-Args") == ["<sam@remote.test>", "<hidden@remote.test>"]
    assert "Bcc" not in received
    [attachment] = list(received.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_filename() == "notes.txt" and attachment.get_content() == "clause 4 needs work\n"
    raw = next(p for p in sink.dump_dir.iterdir() if p.is_file()).read_bytes()
    signed = raw[raw.index(b"DKIM-Signature:") :]
    assert dkim.verify(
        signed, dnsfunc=lambda name, timeout=5: dkim_key[1] if name == b"standby._domainkey.example.com." else None
    )
    sent_items, total = await wm.store.webmail.page(ALICE, "Sent", 0, 10)
    assert total == 1 and sent_items[0].subject == "Re: Contract draft" and sent_items[0].flags == "\\Seen"
    sent_copy = (await client.get(f"/mail/message/{sent_items[0].id}")).text
    assert "notes.txt" in sent_copy and '<dd id="bcc">hidden@remote.test</dd>' in sent_copy  # only in the own copy
    original_row = await wm.store.webmail.listed(ALICE, original)
    assert original_row is not None and "\\Answered" in original_row.flags

    async def delivered() -> bool:
        due = await wm.store.outbound.get(1)
        return due is not None and due.done

    await _wait_for(delivered)


async def test_invalid_recipients_are_refused_with_a_sentence(client: WebmailClient) -> None:
    await client.login()
    await client.get("/mail/compose")
    response = await client.post(
        "/mail/compose", {"to": "not an address", "subject": "x", "body": "y", "action": "send"}
    )
    assert response.status_code == 400 and "is not a valid address" in response.text
    empty = await client.post("/mail/compose", {"to": "", "subject": "x", "body": "y", "action": "send"})
    assert empty.status_code == 400 and "Add at least one recipient." in empty.text


async def test_permanent_failure_files_a_notice(tmp_path: Path) -> None:
    rejecting = SmtpSink(tmp_path / "rejecting", extra_args=("-f", "RCPT"))
    rejecting.start()
    try:
        async with webmail_appliance(
            tmp_path / "data", outbound={"smart_host": f"127.0.0.1:{rejecting.port}", "tls": "none"}
        ) as running:
            web = WebmailClient(running)
            try:
                await web.login()
                await web.get("/mail/compose")
                await web.post(
                    "/mail/compose", {"to": "gone@remote.test", "subject": "Hello?", "body": ".", "action": "send"}
                )

                async def notice() -> bool:
                    return (await running.store.webmail.page(ALICE, "INBOX", 0, 10))[1] == 1

                await _wait_for(notice)
                [row] = (await running.store.webmail.page(ALICE, "INBOX", 0, 10))[0]
                page = (await web.get(f"/mail/message/{row.id}")).text
                assert "Undelivered: Hello?" in page and "gone@remote.test: 5" in page
                queued = await running.store.outbound.get(1)
                assert queued is not None and queued.done and queued.recipients[0].state == "failed"
            finally:
                await web.close()
    finally:
        rejecting.stop()


async def test_temporary_failures_are_retried(tmp_path: Path) -> None:
    port = free_port()
    store = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs")
    outbound = OutboundService(
        outbound=store.outbound,
        webmail=store.webmail,
        blobs=store.blobs,
        deliverer=SmtpDelivery(OutboundSettings(smart_host=f"127.0.0.1:{port}", tls="none", timeout=5), "standby.test"),  # type: ignore[arg-type]
        signer=DkimSigner(DkimSettings()),
        hostname="standby.test",
        retry_delays=(2.0,),
    )
    late = SmtpSink(tmp_path / "late")
    late.port = port
    try:
        message = mail("Retry me", to="later@remote.test", sender=ALICE)
        outbound_id = await outbound.submit(ALICE, ALICE, ["later@remote.test"], message.as_bytes(), "Retry me")
        assert isinstance(outbound_id, int)
        assert await outbound.run_due() == 1  # nobody listens: deferred
        first = await store.outbound.get(outbound_id)
        assert first is not None and not first.done and first.recipients[0].state == "deferred"
        assert await outbound.run_due() == 0  # not due again before its retry delay
        late.start()
        await asyncio.sleep(2.1)
        assert await outbound.run_due() == 1
        done = await store.outbound.get(outbound_id)
        assert done is not None and done.done and done.attempts == 2 and done.recipients[0].state == "delivered"
        [received] = await asyncio.to_thread(late.messages)
        assert received["Subject"] == "Retry me"
    finally:
        late.stop()
        await store.close()


async def test_activation_link_by_mail(wm: Running, client: WebmailClient, sink: SmtpSink) -> None:
    dave = build_mailbox("dave@example.com", "Dave", domains=TEST_DOMAINS, alternate_email="dave@home.test")
    await wm.store.mailboxes.upsert(dave)
    await client.get("/activate")
    sent = await client.post("/activate", {"address": "dave@example.com"})
    assert "a link was sent" in sent.text
    unknown = await client.post("/activate", {"address": "nobody@example.com"})
    assert "a link was sent" in unknown.text  # the same answer: no account enumeration
    await all_delivered(wm)
    [letter] = await asyncio.to_thread(sink.messages)
    assert letter["To"] == "dave@home.test"
    body = letter.get_content() if not letter.is_multipart() else ""  # type: ignore[attr-defined]
    link = re.search(r"https://standby\.example\.com(/activate/\S+)", body)
    assert link, body
    form = await client.get(link.group(1))
    assert form.status_code == 200 and "dave@example.com" in form.text
    weak = await client.post(link.group(1), {"password": "short", "password_again": "short"})
    assert weak.status_code == 400 and "at least 10 characters" in weak.text
    done = await client.post(link.group(1), {"password": "a long new secret", "password_again": "a long new secret"})
    assert done.headers["location"] == "/login?notice=activated"
    assert (await client.get(link.group(1))).status_code == 404  # one use only
    assert (await client.login("dave@example.com", "a long new secret")).headers["location"] == "/mail"


async def test_outbound_mail_goes_through_the_filter_pipeline(
    wm: Running, client: WebmailClient, sink: SmtpSink
) -> None:
    await client.login()
    await client.get("/mail/compose")
    program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
    refused = await client.post(
        "/mail/compose",
        {"to": "partner@remote.test", "subject": "Invoice", "body": "see attached", "action": "send"},
        files={"attachments": ("invoice.pdf.exe", program, "application/octet-stream")},
    )
    assert refused.status_code == 422
    assert "This message was not sent: the security filter stopped it" in refused.text
    assert "program" in refused.text
    assert (await wm.store.webmail.page(ALICE, "Sent", 0, 10))[1] == 0
    assert await wm.store.outbound.next_due() is None
    await asyncio.sleep(0.3)
    assert not [path for path in sink.dump_dir.iterdir() if path.is_file()]


async def test_forward_keeps_the_attachments_chosen(wm: Running, client: WebmailClient, sink: SmtpSink) -> None:
    original = mail("Plans", "Both files attached.", sender="Sam <sam@remote.test>")
    original.add_attachment(b"floor plan", maintype="application", subtype="pdf", filename="floor.pdf")
    original.add_attachment(b"budget", maintype="text", subtype="csv", filename="budget.csv")
    await deliver(wm, original)
    await client.login()
    [row] = (await wm.store.webmail.page(ALICE, "INBOX", 0, 10))[0]
    form = await client.get("/mail/compose", params={"mode": "forward", "id": row.id})
    assert 'value="Fwd: Plans"' in form.text and "floor.pdf" in form.text and "budget.csv" in form.text
    keep = re.findall(r'name="keep" value="(\d+)"', form.text)
    assert len(keep) == 2
    sent = await client.post(
        "/mail/compose",
        {"to": "pat@remote.test", "subject": "Fwd: Plans", "body": "FYI", "source_id": row.id, "keep": keep[:1],
         "action": "send"},
    )  # fmt: skip
    assert sent.status_code == 303
    await all_delivered(wm)
    [received] = await asyncio.to_thread(sink.messages)
    names = [part.get_filename() for part in received.iter_attachments()]  # type: ignore[attr-defined]
    assert names == ["floor.pdf"]
