"""The replay with ``[replay] auth = plain-authzid``: AUTHENTICATE PLAIN as the admin on behalf of each mailbox.

The primary is the Dovecot stand-in, whose master passdb accepts an authorization identity
(RFC 4616) from its master user: the admin authenticates with its own password and names the
mailbox to open, with no ``user*master`` login name. Mail received during the outage, filed
and flagged in the webmail, reaches the right folders with its flags and INTERNALDATE, each
message once; ``continuity replay check`` names a mailbox the primary does not know.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from continuity.core.failover import FailoverEvent, FailoverState
from continuity.core.imap_syntax import internal_date
from continuity.core.mail_folders import Flag
from continuity.services.app import Running
from tests.support.appliance import clean_env, settings_data
from tests.support.imap_mailbox import Copy, duplicates, read_mailbox
from tests.support.primary import PrimaryStandIn
from tests.support.replay import master_login, order, replay_overrides, wait_for_state
from tests.support.webmail import deliver, mail, webmail_appliance

pytestmark = pytest.mark.slow


def _overrides(primary: PrimaryStandIn) -> dict[str, Any]:
    # A login_format that Dovecot would refuse as a LOGIN name: only the authzid can open the mailbox.
    return replay_overrides(primary, replay={"auth": "plain-authzid", "login_format": "{mailbox}"})


async def _mailbox(primary: PrimaryStandIn, address: str) -> list[Copy]:
    return await read_mailbox(primary.imaps_port, primary.ca_file, master_login(address), primary.master_password)


async def _received_at(running: Running, subject: str) -> float:
    def work(connection: Any) -> float:
        return float(connection.execute("SELECT received_at FROM messages WHERE subject = ?", (subject,)).fetchone()[0])

    return float(await running.store.database.read(work))  # type: ignore[attr-defined]


async def _row_id(running: Running, subject: str) -> int:
    page = (await running.store.webmail.page("alice@example.com", "INBOX", 0, 50))[0]
    [listed] = [message for message in page if message.subject == subject]
    return listed.id


async def test_full_cycle_with_plain_authzid(tmp_path: Path, primary: PrimaryStandIn) -> None:
    async with webmail_appliance(tmp_path / "data", **_overrides(primary)) as running:
        await order(running, FailoverEvent.OPERATOR_FAILOVER)
        for subject in ("Filed", "Flagged", "Plain"):
            await deliver(running, mail(subject, subject.lower()))
        await deliver(running, mail("For bob", "hi bob", to="bob@example.com"), ["bob@example.com"])
        webmail = running.store.webmail
        await webmail.create_folder("alice@example.com", "Projects")
        await webmail.move("alice@example.com", [await _row_id(running, "Filed")], "Projects")
        await webmail.set_flag("alice@example.com", [await _row_id(running, "Flagged")], Flag.FLAGGED, True)
        plain_at = await _received_at(running, "Plain")
        await order(running, FailoverEvent.OPERATOR_FAILBACK)
        await wait_for_state(running, FailoverState.NORMAL, 60)
    alice = await _mailbox(primary, "alice@example.com")
    assert duplicates(alice) == [] and len(alice) == 3
    assert {(c.subject, c.folder, tuple(sorted(c.flags))) for c in alice} == {
        ("Filed", "Projects", ("$MDNSent",)),
        ("Flagged", "INBOX", ("$MDNSent", "\\Flagged")),
        ("Plain", "INBOX", ("$MDNSent",)),
    }
    plain = next(copy for copy in alice if copy.subject == "Plain")
    assert f'"{plain.internal_date}"' == internal_date(plain_at)
    assert [c.subject for c in await _mailbox(primary, "bob@example.com")] == ["For bob"]
    log = (primary.workdir / "dovecot" / "dovecot.log").read_text()
    assert "method=PLAIN" in log


def _run_check(tmp_path: Path, settings: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "continuity.toml"
    config.write_text(tomli_w.dumps(settings))
    return subprocess.run(
        [sys.executable, "-m", "continuity", "--config", str(config), "replay", "check", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )


def test_replay_check_with_plain_authzid(tmp_path: Path, primary: PrimaryStandIn) -> None:
    settings = settings_data(tmp_path / "data", **_overrides(primary))
    settings["replay"]["folders"] = {"sent": "INBOX"}  # the stand-in's mailboxes have only an Inbox
    ready = _run_check(tmp_path, settings, "--mailbox", "alice@example.com")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    missing = _run_check(tmp_path, settings, "--json", "--mailbox", "carol@example.com")
    assert missing.returncode == 1, missing.stdout + missing.stderr
    [row] = json.loads(missing.stdout)
    assert row["mailbox"] == "carol@example.com" and row["step"] == "login", row
    assert "authentication refused" in row["detail"] and "carol@example.com" in row["detail"], row
    assert primary.master_password not in row["detail"]
    # A wrong admin password: refused for every mailbox.
    settings["replay"]["master_password"] = "wrong"
    refused = _run_check(tmp_path, settings, "--json", "--mailbox", "alice@example.com")
    assert refused.returncode == 1
    [row] = json.loads(refused.stdout)
    assert row["step"] == "login" and "authentication refused" in row["detail"], row
