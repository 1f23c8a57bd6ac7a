"""The whole cycle against a primary stand-in (Postfix + Dovecot + HTTPS health) and BIND9.

The primary goes down; the monitor fails over and the MX served by BIND points at the
standby. Mail arrives; alice reads, flags, files, deletes and answers in the webmail (its
HTTP routes), saves a draft; a rule update makes one received message malicious. The
primary comes back: an operator's failback during the hold-down is refused; after it the
appliance restores by itself, replays and switches the MX back. Then every message is in
the right Dovecot folder with the right flags and its original INTERNALDATE, Sent Items
and Drafts hold what alice wrote, nothing is duplicated, the malicious message is in
quarantine and not on the primary, and a manifest linked from the audit log says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuity.core.audit import AuditEntry
from continuity.core.failover import FailoverEvent, FailoverState
from continuity.core.failover_records import CommandStatus
from continuity.core.imap_syntax import internal_date
from continuity.services.app import Running
from continuity.services.failover_orders import carry_out
from tests.support.bind import BindServer, TsigKey, zone_text
from tests.support.imap_mailbox import Copy, duplicates, read_mailbox
from tests.support.primary import PrimaryStandIn
from tests.support.replay import master_login, replay_overrides, wait_for_state
from tests.support.smtp_sink import SmtpSink
from tests.support.webmail import WebmailClient, deliver, mail, webmail_appliance

pytestmark = pytest.mark.slow

PRIMARY_MX = "10 mail.example.com."
STANDBY_MX = "10 standby.example.com."
DOMAINS = ("example.com", "example.net")
POLICY = {
    "enabled": True,
    "interval": 0.25,
    "probe_timeout": 2.0,
    "failures_to_down": 2,
    "down_after": 0.5,
    "successes_to_up": 2,
    "hold_down": 3.0,
    "suspect_after": 1,
}
FOLDER = "Projets 2026 \u2013 \u00dcberblick"  # an en dash and an umlaut: modified UTF-7 on the wire
EVIL = "evil-invoices.example.org"


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[tuple[BindServer, TsigKey]]:
    key = TsigKey.generate()
    records = [f"@ IN MX {PRIMARY_MX}", "mail IN A 127.0.0.2", "standby IN A 127.0.0.3"]
    zones = {domain: zone_text(domain, records, ttl=60) for domain in DOMAINS}
    server = BindServer(tmp_path / "bind", zones, key)
    server.start()
    try:
        yield server, key
    finally:
        server.stop()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink(tmp_path / "sink")
    server.start()
    try:
        yield server
    finally:
        server.stop()


_ROW = re.compile(r'name="id" value="(\d+)" id="sel-\d+" aria-label="Select message ([^"]*)"')


async def _ids_by_subject(client: WebmailClient, folder: str = "INBOX") -> dict[str, int]:
    page = (await client.get("/mail", params={"folder": folder})).text
    return {html.unescape(subject): int(found) for found, subject in _ROW.findall(page)}


async def _received_at(running: Running, subject: str) -> float:
    def work(connection: object) -> float:
        row = connection.execute(  # type: ignore[attr-defined]
            "SELECT received_at FROM messages WHERE subject = ?", (subject,)
        ).fetchone()
        return float(row[0])

    return float(await running.store.database.read(work))  # type: ignore[attr-defined]


def _by_subject(copies: list[Copy]) -> dict[str, Copy]:
    return {copy.subject: copy for copy in copies}


async def test_outage_webmail_restoration_failback(
    tmp_path: Path, primary: PrimaryStandIn, bind: tuple[BindServer, TsigKey], sink: SmtpSink
) -> None:
    server, key = bind
    blocklist = tmp_path / "blocked-domains.txt"
    blocklist.write_text("# nothing blocked yet\n")
    settings = replay_overrides(
        primary,
        monitor=POLICY,
        failover={"mode": "dns", "retry_initial": 0.5},
        dns={
            "server": f"127.0.0.1:{server.port}",
            "verify_port": server.port,
            "primary_mx": [PRIMARY_MX],
            "standby_mx": [STANDBY_MX],
            "tsig_key_name": key.name,
            "tsig_secret": key.secret,
            "verify_timeout": 5,
        },
        filters={"urls": {"blocklists": [str(blocklist)]}},
        outbound={"smart_host": f"127.0.0.1:{sink.port}", "tls": "none"},
    )
    async with webmail_appliance(tmp_path / "data", **settings) as running:
        assert running.failover is not None and running.failover.monitor is not None
        # -- outage: the monitor fails over, the MX points at the standby --------------------
        await wait_for_state(running, FailoverState.NORMAL)
        await asyncio.to_thread(primary.stop)
        await wait_for_state(running, FailoverState.FAILED_OVER, 30)
        assert server.query("example.com", "MX") == [STANDBY_MX]

        # -- mail arrives at the standby ----------------------------------------------------
        subjects = ["Quarterly report", "Lunch", "Project plan", "Old newsletter", "Spam offer", "Unread note"]
        for subject in subjects:
            await deliver(running, mail(subject, f"About {subject.lower()}."))
        await deliver(running, mail("For both of you", "Team news."), ["alice@example.com", "bob@example.com"])
        evil = mail("Invoice 4711", html=f'<p>Pay here: <a href="https://{EVIL}/pay">portal</a></p>')
        await deliver(running, evil)
        received = time.monotonic()

        # -- alice works in the webmail -----------------------------------------------------
        client = WebmailClient(running)
        try:
            assert (await client.login()).status_code == 303
            ids = await _ids_by_subject(client)
            assert set(ids) >= {*subjects, "For both of you", "Invoice 4711"}
            # Read three (opening marks \Seen), flag one, file one into a new folder, delete two
            # (one read, one unread) and empty Trash; leave the rest unread.
            for subject in ("Quarterly report", "Lunch", "Project plan", "Old newsletter"):
                assert (await client.get(f"/mail/message/{ids[subject]}")).status_code == 200
            await client.post(f"/mail/message/{ids['Lunch']}/action", {"action": "flag"})
            await client.post("/mail/folders", {"name": FOLDER})
            moved = await client.post(
                f"/mail/message/{ids['Project plan']}/action", {"action": "move", "target": FOLDER}
            )
            assert moved.status_code == 303
            await client.post("/mail/actions", {"id": [ids["Old newsletter"]], "action": "delete", "folder": "INBOX"})
            await client.post("/mail/actions", {"id": [ids["Spam offer"]], "action": "delete", "folder": "INBOX"})
            await client.post("/mail/trash/empty")
            # Answer the report; save a draft.
            await client.get(f"/mail/compose?mode=reply&id={ids['Quarterly report']}")
            sent = await client.post(
                "/mail/compose",
                {
                    "to": "sam@outside.test",
                    "subject": "Re: Quarterly report",
                    "body": "Thanks, looks good.",
                    "reply_to_id": str(ids["Quarterly report"]),
                    "action": "send",
                },
            )
            assert sent.status_code == 303, sent.text[:500]
            await client.get("/mail/compose")
            saved = await client.post(
                "/mail/compose", {"to": "boss@example.com", "subject": "Plan B", "body": "Draft.", "action": "save"}
            )
            assert saved.status_code == 303, saved.text[:500]
        finally:
            await client.close()
        assert len(sink.messages(1, timeout=20)) == 1  # the reply left through the outbound queue

        # -- a rule update makes the invoice malicious (feeds are re-read within 10 s) -------
        blocklist.write_text(f"{EVIL}\n")
        await asyncio.sleep(max(0.0, 10.5 - (time.monotonic() - received)))

        # -- the primary is back: no failback during the hold-down, then by itself ------------
        await asyncio.to_thread(primary.start)
        assert running.webmail is not None
        refused = await carry_out(
            running.webmail.settings, running.store, FailoverEvent.OPERATOR_FAILBACK, "primary is back", "test"
        )
        assert refused.status is CommandStatus.REJECTED and "hold-down" in refused.result, refused
        await wait_for_state(running, FailoverState.NORMAL, 90)
        assert server.query("example.com", "MX") == [PRIMARY_MX]
        assert server.query("example.net", "MX") == [PRIMARY_MX]

        # -- what the primary holds ---------------------------------------------------------
        alice = await read_mailbox(
            primary.imaps_port, primary.ca_file, master_login("alice@example.com"), primary.master_password
        )
        bob = await read_mailbox(
            primary.imaps_port, primary.ca_file, master_login("bob@example.com"), primary.master_password
        )
        assert duplicates(alice) == [] and duplicates(bob) == []
        copies = _by_subject(alice)
        expected = {
            "Quarterly report": ("INBOX", {"\\Seen", "\\Answered"}),
            "Lunch": ("INBOX", {"\\Seen", "\\Flagged"}),
            "Project plan": (FOLDER, {"\\Seen"}),
            "Old newsletter": ("Deleted Items", {"\\Seen"}),
            "Spam offer": ("Deleted Items", set()),
            "Unread note": ("INBOX", set()),
            "For both of you": ("INBOX", set()),
            "Re: Quarterly report": ("Sent Items", {"\\Seen"}),
            "Plan B": ("Drafts", {"\\Seen", "\\Draft"}),
        }
        for subject, (folder, flags) in expected.items():
            assert subject in copies, f"{subject} missing on the primary: {sorted(copies)}"
            # Every replayed copy carries $MDNSent: no read receipt is sent again for old mail.
            assert (copies[subject].folder, set(copies[subject].flags)) == (folder, flags | {"$MDNSent"}), copies[
                subject
            ]
        assert "Invoice 4711" not in copies
        assert len(alice) == len(expected)
        assert [(copy.folder, copy.subject) for copy in bob] == [("INBOX", "For both of you")]
        # The original arrival time is the INTERNALDATE.
        report_at = await _received_at(running, "Quarterly report")
        assert f'"{copies["Quarterly report"].internal_date}"' == internal_date(report_at)

        # -- the malicious invoice is held in quarantine --------------------------------------
        held = await running.store.quarantine.list()
        assert [entry.subject for entry in held] == ["Invoice 4711"]
        verdict = await running.store.verdicts.get(held[0].queue_id)
        assert verdict is not None and "urls.blocklisted" in [finding.code for finding in verdict.findings]

        # -- the manifest, linked from the audit log ----------------------------------------
        entries: list[AuditEntry] = await running.store.audit.list(500)
        complete = [entry for entry in entries if entry.record.action == "replay.complete"]
        assert len(complete) == 1
        details = complete[0].details
        assert isinstance(details, dict)
        manifest_path = Path(str(details["manifest"]))
        data = manifest_path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == details["sha256"]
        lines = [json.loads(line) for line in data.decode().splitlines()]
        assert lines[0]["type"] == "run" and lines[-1]["type"] == "summary"
        summary = lines[-1]
        assert summary["totals"]["delivered"] == len(expected) + 1 and summary["totals"]["held"] == 1
        assert summary["verification"]["duplicates"] == []
        for_alice = [line for line in lines if line["type"] == "message" and line["mailbox"] == "alice@example.com"]
        outcomes = {m["message_id"]: m["outcome"] for m in for_alice}
        assert outcomes[str(evil["Message-ID"])] == "held"
        assert [entry.record.action for entry in entries].count("replay.hold") == 1
        assert (await running.store.audit.verify()).ok
