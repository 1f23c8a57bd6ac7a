"""A hijack-shaped reply whose thread the standby never saw, through real SMTP ingest.

The appliance starts with an empty filter memory (the thread's earlier messages are
outside its mailbox window). A short reply with a link to an archive on an unrelated
site and its password is quarantined by the default policy; the same reply with only
the link is tagged; a reply linking to the sender's own share is accepted.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

from continuity.core.models import MessageState
from continuity.services.app import Running


def _reply(subject: str, body: str, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = '"Kenji Sato" <office@hanabi-kougyou.test>'
    message["To"] = "bob@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{message_id}@hanabi-kougyou.test>"
    message["In-Reply-To"] = "<order7781-2@example.com>"
    message["References"] = "<order7781-1@sakura-trading.test> <order7781-2@example.com>"
    message.set_content(body + "\n\n> delivery is planned for week 44\n")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _send(port: int, content: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.sendmail("office@hanabi-kougyou.test", ["bob@example.com"], content)


async def test_hijack_shaped_reply_without_history(appliance: Running) -> None:
    port = appliance.smtp_address.port
    lure = "Hello,\n\nplease check the documents https://onsen-ryokan.test/wp-content/uploads/Order_7781.zip"
    await asyncio.to_thread(_send, port, _reply("Re: Order 7781", lure + "\npassword: 4471", "qk1"))
    await asyncio.to_thread(_send, port, _reply("Re: Order 7781 schedule", lure, "qk2"))
    own = "Hello,\n\nthe catalogue: https://share.hanabi-kougyou.test/files/catalogue-2027.zip"
    await asyncio.to_thread(_send, port, _reply("Re: catalogue", own, "ok3"))

    held = await appliance.store.quarantine.list()
    assert [entry.subject for entry in held] == ["Re: Order 7781"]
    assert held[0].state is MessageState.HELD
    verdict = await appliance.store.verdicts.get(held[0].queue_id)
    assert verdict is not None and verdict.verdict.value == "quarantine"
    assert {finding.code for finding in verdict.findings} >= {"hijack.archive_link", "hijack.attachment_password"}

    entries = {entry.subject: entry for entry in await appliance.store.messages.list()}
    tagged = (await appliance.store.messages.trace_header(entries["Re: Order 7781 schedule"].queue_id) or b"").decode()
    assert "X-Continuity-Verdict: tag;" in tagged and "hijack.archive_link" in tagged
    accepted = (await appliance.store.messages.trace_header(entries["Re: catalogue"].queue_id) or b"").decode()
    assert "X-Continuity-Verdict: accept" in accepted and "hijack." not in accepted
