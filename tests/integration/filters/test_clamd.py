"""The clamd stage against a real clamd with an EICAR signature database, at SMTP ingest."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from continuity.filters.clamd import scan_bytes
from continuity.services.app import start, stop
from tests.conftest import provision_standard_mailboxes
from tests.support.appliance import make_settings
from tests.support.clamd import EICAR, ClamdServer


def _error(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode() if isinstance(exc.smtp_error, bytes) else exc.smtp_error
    return f"{exc.smtp_code} {text}"


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdServer]:
    server = ClamdServer(tmp_path_factory.mktemp("clamd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_instream(clamd: ClamdServer) -> None:
    assert (await scan_bytes(clamd.address, EICAR) or "").startswith("Eicar-Test-Signature")
    assert await scan_bytes(clamd.address, b"a harmless line\r\n" * 50_000) is None


async def test_virus_is_rejected_at_smtp(clamd: ClamdServer, tmp_path: Path) -> None:
    running = await start(make_settings(tmp_path / "data", filters={"clamd": {"address": clamd.address}}))
    await provision_standard_mailboxes(running)
    try:
        infected = EmailMessage()
        infected["From"] = "a@outside.test"
        infected["To"] = "alice@example.com"
        infected["Subject"] = "Report"
        infected.set_content("see the report")
        infected.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="report.dat")
        clean = EmailMessage()
        clean["From"] = "a@outside.test"
        clean["To"] = "alice@example.com"
        clean["Subject"] = "Clean"
        clean.set_content("nothing to see")

        def send() -> list[str]:
            replies = []
            with smtplib.SMTP("127.0.0.1", running.smtp_address.port, timeout=30) as smtp:
                for message in (infected, clean):
                    try:
                        smtp.sendmail(
                            "a@outside.test",
                            ["alice@example.com"],
                            message.as_bytes(policy=message.policy.clone(linesep="\r\n")),
                        )
                        replies.append("250")
                    except smtplib.SMTPDataError as exc:
                        replies.append(_error(exc))
            return replies

        rejected, accepted = await asyncio.to_thread(send)
        assert rejected == "550 5.7.1 Message refused by security policy: carries a virus or malware"
        assert accepted == "250"
        [entry] = await running.store.messages.list()
        verdict = await running.store.verdicts.get(entry.queue_id)
        assert verdict is not None and any(s.stage == "clamd" and s.status.value == "ok" for s in verdict.stages)
    finally:
        await stop(running, grace=5)
