"""The webmail's mailbox over a real socket: lists, flags, moves, Trash, search, drafts, attachments.

Also checks what the replay will read: folder, flags and deletions stay in mailbox_messages.
"""

from __future__ import annotations

import html
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState, Routing
from continuity.core.filter_records import StoredVerdict
from continuity.core.pipeline import Direction, Finding, Verdict
from continuity.services.app import Running
from continuity.store.sqlite import SqliteStore
from tests.support.webmail import WebmailClient, deliver, mail, webmail_appliance

ALICE = "alice@example.com"


@pytest.fixture
async def wm(tmp_path: Path) -> AsyncIterator[Running]:
    async with webmail_appliance(tmp_path / "data", webmail={"page_size": 10}) as running:
        yield running


@pytest.fixture
async def client(wm: Running) -> AsyncIterator[WebmailClient]:
    web = WebmailClient(wm)
    await web.login()
    yield web
    await web.close()


def _ids(page: str) -> list[int]:
    return [int(found) for found in re.findall(r'name="id" value="(\d+)"', page)]


async def _row(wm: Running, message_id: int) -> tuple[str, str, int]:
    """What the replay will read: the message's folder, flags and expunged mark."""

    def work(connection: sqlite3.Connection) -> tuple[str, str, int]:
        row = connection.execute(
            "SELECT folder, flags, expunged FROM mailbox_messages WHERE id = ?", (message_id,)
        ).fetchone()
        return str(row[0]), str(row[1]), int(row[2])

    assert isinstance(wm.store, SqliteStore)
    return await wm.store.database.read(work)


async def test_list_pages_and_markers(wm: Running, client: WebmailClient) -> None:
    for number in range(23):
        await deliver(wm, mail(f"Message number {number:02d}"))
    first = await client.get("/mail")
    assert first.status_code == 200
    assert "Message number 22" in first.text and "Message number 12" not in first.text
    assert "Page 1 of 3" in first.text and first.text.count('class="unread') == 10
    assert 'aria-label="23 unread"' in first.text
    last = await client.get("/mail", params={"page": 3})
    assert "Message number 00" in last.text and len(_ids(last.text)) == 3
    bad_page = await client.get("/mail", params={"page": 0})
    assert bad_page.status_code == 400 and "The request was not understood" in bad_page.text
    assert (await client.get("/mail", params={"folder": "Nope"})).status_code == 404


async def test_read_flag_move_delete_and_empty_trash(wm: Running, client: WebmailClient) -> None:
    await deliver(wm, mail("Quarterly report", "numbers"))
    await deliver(wm, mail("Lunch", "pizza?"))
    report, lunch = sorted(_ids((await client.get("/mail")).text))
    page = await client.get(f"/mail/message/{report}")
    assert page.status_code == 200 and "numbers" in page.text
    assert "\\Seen" in (await _row(wm, report))[1]
    await client.post(f"/mail/message/{report}/action", {"action": "flag"})
    assert (await _row(wm, report))[1] == "\\Seen \\Flagged"
    await client.post(f"/mail/message/{report}/action", {"action": "unread"})
    assert (await _row(wm, report))[1] == "\\Flagged"
    await client.post("/mail/folders", {"name": "Finance"})
    moved = await client.post(f"/mail/message/{report}/action", {"action": "move", "target": "Finance"})
    assert moved.status_code == 303
    assert (await _row(wm, report))[0] == "Finance"
    assert "Quarterly report" in (await client.get("/mail", params={"folder": "Finance"})).text
    bad = await client.post(f"/mail/message/{report}/action", {"action": "move", "target": "Nowhere"})
    assert bad.status_code == 400 and "There is no folder named" in bad.text
    await client.post("/mail/actions", {"id": [lunch], "action": "delete", "folder": "INBOX"})
    assert (await _row(wm, lunch))[:1] == ("Trash",)
    await client.get("/mail", params={"folder": "Trash"})
    await client.post("/mail/trash/empty")
    assert await _row(wm, lunch) == ("Trash", "", 1)  # kept for the replay to Deleted Items
    assert "Lunch" not in (await client.get("/mail", params={"folder": "Trash"})).text
    # Another user's message is out of reach.
    await deliver(wm, mail("For Bob only", to="bob@example.com"), ["bob@example.com"])
    bobs = await wm.store.webmail.page("bob@example.com", "INBOX", 0, 10)
    assert (await client.get(f"/mail/message/{bobs[0][0].id}")).status_code == 404
    await client.post(f"/mail/message/{bobs[0][0].id}/action", {"action": "delete"})
    assert (await _row(wm, bobs[0][0].id))[0] == "INBOX"


async def test_search_subject_addresses_and_body(wm: Running, client: WebmailClient) -> None:
    await deliver(wm, mail("Invoice 4711", "Please pay by Friday", sender="Billing <billing@vendor.test>"))
    await deliver(wm, mail("Holiday plans", "We could go to Lisbon in spring"))
    await deliver(wm, mail("Lisbon hotel", "Bob's secret", to="bob@example.com"), ["bob@example.com"])
    assert "Invoice 4711" in (found := (await client.get("/mail/search", params={"q": "invoice"})).text)
    assert "Holiday plans" not in found
    assert "Invoice 4711" in (await client.get("/mail/search", params={"q": "billing@vendor.test"})).text
    lisbon = (await client.get("/mail/search", params={"q": "lisb"})).text
    assert "Holiday plans" in lisbon and "Lisbon hotel" not in lisbon  # never another mailbox
    odd = await client.get("/mail/search", params={"q": 'AND OR ( "unbalanced NEAR*'})
    assert odd.status_code == 200 and "Nothing matches your search." in odd.text


async def test_drafts_are_saved_and_replaced(wm: Running, client: WebmailClient) -> None:
    await client.get("/mail/compose")
    saved = await client.post(
        "/mail/compose", {"to": "someone@remote.test", "subject": "Plan", "body": "first version", "action": "save"}
    )
    assert saved.status_code == 303
    draft_id = int(saved.headers["location"].rsplit("=", 1)[1])
    form = await client.get(saved.headers["location"])
    assert "first version" in form.text and f'name="draft_id" value="{draft_id}"' in form.text
    await deliver(wm, mail("Question", "Can you?"))
    question = next(r for r in (await wm.store.webmail.page(ALICE, "INBOX", 0, 10))[0] if r.subject == "Question")
    reply_form = await client.get("/mail/compose", params={"mode": "reply", "id": question.id})
    in_reply_to = re.search(r'name="in_reply_to" value="([^"]+)"', reply_form.text)
    assert in_reply_to
    thread = html.unescape(in_reply_to.group(1))
    fields = {"to": "sam@outside.test", "subject": "Re: Question", "body": "later", "in_reply_to": thread}
    kept = await client.post("/mail/compose", {**fields, "action": "save"})
    reopened = await client.get(kept.headers["location"])
    assert f'name="in_reply_to" value="{in_reply_to.group(1)}"' in reopened.text  # the thread survives a draft
    again = await client.post(
        "/mail/compose",
        {"to": "someone@remote.test", "subject": "Plan", "body": "second", "action": "save", "draft_id": draft_id},
    )
    drafts, total = await wm.store.webmail.page(ALICE, "Drafts", 0, 10)
    assert total == 2 and int(again.headers["location"].rsplit("=", 1)[1]) in [d.id for d in drafts]
    assert draft_id not in [d.id for d in drafts]
    assert "\\Draft" in drafts[0].flags


async def test_attachments_download_safely(wm: Running, client: WebmailClient) -> None:
    message = mail("Files", "see attached")
    message.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html", filename="page.html")
    message.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="r\u00e9sum\u00e9.pdf")
    await deliver(wm, message)
    [message_id] = _ids((await client.get("/mail")).text)
    page = (await client.get(f"/mail/message/{message_id}")).text
    links = re.findall(rf'href="(/mail/message/{message_id}/part/\d+)"', page)
    assert len(links) == 2
    html_part = await client.get(links[0])
    assert html_part.content == b"<script>alert(1)</script>"
    assert html_part.headers["content-type"] == "application/octet-stream"
    assert html_part.headers["content-disposition"].startswith("attachment;")
    assert html_part.headers["x-content-type-options"] == "nosniff"
    pdf = await client.get(links[1])
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in pdf.headers["content-disposition"]
    assert (await client.get(f"/mail/message/{message_id}/part/99")).status_code == 404


async def test_html_body_is_sanitized_and_framed(wm: Running, client: WebmailClient) -> None:
    await deliver(
        wm, mail("Newsletter", "plain", html='<p onclick="x()">Hi <img src="https://tracker.test/p.gif"></p>')
    )
    [message_id] = _ids((await client.get("/mail")).text)
    page = (await client.get(f"/mail/message/{message_id}")).text
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
    assert "1 remote image blocked" in page
    body = await client.get(f"/mail/message/{message_id}/body")
    assert "onclick" not in body.text and "tracker.test" not in body.text
    csp = body.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "sandbox" in csp and "img-src 'self' data:;" in csp
    shown = await client.get(f"/mail/message/{message_id}/body", params={"images": 1})
    assert "https://tracker.test/p.gif" in shown.text and "https:" in shown.headers["content-security-policy"]


async def test_failover_banner(wm: Running, client: WebmailClient) -> None:
    assert 'id="failover-banner"' not in (await client.get("/mail")).text
    since = datetime(2026, 11, 22, 14, 2, tzinfo=UTC).timestamp()
    record = FailoverRecord(
        state=FailoverState.FAILED_OVER,
        since=since,
        reason="the primary did not answer SMTP or HTTPS for 5 minutes",
        routing=Routing.STANDBY,
        automatic=True,
        version=1,
    )
    await wm.store.failover.save(record, FailoverState.FAILING_OVER, FailoverEvent.SWITCH_SUCCEEDED, "{}")
    page = (await client.get("/mail")).text
    assert (
        "Your mail is served by the continuity service since 14:02 UTC on 22 Nov because "
        "the primary did not answer SMTP or HTTPS for 5 minutes." in page
    )
    assert 'role="status" id="failover-banner"' in page


async def test_security_banner_from_the_filter_verdict(wm: Running, client: WebmailClient) -> None:
    await deliver(wm, mail("Lunch on Friday", "Shall we meet at noon?"))
    await deliver(wm, mail("Updated payment details", "Please use our new bank account for all invoices from now on."))
    rows = {row.subject: row for row in (await wm.store.webmail.page(ALICE, "INBOX", 0, 10))[0]}
    assert 'id="security-banner"' not in (await client.get(f"/mail/message/{rows['Lunch on Friday'].id}")).text
    # The filter pipeline judged the second message on receipt; the banner shows what it found.
    bec = rows["Updated payment details"]
    stored = await wm.store.verdicts.get(bec.queue_id)
    assert stored is not None and stored.findings
    page = (await client.get(f"/mail/message/{bec.id}")).text
    banner = page.split('id="security-banner"', 1)[1].split("</div>", 1)[0]
    assert "bank" in banner and all(finding.message in banner for finding in stored.findings)
    finding = Finding("bec.bank_change", 12.0, "asks to change bank details", ("DE89 3704 0044 0532 0130 00",))
    quarantined = StoredVerdict(Verdict.QUARANTINE, 12.0, Direction.INBOUND, time.time(), (finding,), ())
    await wm.store.verdicts.record(bec.queue_id, quarantined)
    danger = (await client.get(f"/mail/message/{bec.id}")).text
    assert 'class="banner danger"' in danger and "This message looks dangerous" in danger


async def test_quarantine_view_lists_held_mail_with_the_reason(tmp_path: Path) -> None:
    async with webmail_appliance(tmp_path / "held", filters={"policy": {"actions": {"bec": "quarantine"}}}) as running:
        web = WebmailClient(running)
        try:
            await web.login()
            empty = await web.get("/mail/quarantine")
            assert "Nothing is held for you." in empty.text
            await deliver(running, mail("Updated payment details", "Please use our new bank account for all invoices."))
            page = (await web.get("/mail/quarantine")).text
            table = page.split('id="quarantine"', 1)[1]
            assert "Updated payment details" in table and "bank" in table.split("</tr>", 2)[1]
            assert (await running.store.webmail.page(ALICE, "INBOX", 0, 10))[1] == 0  # in no folder
            assert 'href="/mail/message/' not in table
        finally:
            await web.close()


async def test_oversized_upload_is_refused(tmp_path: Path) -> None:
    async with webmail_appliance(tmp_path / "small", webmail={"max_upload_size": 4096}) as running:
        web = WebmailClient(running)
        try:
            await web.login()
            await web.get("/mail/compose")
            response = await web.post(
                "/mail/compose",
                {"to": "x@remote.test", "subject": "big", "body": "b", "action": "send"},
                files={"attachments": ("big.bin", b"\0" * 20_000, "application/octet-stream")},
            )
            assert response.status_code == 413 and "larger than the limit of 0.0 MB" in response.text
            assert await running.store.outbound.next_due() is None
        finally:
            await web.close()
