"""The rspamd stage against a real rspamd (own configuration, one test rule), at SMTP ingest."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuity.services.app import start, stop
from tests.conftest import provision_standard_mailboxes
from tests.support.appliance import make_settings
from tests.support.rspamd import RspamdServer


def _error(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode() if isinstance(exc.smtp_error, bytes) else exc.smtp_error
    return f"{exc.smtp_code} {text}"


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RspamdServer]:
    server = RspamdServer(tmp_path_factory.mktemp("rspamd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _message(subject: str) -> bytes:
    return (
        f"From: promo@outside.test\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
        "Message-ID: <r-" + subject.replace(" ", "-") + "@outside.test>\r\n\r\nHello there.\r\n"
    ).encode()


async def test_rspamd_actions_at_smtp(rspamd: RspamdServer, tmp_path: Path) -> None:
    running = await start(make_settings(tmp_path / "data", filters={"rspamd": {"url": rspamd.url}}))
    await provision_standard_mailboxes(running)
    try:

        def send() -> list[str]:
            replies = []
            with smtplib.SMTP("127.0.0.1", running.smtp_address.port, timeout=30) as smtp:
                for subject in ("BUY CHEAP PILLS", "LIMITED OFFER", "Minutes of the meeting"):
                    try:
                        smtp.sendmail("promo@outside.test", ["alice@example.com"], _message(subject))
                        replies.append("250")
                    except smtplib.SMTPDataError as exc:
                        replies.append(_error(exc))
            return replies

        pills, offer, minutes = await asyncio.to_thread(send)
        assert pills == "550 5.7.1 Message refused by security policy: looks like spam or phishing to rspamd (reject)"
        assert offer == minutes == "250"
        entries = {entry.subject: entry for entry in await running.store.messages.list()}
        offer_block = (await running.store.messages.trace_header(entries["LIMITED OFFER"].queue_id) or b"").decode()
        assert "X-Continuity-Rspamd: add header; score=7.00" in offer_block
        assert "X-Continuity-Verdict: tag;" in offer_block
        verdict = await running.store.verdicts.get(entries["LIMITED OFFER"].queue_id)
        assert verdict is not None
        assert [f.evidence for f in verdict.findings if f.code == "rspamd.add_header"] == [
            ("CONTINUITY_TEST_PROMO=7.0",)
        ]
        minutes_block = (
            await running.store.messages.trace_header(entries["Minutes of the meeting"].queue_id) or b""
        ).decode()
        assert "X-Continuity-Rspamd: no action" in minutes_block and "X-Continuity-Verdict: accept;" in minutes_block
    finally:
        await stop(running, grace=5)
