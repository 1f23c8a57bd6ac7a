"""Exchange Online's per-mailbox throttling and size limit, played by a real proxy in front of Dovecot.

The proxy (tests.support.imap_throttle) gives alice's mailbox a budget of one APPEND per
second and answers sooner ones ``NO [THROTTLED] Request is throttled. Suggested Backoff
Time: N milliseconds`` as Exchange Online does. The replay pauses alice alone for the
suggested backoff, bob's mail goes on at full speed, the global window is untouched, and
every copy arrives exactly once with ``$MDNSent`` set. A message over ``max_message_size``
fails at once with the reason and is never sent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.core.failover import FailoverEvent, FailoverState
from continuity.core.mail_folders import Flag
from continuity.core.replay_journal import ItemState
from tests.support.imap_mailbox import Copy, duplicates, read_mailbox
from tests.support.imap_throttle import ThrottlingImapProxy
from tests.support.primary import PrimaryStandIn
from tests.support.replay import master_login, order, replay_overrides, wait_for_state
from tests.support.webmail import deliver, mail, webmail_appliance

pytestmark = pytest.mark.slow

ALICE, BOB = "alice@example.com", "bob@example.com"
EACH = 6


@pytest.fixture
async def proxy(primary: PrimaryStandIn) -> AsyncIterator[ThrottlingImapProxy]:
    server = ThrottlingImapProxy(primary.imaps_port, primary.cert_file, primary.key_file, primary.ca_file)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _copies(primary: PrimaryStandIn, mailbox: str) -> list[Copy]:
    return await read_mailbox(primary.imaps_port, primary.ca_file, master_login(mailbox), primary.master_password)


async def test_a_throttled_mailbox_slows_alone_and_obeys_the_suggested_backoff(
    tmp_path: Path, primary: PrimaryStandIn, proxy: ThrottlingImapProxy
) -> None:
    proxy.mailbox_rate, proxy.limited = 1.0, {ALICE}
    overrides = replay_overrides(
        primary,
        primary={"imap_port": proxy.port},
        replay={"concurrency": 2, "connections_per_mailbox": 1, "mailbox_rate": 0, "batch": 3},
    )
    async with webmail_appliance(tmp_path / "data", **overrides) as running:
        assert running.failover is not None and running.failover.replay is not None
        await order(running, FailoverEvent.OPERATOR_FAILOVER)
        for number in range(EACH):
            await deliver(running, mail(f"For alice {number:02d}", f"a{number}"), [ALICE])
            await deliver(running, mail(f"For bob {number:02d}", f"b{number}", to=BOB), [BOB])
        started = time.monotonic()
        await order(running, FailoverEvent.OPERATOR_FAILBACK)
        await wait_for_state(running, FailoverState.NORMAL, 120)
        replayer = running.failover.replay
    refused = proxy.mailbox_refused.get(ALICE, [])
    assert refused, "alice's budget was never exceeded"
    assert BOB not in proxy.mailbox_refused
    # Each refusal's suggested backoff was obeyed: alice's next APPEND came no sooner.
    attempts = sorted([when for when, _ in refused] + proxy.mailbox_forwarded[ALICE])
    for when, backoff in refused:
        later = [moment for moment in attempts if moment > when]
        assert not later or later[0] >= when + backoff - 0.02, (when, backoff, later[0] - when)
    # Bob went on meanwhile: all his copies arrived before alice's last, in a fraction of her time.
    bob_done = max(proxy.mailbox_forwarded[BOB]) - started
    alice_done = max(proxy.mailbox_forwarded[ALICE]) - started
    assert bob_done < alice_done, (bob_done, alice_done)
    assert alice_done >= EACH - 1 - 0.1  # one per second at most
    # Only alice was paused: the global window never saw a throttle.
    assert replayer.flow.throttles == 0, replayer.flow.describe()
    assert replayer.mailbox_flows.throttles == len(refused)
    for mailbox, prefix in ((ALICE, "For alice"), (BOB, "For bob")):
        copies = await _copies(primary, mailbox)
        assert duplicates(copies) == []
        assert sorted(copy.subject for copy in copies) == [f"{prefix} {number:02d}" for number in range(EACH)]
        assert all("$MDNSent" in copy.flags for copy in copies), [copy.flags for copy in copies]


async def test_a_message_over_max_message_size_fails_at_once_and_is_never_sent(
    tmp_path: Path, primary: PrimaryStandIn, proxy: ThrottlingImapProxy
) -> None:
    overrides = replay_overrides(primary, primary={"imap_port": proxy.port}, replay={"max_message_size": 4096})
    async with webmail_appliance(tmp_path / "data", **overrides) as running:
        assert running.failover is not None
        await order(running, FailoverEvent.OPERATOR_FAILOVER)
        await deliver(running, mail("Small", "fits"), [ALICE])
        await deliver(running, mail("Large", "x" * 8000), [ALICE])
        await order(running, FailoverEvent.OPERATOR_FAILBACK)
        await wait_for_state(running, FailoverState.NORMAL, 60)
        run = await running.store.replay.latest_run()
        assert run is not None
        failed = await running.store.replay.items(run.id, [ItemState.FAILED])
    assert [item.subject for item in failed] == ["Large"]
    assert failed[0].attempts == 1 and "max_message_size" in failed[0].detail, failed[0]
    assert all(size < 4096 for size in proxy.appended_bytes[ALICE])  # never sent
    assert [copy.subject for copy in await _copies(primary, ALICE)] == ["Small"]


async def test_flagged_dropped_by_the_server_is_set_again_and_mdnsent_goes_with_the_append(
    tmp_path: Path, primary: PrimaryStandIn, proxy: ThrottlingImapProxy
) -> None:
    proxy.drop_flagged = True
    overrides = replay_overrides(primary, primary={"imap_port": proxy.port})
    async with webmail_appliance(tmp_path / "data", **overrides) as running:
        await order(running, FailoverEvent.OPERATOR_FAILOVER)
        for subject in ("Flagged", "Plain"):
            await deliver(running, mail(subject, subject.lower()), [ALICE])
        page = (await running.store.webmail.page(ALICE, "INBOX", 0, 50))[0]
        [flagged] = [message.id for message in page if message.subject == "Flagged"]
        await running.store.webmail.set_flag(ALICE, [flagged], Flag.FLAGGED, True)
        await order(running, FailoverEvent.OPERATOR_FAILBACK)
        await wait_for_state(running, FailoverState.NORMAL, 60)
    # The flags went with the APPEND (the proxy took \Flagged out of it), and STORE set it again.
    assert any(b"\\Flagged" in line for line in proxy.append_lines)
    assert all(b"$MDNSent" in line for line in proxy.append_lines)
    copies = {copy.subject: copy.flags for copy in await _copies(primary, ALICE)}
    assert copies["Flagged"] == frozenset({"\\Flagged", "$MDNSent"}), copies
    assert copies["Plain"] == frozenset({"$MDNSent"}), copies
