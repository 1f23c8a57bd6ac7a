"""The replay into a primary that takes only OAuth 2.0 app tokens, as Exchange Online does (XOAUTH2).

The primary is the Dovecot stand-in with an ``oauth2`` passdb that validates JWTs locally
against the public key of tests.support.token_endpoint, a stand-in for Entra's v2.0 token
endpoint (client credentials, msal). The appliance logs in with ``[replay] auth = xoauth2``:

* a full cycle: mail received during the outage, filed and flagged in the webmail, reaches the
  primary in the right folders with its flags and INTERNALDATE, each message once;
* a token that expires while msal still holds it is refused by the primary, renewed once, and
  the session opens;
* a revoked app (its token refused by the primary, new ones refused by the endpoint with
  AADSTS7000215) stops the replay with that error and loses nothing; once the app is
  trusted again, every message is delivered exactly once;
* ``continuity replay check`` says which mailbox can be opened, and why not.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import trustme

from continuity.adapters.imap_append import ImapTarget, MailboxSession
from continuity.adapters.imap_auth import login_from_settings
from continuity.config.replay import ReplaySettings
from continuity.config.settings import Settings
from continuity.core.failover import FailoverEvent, FailoverState
from continuity.core.imap_syntax import internal_date
from continuity.core.mail_folders import Flag
from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import RunStatus
from continuity.services.app import Running
from continuity.services.replay_check import check_replay
from tests.support.appliance import clean_env, settings_data
from tests.support.imap_mailbox import Copy, duplicates, read_mailbox
from tests.support.primary import PrimaryStandIn
from tests.support.replay import USERS, master_login, order, replay_overrides, wait_for_run, wait_for_state
from tests.support.token_endpoint import TokenEndpoint
from tests.support.webmail import deliver, mail, webmail_appliance

pytestmark = pytest.mark.slow

TENANT = "0b5c2a7e-4a4e-4c1f-9d3e-2f7d8c1a9b00"
CLIENT = "6f1d3c2b-8a9e-4b7c-a1d2-e3f4a5b6c7d8"
SECRET = "app-secret~value"
QUEUED = {ItemState.PENDING, ItemState.DELIVERING, ItemState.DEFERRED}


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[TokenEndpoint]:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "entra-ca.pem"))
    server = TokenEndpoint(ca, TENANT, CLIENT, SECRET, subject="continuity-app@example.com")
    server.start(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def oauth_primary(endpoint: TokenEndpoint) -> Iterator[PrimaryStandIn]:
    stand_in = PrimaryStandIn(["example.com", "example.net"], dict(USERS), oauth2_key=endpoint.public_key_pem)
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.close()


def _entra(endpoint: TokenEndpoint, tmp_path: Path) -> dict[str, Any]:
    return {
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "client_secret": SECRET,
        "authority": endpoint.authority,
        "ca_file": str(tmp_path / "entra-ca.pem"),
        "timeout": 10,
    }


def _overrides(primary: PrimaryStandIn, endpoint: TokenEndpoint, tmp_path: Path) -> dict[str, Any]:
    # No master user: the app's token is the only way in.
    settings = replay_overrides(primary, replay={"auth": "xoauth2", "entra": _entra(endpoint, tmp_path)})
    settings["replay"].pop("master_user")
    settings["replay"].pop("master_password")
    return settings


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


async def test_full_cycle_over_xoauth2(tmp_path: Path, endpoint: TokenEndpoint, oauth_primary: PrimaryStandIn) -> None:
    primary = oauth_primary
    async with webmail_appliance(tmp_path / "data", **_overrides(primary, endpoint, tmp_path)) as running:
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
    assert len(endpoint.issued) >= 1 and endpoint.refusals == 0


async def test_an_expired_token_is_renewed(
    tmp_path: Path, endpoint: TokenEndpoint, oauth_primary: PrimaryStandIn
) -> None:
    # The endpoint says the token lives an hour; its JWT says two seconds (revoked early, clock skew).
    endpoint.lifetime = 2
    replay = ReplaySettings.model_validate({"auth": "xoauth2", "entra": _entra(endpoint, tmp_path)})
    login = login_from_settings(replay)
    assert login is not None
    tls = ssl.create_default_context(cafile=str(oauth_primary.ca_file))
    target = ImapTarget("127.0.0.1", oauth_primary.imaps_port, tls, 10.0, login)
    session = await MailboxSession.open(target, "alice@example.com")
    await session.close()
    assert len(endpoint.issued) == 1
    await asyncio.sleep(3)
    session = await MailboxSession.open(target, "alice@example.com")  # refused once, then a new token
    assert await session.folders() == ["INBOX"]
    await session.close()
    assert len(endpoint.issued) == 2
    log = (oauth_primary.workdir / "dovecot" / "dovecot.log").read_text()
    assert "oauth2 failed" in log, log


async def test_a_revoked_app_stops_the_replay_and_loses_nothing(
    tmp_path: Path, endpoint: TokenEndpoint, oauth_primary: PrimaryStandIn
) -> None:
    primary = oauth_primary
    async with webmail_appliance(tmp_path / "data", **_overrides(primary, endpoint, tmp_path)) as running:
        await order(running, FailoverEvent.OPERATOR_FAILOVER)
        for number in range(3):
            await deliver(running, mail(f"Revoked {number}", f"message {number}"))
        endpoint.revoked = True
        primary.revoke_oauth2_key()
        await order(running, FailoverEvent.OPERATOR_FAILBACK)
        deadline = time.monotonic() + 30
        while True:
            run = await running.store.replay.latest_run()
            if run is not None and "gave up" in run.detail:
                break
            assert time.monotonic() < deadline, f"the replay did not stop: {run}"
            await asyncio.sleep(0.1)
        assert "AADSTS7000215" in run.detail and "token endpoint refused the app" in run.detail, run.detail
        assert SECRET not in run.detail
        states = [item.state for item in await running.store.replay.items(run.id)]
        assert len(states) == 3 and set(states) <= QUEUED, states
        assert await _mailbox(primary, "alice@example.com") == []
        assert running.failover is not None and running.failover.controller.record.state is FailoverState.RESTORING
        # The app is trusted again: the next passes deliver each message once.
        endpoint.revoked = False
        primary.trust_oauth2_key()
        await wait_for_run(running, RunStatus.COMPLETED, 60)
    alice = await _mailbox(primary, "alice@example.com")
    assert sorted(c.subject for c in alice) == ["Revoked 0", "Revoked 1", "Revoked 2"] and duplicates(alice) == []


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


async def test_replay_check_over_xoauth2(
    tmp_path: Path, endpoint: TokenEndpoint, oauth_primary: PrimaryStandIn
) -> None:
    primary = oauth_primary
    # Exchange has a Sent Items folder in every mailbox; the stand-in's alice gets one, bob not.
    await asyncio.to_thread(_create_folder, primary, "alice@example.com", "Sent Items")
    settings = settings_data(tmp_path / "data", **_overrides(primary, endpoint, tmp_path))
    ready = _run_check(tmp_path, settings, "--mailbox", "alice@example.com")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "alice@example.com" in ready.stdout and "ok" in ready.stdout
    missing = _run_check(tmp_path, settings, "--json", "--mailbox", "bob@example.com")
    assert missing.returncode == 1, missing.stdout + missing.stderr
    [row] = json.loads(missing.stdout)
    assert row["mailbox"] == "bob@example.com" and row["step"] == "folder" and "'Sent Items' missing" in row["detail"]
    # A wrong secret: the endpoint's AADSTS code, for every mailbox.
    settings["replay"]["entra"]["client_secret"] = "wrong"
    refused = _run_check(tmp_path, settings, "--json", "--mailbox", "alice@example.com")
    assert refused.returncode == 1
    [row] = json.loads(refused.stdout)
    assert row["step"] == "token" and "AADSTS7000215" in row["detail"] and "wrong" not in row["detail"]


async def test_replay_check_names_a_tls_problem(
    tmp_path: Path, endpoint: TokenEndpoint, oauth_primary: PrimaryStandIn
) -> None:
    data = settings_data(tmp_path / "data", **_overrides(oauth_primary, endpoint, tmp_path))
    data["replay"]["ca_file"] = str(tmp_path / "entra-ca.pem")  # not the CA of the primary's certificate
    [check] = await check_replay(Settings(**data), ["alice@example.com"])
    assert not check.ok and check.step == "connect" and "TLS problem" in check.detail, check


def _create_folder(primary: PrimaryStandIn, mailbox: str, folder: str) -> None:
    context = ssl.create_default_context(cafile=str(primary.ca_file))
    with imaplib.IMAP4_SSL("127.0.0.1", primary.imaps_port, ssl_context=context) as client:
        client.login(master_login(mailbox), primary.master_password)
        client.create(f'"{folder}"')
