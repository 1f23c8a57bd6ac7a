"""Automatic failover against a primary stand-in (Postfix + Dovecot + HTTPS health) and BIND9.

Stop the primary: the appliance fails over by itself and the MX served by BIND points at
the standby. Restart it: nothing switches back before the hold-down; then the appliance
restores and fails back. In gateway mode, mail is relayed to the primary while it serves
and queued for replay once it does not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import sqlite3
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioimaplib
import pytest

from continuity.core.failover import FailoverState
from continuity.core.models import MessageState
from continuity.services.app import Running, start, stop
from tests.conftest import provision_standard_mailboxes
from tests.support.appliance import ServeProcess, make_settings
from tests.support.bind import BindServer, TsigKey, zone_text
from tests.support.messages import make_message
from tests.support.primary import MASTER_USER, PrimaryStandIn

pytestmark = pytest.mark.slow

PRIMARY_MX = "10 mail.example.com."
STANDBY_MX = "10 standby.example.com."
USERS = {"canary@example.com": "canary-pw", "bob@example.com": "bob-pw"}
POLICY = {
    "interval": 0.5,
    "probe_timeout": 2.0,
    "failures_to_down": 3,
    "down_after": 2.0,
    "successes_to_up": 2,
    "hold_down": 5.0,
    "suspect_after": 1,
}


@pytest.fixture
def primary() -> Iterator[PrimaryStandIn]:
    stand_in = PrimaryStandIn(["example.com", "example.net"], USERS)
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.close()


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[tuple[BindServer, TsigKey]]:
    key = TsigKey.generate()
    records = [f"@ IN MX {PRIMARY_MX}", "mail IN A 127.0.0.2", "standby IN A 127.0.0.3"]
    server = BindServer(tmp_path / "bind", {"example.com": zone_text("example.com", records, ttl=60)}, key)
    server.start()
    try:
        yield server, key
    finally:
        server.stop()


async def _wait_for(appliance: Running, state: FailoverState, timeout: float) -> float:
    """Wait until the stored state is `state`; returns the monotonic time it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await appliance.store.failover.load()).state is state:
            return time.monotonic()
        await asyncio.sleep(0.1)
    record = await appliance.store.failover.load()
    raise AssertionError(f"state {state.value} not reached in {timeout}s; it is {record.state.value}: {record}")


@pytest.fixture
async def dns_appliance(
    tmp_path: Path, primary: PrimaryStandIn, bind: tuple[BindServer, TsigKey]
) -> AsyncIterator[Running]:
    server, key = bind
    settings = primary.settings("canary@example.com")
    settings["monitor"].update(POLICY)
    running = await start(
        make_settings(
            tmp_path / "data",
            domains=["example.com"],
            **settings,
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
        )
    )
    try:
        yield running
    finally:
        await stop(running, grace=2)


async def test_outage_fails_over_automatically_and_the_hold_down_delays_failback(
    dns_appliance: Running,
    primary: PrimaryStandIn,
    bind: tuple[BindServer, TsigKey],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="continuity.monitor")
    server, _key = bind
    assert dns_appliance.failover is not None and dns_appliance.failover.monitor is not None
    monitor = dns_appliance.failover.monitor
    deadline = time.monotonic() + 20
    while monitor.cycles < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert [result.up for result in monitor.last_results] == [True] * 6, monitor.last_results

    stopped = time.monotonic()
    await asyncio.to_thread(primary.stop)
    failed_over = await _wait_for(dns_appliance, FailoverState.FAILED_OVER, 30)
    assert failed_over - stopped >= POLICY["down_after"]
    assert server.query("example.com", "MX") == [STANDBY_MX]

    restarted = time.time()
    await asyncio.to_thread(primary.start)
    # During the hold-down nothing switches back.
    await asyncio.sleep(POLICY["hold_down"] - 1.0)
    assert (await dns_appliance.store.failover.load()).state is FailoverState.FAILED_OVER
    assert server.query("example.com", "MX") == [STANDBY_MX]
    await _wait_for(dns_appliance, FailoverState.NORMAL, 40)
    assert server.query("example.com", "MX") == [PRIMARY_MX]

    history = await dns_appliance.store.failover.history()
    states = [entry.state for entry in history]
    assert states.count(FailoverState.FAILING_OVER) == 1 and states.count(FailoverState.RESTORING) == 1
    restoring = next(entry for entry in history if entry.state is FailoverState.RESTORING)
    # The primary cannot have been seen healthy before its restart began.
    assert restoring.at - restarted >= POLICY["hold_down"]
    down = next(entry for entry in history if entry.state is FailoverState.FAILING_OVER)
    assert down.actor == "monitor" and "primary is down" in down.reason
    assert (await dns_appliance.store.audit.verify()).ok
    # One decision sentence per cycle, saying what was seen and what was decided.
    sentences = [r.getMessage() for r in caplog.records if r.getMessage().startswith("monitor: ")]
    assert monitor.cycles - 1 <= len(sentences) <= monitor.cycles  # a cycle may be under way
    assert any("failing over to the standby" in s for s in sentences)
    assert any("FAILED_OVER: standby serves mail" in s for s in sentences)
    # hold_down 5 s at an interval of 0.5 s: ten intervals, eleven good cycles.
    assert any("stable needs 11 over 5s" in s for s in sentences)


async def _imap_subjects(primary: PrimaryStandIn, mailbox: str) -> list[str]:
    context = ssl.create_default_context(cafile=str(primary.ca_file))
    client = aioimaplib.IMAP4_SSL(host="127.0.0.1", port=primary.imaps_port, ssl_context=context)
    await client.wait_hello_from_server()
    login = await client.login(f"{mailbox}*{MASTER_USER}", primary.master_password)
    assert login.result == "OK", login
    await client.select("INBOX")
    response = await client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    await client.logout()
    return [
        line.decode().strip() for line in response.lines if isinstance(line, bytes | bytearray) and b"Subject:" in line
    ]


def _send(appliance: Running, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", appliance.smtp_address.port, timeout=10) as client:
        client.sendmail("sender@outside.test", ["bob@example.com"], make_message(subject=subject))


async def _state_of(appliance: Running, subject: str) -> MessageState:
    entries = [entry for entry in await appliance.store.messages.list() if entry.subject == subject]
    assert len(entries) == 1
    return entries[0].state


async def test_gateway_relays_while_the_primary_serves_and_queues_once_it_fails(
    tmp_path: Path, primary: PrimaryStandIn
) -> None:
    settings: dict[str, Any] = primary.settings("canary@example.com")
    settings["monitor"].update(POLICY)
    appliance = await start(
        make_settings(
            tmp_path / "data",
            **settings,
            failover={"mode": "gateway", "relay_interval": 0.2, "relay_retry": 0.5},
        )
    )
    try:
        await provision_standard_mailboxes(appliance)
        await asyncio.to_thread(_send, appliance, "while the primary serves")
        deadline = time.monotonic() + 15
        while await _state_of(appliance, "while the primary serves") is not MessageState.RELAYED:
            assert time.monotonic() < deadline, "not relayed"
            await asyncio.sleep(0.1)
        # Postfix delivers to Dovecot in the background; read it with the master user.
        while "Subject: while the primary serves" not in await _imap_subjects(primary, "bob@example.com"):
            assert time.monotonic() < deadline + 15, "relayed, but never reached the primary's mailbox"
            await asyncio.sleep(0.2)
        assert await appliance.store.messages.count() == 0  # relayed mail is never replayed
        # ... and the standby mailbox keeps its copy.
        with sqlite3.connect(tmp_path / "data" / "continuity.db") as connection:
            copies = connection.execute(
                "SELECT COUNT(*) FROM mailbox_messages m JOIN messages q USING (queue_id)"
                " WHERE m.mailbox = 'bob@example.com' AND q.subject = 'while the primary serves'"
            ).fetchone()[0]
        assert copies == 1

        await asyncio.to_thread(primary.stop)
        # Accepted before the outage is declared: it cannot be relayed, and is queued for replay at failover.
        await asyncio.to_thread(_send, appliance, "during the outage")
        assert await _state_of(appliance, "during the outage") is MessageState.RELAY
        await _wait_for(appliance, FailoverState.FAILED_OVER, 30)
        assert await _state_of(appliance, "during the outage") is MessageState.QUEUED
        await asyncio.to_thread(_send, appliance, "after the failover")
        assert await _state_of(appliance, "after the failover") is MessageState.QUEUED
        assert await _state_of(appliance, "while the primary serves") is MessageState.RELAYED
        switched = next(e for e in await appliance.store.audit.list() if e.record.action == "failover.switch_succeeded")
        evidence = json.loads(switched.record.details_json)["evidence"]
        assert evidence["mode"] == "gateway" and evidence["to"] == "standby" and evidence["requeued"] == 1

        # Back up: after the hold-down the replay step starts; with mail waiting and no replayer installed
        # it stays RESTORING rather than pretend.
        await asyncio.to_thread(primary.start)
        await _wait_for(appliance, FailoverState.RESTORING, 30)
        await asyncio.sleep(1.5)
        assert (await appliance.store.failover.load()).state is FailoverState.RESTORING
        assert await appliance.store.messages.count() == 2
    finally:
        await stop(appliance, grace=2)


def test_probe_command_runs_every_probe_once(tmp_path: Path, primary: PrimaryStandIn) -> None:
    settings: dict[str, Any] = primary.settings("canary@example.com")
    settings["monitor"]["canary_address"] = "canary@example.com"
    server = ServeProcess(tmp_path, **settings)
    result = server.cli("probe")
    for name in ("smtp", "imap", "https:/owa/healthcheck.htm", "https:/mapi/healthcheck.htm", "canary"):
        assert any(
            line.split("│")[1].strip() == name and "│ up " in line for line in result.stdout.splitlines() if "│" in line
        ), (
            name,
            result.stdout,
        )
    assert "STARTTLS, certificate valid" in result.stdout and "round trip in" in result.stdout
    primary.stop()
    down = server.cli("probe", check=False)
    assert down.returncode == 1 and "down" in down.stdout
