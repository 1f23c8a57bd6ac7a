"""The filter pipeline at SMTP ingest over real sockets, and the quarantine workflow (CLI and admin API)."""

from __future__ import annotations

import asyncio
import json
import smtplib
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from continuity.core.models import MessageState
from continuity.services.app import Running
from tests.support.appliance import ServeProcess
from tests.support.ports import free_port

TOKEN = "q" * 40


def _error(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode() if isinstance(exc.smtp_error, bytes) else exc.smtp_error
    return f"{exc.smtp_code} {text}"


def _crlf(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _bank_change(subject: str = "Updated bank details") -> bytes:
    message = EmailMessage()
    message["From"] = '"Accounts" <accounts@vendor-one.test>'
    message["To"] = "alice@example.com"
    message["Reply-To"] = "vendor.one.accounts@gmail.com"
    message["Subject"] = subject
    message["Message-ID"] = "<bank-1@vendor-one.test>"
    message.set_content(
        "Dear customer,\r\nwe have changed our bank. Please remit all future payments to the new account:\r\n"
        "IBAN GB82 WEST 1234 5698 7654 32\r\nThis is urgent.\r\n"
    )
    return _crlf(message)


def _send(port: int, sender: str, recipients: list[str], content: bytes) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        try:
            smtp.sendmail(sender, recipients, content)
        except smtplib.SMTPDataError as exc:
            return _error(exc)
    return "250"


async def test_reject_quarantine_tag_accept(appliance: Running) -> None:
    port = appliance.smtp_address.port
    executable = EmailMessage()
    executable["From"] = "scanner@outside.test"
    executable["To"] = "bob@example.com"
    executable["Subject"] = "Scan"
    executable.set_content("see attachment")
    executable.add_attachment(b"MZ\x90\x00" + bytes(200), maintype="application", subtype="pdf", filename="scan.pdf")
    refused = await asyncio.to_thread(_send, port, "scanner@outside.test", ["bob@example.com"], _crlf(executable))
    assert refused == "550 5.7.1 Message refused by security policy: carries a program (executable) file"
    assert await appliance.store.messages.list() == []

    fraud = _bank_change()
    assert await asyncio.to_thread(_send, port, "x@vendor-one.test", ["alice@example.com"], fraud) == "250"
    tagged = EmailMessage()
    tagged["From"] = "news@letters.test"
    tagged["To"] = "alice@example.com"
    tagged["Subject"] = "Weekly"
    tagged["Message-ID"] = "<weekly@letters.test>"
    tagged.set_content("plain part")
    tagged.add_alternative('<p><a href="http://tracker.other.test/x">www.letters.test/read</a></p>', subtype="html")
    tagged_bytes = _crlf(tagged)
    assert await asyncio.to_thread(_send, port, "news@letters.test", ["alice@example.com"], tagged_bytes) == "250"

    held = await appliance.store.quarantine.list()
    assert [entry.subject for entry in held] == ["Updated bank details"]
    assert held[0].state is MessageState.HELD
    verdict = await appliance.store.verdicts.get(held[0].queue_id)
    assert verdict is not None and verdict.verdict.value == "quarantine"
    codes = {finding.code for finding in verdict.findings}
    assert {"bec.bank_change", "bec.new_bank_account", "bec.reply_to_freemail", "bec.urgency"} <= codes
    assert "bec" in verdict.fired
    # Stored byte-identical, with the verdict in the prepended header block.
    assert await appliance.store.blobs.read(held[0].sha256) == fraud
    block = (await appliance.store.messages.trace_header(held[0].queue_id) or b"").decode()
    assert "X-Continuity-Verdict: quarantine;" in block and block.rstrip().endswith("+0000")

    entries = {entry.subject: entry for entry in await appliance.store.messages.list()}
    weekly = entries["Weekly"]
    assert weekly.state is MessageState.QUEUED
    weekly_block = (await appliance.store.messages.trace_header(weekly.queue_id) or b"").decode()
    assert "X-Continuity-Verdict: tag;" in weekly_block and "urls.mismatched_text" in weekly_block
    assert "X-Continuity-Warning: a link's text shows one site but leads to another" in weekly_block

    database = appliance.store.database.path  # type: ignore[attr-defined]
    with sqlite3.connect(database) as connection:
        inbox = connection.execute(
            "SELECT queue_id FROM mailbox_messages WHERE mailbox = 'alice@example.com'"
        ).fetchall()
    assert [row[0] for row in inbox] == [weekly.queue_id]


@pytest.mark.parametrize(
    "appliance", [{"filters": {"clamd": {"address": f"127.0.0.1:{free_port()}", "timeout": 2}}}], indirect=True
)
async def test_fail_closed_stage_answers_451(appliance: Running) -> None:
    reply = await asyncio.to_thread(
        _send, appliance.smtp_address.port, "a@outside.test", ["alice@example.com"], _bank_change("Any")
    )
    assert reply == "451 4.7.1 The message cannot be checked right now; try again later"
    assert await appliance.store.messages.list() == []


@pytest.mark.parametrize(
    "appliance",
    [{"filters": {"clamd": {"address": f"127.0.0.1:{free_port()}", "fail_open": True}}}],
    indirect=True,
)
async def test_fail_open_stage_is_recorded_and_ignored(appliance: Running) -> None:
    content = b"From: a@outside.test\r\nTo: alice@example.com\r\nSubject: hello\r\n\r\nhello\r\n"
    assert (
        await asyncio.to_thread(_send, appliance.smtp_address.port, "a@outside.test", ["alice@example.com"], content)
        == "250"
    )
    [entry] = await appliance.store.messages.list()
    verdict = await appliance.store.verdicts.get(entry.queue_id)
    assert verdict is not None and verdict.verdict.value == "accept"
    [clamd] = [stage for stage in verdict.stages if stage.stage == "clamd"]
    assert clamd.status.value == "error" and "cannot connect to clamd" in clamd.error
    block = (await appliance.store.messages.trace_header(entry.queue_id) or b"").decode()
    assert "failed=clamd" in block


def test_quarantine_cli_and_api(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path, admin={"token": TOKEN})
    server.cli("mailbox", "add", "alice@example.com", "--name", "Alice Example")
    server.start()
    try:
        for subject in ("First fraud", "Second fraud"):
            assert _send(server.smtp_port, "x@vendor-one.test", ["alice@example.com"], _bank_change(subject)) == "250"
        listed = json.loads(server.cli("quarantine", "list", "--json").stdout)
        assert [item["subject"] for item in listed] == ["Second fraud", "First fraud"]
        assert listed[0]["verdict"]["verdict"] == "quarantine"
        # The table names each finding's code too (what docs/replay.md tells operators to look for).
        codes = {finding["code"] for finding in listed[0]["verdict"]["findings"]}
        table = server.cli("quarantine", "list").stdout
        assert codes and all(code in table for code in codes) and "Codes" in table
        first, second = listed[1]["id"], listed[0]["id"]

        shown = server.cli("quarantine", "show", first).stdout
        assert "asks to change bank details" in shown and "GB82WEST12345698765432" in shown
        assert "--- text (plain, not rendered) ---" in shown and "remit all future payments" in shown

        missing_reason = server.cli("quarantine", "release", first, check=False)
        assert missing_reason.returncode == 2 and "--reason" in missing_reason.stderr
        released = server.cli("quarantine", "release", first, "--reason", "verified by phone", "--actor", "ops:eve")
        assert f"Released {first}" in released.stdout
        again = server.cli("quarantine", "release", first, "--reason", "again", check=False)
        assert again.returncode == 1 and "there is no quarantined message" in again.stderr
        bad_id = server.cli("quarantine", "show", "nonsense", check=False)
        assert bad_id.returncode == 1 and "is not a queue id" in bad_id.stderr

        headers = {"Authorization": f"Bearer {TOKEN}"}
        base = f"http://127.0.0.1:{server.web_port}/api/v1/quarantine"
        with httpx.Client(headers=headers, timeout=20) as client:
            api_list = client.get(base + "/").json()
            assert [item["id"] for item in api_list] == [second]
            preview = client.get(f"{base}/{second}").json()
            assert preview["subject"] == "Second fraud" and "IBAN" in preview["text"]
            assert preview["message"]["verdict"]["findings"][0]["code"].startswith("bec.")
            no_reason = client.post(f"{base}/{second}/delete", json={"reason": " "})
            assert no_reason.status_code == 400 and "reason is required" in no_reason.text
            deleted = client.post(f"{base}/{second}/delete", json={"reason": "fraud", "actor": "mallory-hunter"})
            assert deleted.status_code == 200 and deleted.json()["action"] == "deleted"
            assert client.get(f"{base}/{second}").status_code == 404
            assert client.get(base + "/").json() == []

        queue = json.loads(server.cli("queue", "list", "--json").stdout)
        assert [(item["id"], item["state"]) for item in queue] == [(first, "queued")]
        audit = json.loads(server.cli("audit", "list", "--json").stdout)
        actions = [(entry["actor"], entry["action"], entry["reason"]) for entry in audit]
        assert ("ops:eve", "quarantine.release", "verified by phone") in actions
        assert ("api:mallory-hunter", "quarantine.delete", "fraud") in actions
        server.cli("audit", "verify")
    finally:
        assert server.terminate() == 0
