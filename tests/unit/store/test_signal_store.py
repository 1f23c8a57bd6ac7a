"""The signals' and feeds' tables on a real SQLite file and blob directory."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.core.baseline import ContactKind, ContactObservation, HourTotals, SendEvent
from continuity.core.models import AcceptedRecipient, IncomingMessage, Mailbox, MessageState, RecipientState
from continuity.core.signals import MailboxStatus, Response, Severity, Signal, SignalKind
from continuity.errors import NotFoundError
from continuity.store.sqlite import SqliteStore, open_sqlite_store

T0 = 1_800_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs", recover=True)
    await opened.mailboxes.upsert(Mailbox("alice@example.com", "Alice", aliases=("a@example.com",)))
    await opened.mailboxes.upsert(Mailbox("bob@example.com", "Bob"))
    try:
        yield opened
    finally:
        await opened.close()


def _message(
    queue_id: str,
    state: MessageState,
    *,
    sender: str = "a@example.com",
    recipients: tuple[AcceptedRecipient, ...] = (AcceptedRecipient("partner@outside.test", ""),),
    content: bytes = b"Subject: s\r\n\r\nbody\r\n",
    at: float = T0,
) -> IncomingMessage:
    return IncomingMessage(
        queue_id=queue_id,
        sender=sender,
        recipients=recipients,
        content=content,
        trace_header=b"Received: test\r\n",
        received_at=at,
        client_address="192.0.2.1",
        client_helo="exchange.example.com",
        message_id=f"<{queue_id}@x>",
        subject="s",
        sha256=hashlib.sha256(content).hexdigest(),
        state=state,
    )


async def _folders(store: SqliteStore, mailbox: str) -> dict[str, int]:
    return {folder.name: folder.total for folder in await store.webmail.folders(mailbox)}


def _signal(kind: SignalKind, mailbox: str = "alice@example.com", key: str = "") -> Signal:
    return Signal(kind, mailbox, Severity.HIGH, "summary", ("one", "two"), T0, "relay", "Q1", key)


async def test_signals_and_mailbox_states(store: SqliteStore) -> None:
    signals = store.signals
    first = await signals.record(_signal(SignalKind.RATE_SPIKE), (Response.CONTAIN,))
    await signals.record(_signal(SignalKind.RULE_FORWARD, key="x@exfil.test"), ())
    await signals.record(_signal(SignalKind.RATE_SPIKE, mailbox="bob@example.com"), ())
    listed = await signals.list(mailbox="alice@example.com")
    assert [item.signal.kind for item in listed] == [SignalKind.RULE_FORWARD, SignalKind.RATE_SPIKE]
    assert listed[0].signal.key == "x@exfil.test" and listed[1].responses == (Response.CONTAIN,)
    assert listed[1].signal.evidence == ("one", "two") and first.id == listed[1].id
    assert (await signals.state("alice@example.com")).status is MailboxStatus.NORMAL
    await signals.set_status("alice@example.com", MailboxStatus.CONTAINED, "rate_spike", T0)
    # A contained mailbox is never merely flagged by a later, weaker signal.
    kept = await signals.set_status("alice@example.com", MailboxStatus.FLAGGED, "weaker", T0 + 1)
    assert kept.status is MailboxStatus.CONTAINED and kept.reason == "rate_spike"
    before, cleared = await signals.clear("ALICE@example.com", "cli:root", T0 + 10)
    assert before.contained and cleared == 2
    after = await signals.state("alice@example.com")
    assert after.status is MailboxStatus.NORMAL and after.cleared_at == T0 + 10 and after.cleared_by == "cli:root"
    assert await signals.list(mailbox="alice@example.com", open_only=True) == []
    assert len(await signals.list(open_only=True)) == 1
    assert [state.mailbox for state in await signals.states()] == ["alice@example.com"]
    assert len(await signals.since(T0)) == 3


async def test_history_for_the_baselines(store: SqliteStore) -> None:
    signals = store.signals
    await signals.add_sends(
        [
            ("alice@example.com", SendEvent(T0, 2, 1)),
            ("alice@example.com", SendEvent(T0 + 60, 3, 0)),
            ("alice@example.com", SendEvent(T0 + 7200, 1, 1)),
            ("bob@example.com", SendEvent(T0, 50, 50)),
        ]
    )
    hours = sorted(await signals.hourly("alice@example.com", T0 - 1, T0 + 86400), key=lambda h: -h.messages)
    assert hours == [HourTotals(2, 5, 1), HourTotals(1, 1, 1)]
    assert [event.at for event in await signals.recent_sends("alice@example.com", T0 + 30)] == [T0 + 60, T0 + 7200]
    await signals.add_contacts(
        [
            ContactObservation("alice@example.com", "p@partner.test", ContactKind.SENT, T0),
            ContactObservation("alice@example.com", "p@partner.test", ContactKind.SENT, T0 + 5),
            ContactObservation("alice@example.com", "q@partner.test", ContactKind.RECEIVED, T0),
            ContactObservation("alice@example.com", "x@exfil.test", ContactKind.FORWARD, T0),
        ]
    )
    known = await signals.contacts("alice@example.com", (ContactKind.SENT, ContactKind.RECEIVED))
    assert known == {"p@partner.test", "q@partner.test"}
    assert await signals.contacts("alice@example.com", (ContactKind.FORWARD,)) == {"x@exfil.test"}
    await signals.add_bounces([("alice@example.com", T0, "gone@outside.test")])
    assert await signals.recent_bounces("alice@example.com", T0) == [T0]
    assert await signals.prune(T0 + 100, T0 + 1) == 6
    assert await signals.contacts("alice@example.com", (ContactKind.SENT,)) == {"p@partner.test"}
    assert await signals.recent_sends("alice@example.com", 0) == [SendEvent(T0 + 7200, 1, 1)]


async def test_relayed_mail_is_queued_filed_in_sent_and_mirrored_when_done(store: SqliteStore) -> None:
    recipients = (AcceptedRecipient("p@partner.test", ""), AcceptedRecipient("q@partner.test", ""))
    await store.messages.commit([_message("Q1", MessageState.OUTGOING, recipients=recipients)])
    assert (await _folders(store, "alice@example.com")).get("Sent") == 1
    assert (await _folders(store, "alice@example.com")).get("INBOX", 0) == 0
    due = await store.feeds.outgoing_due(T0, 10)
    assert [(item.queue_id, item.mailbox, item.recipients) for item in due] == [
        ("Q1", "alice@example.com", ("p@partner.test", "q@partner.test"))
    ]
    done = await store.feeds.finish_attempt("Q1", [("p@partner.test", RecipientState.DELIVERED)], T0 + 60, "4xx")
    assert not done
    assert await store.feeds.outgoing_due(T0 + 30, 10) == []
    again = await store.feeds.outgoing_due(T0 + 60, 10)
    assert again[0].recipients == ("q@partner.test",) and again[0].attempts == 1
    assert await store.feeds.finish_attempt("Q1", [("q@partner.test", RecipientState.FAILED)], T0 + 99, "")
    entry = await store.messages.get("Q1")
    assert entry is not None and entry.state is MessageState.MIRRORED
    assert await store.messages.count() == 0


async def test_held_outbound_mail_is_released_or_deleted(store: SqliteStore) -> None:
    await store.messages.commit(
        [
            _message("H1", MessageState.CONTAINED, content=b"Subject: one\r\n\r\n1\r\n"),
            _message("H2", MessageState.CONTAINED, content=b"Subject: two\r\n\r\n2\r\n"),
        ]
    )
    assert (await _folders(store, "alice@example.com")).get("Sent", 0) == 0
    await store.signals.set_status("alice@example.com", MailboxStatus.CONTAINED, "rate_spike: sends", T0)
    held = await store.feeds.held(mailbox="alice@example.com")
    assert {item.entry.queue_id for item in held} == {"H1", "H2"}
    assert all(item.reason == "mailbox contained: rate_spike: sends" for item in held)
    released = await store.feeds.release("H1")
    assert released.queue_id == "H1"
    assert [item.queue_id for item in await store.feeds.outgoing_due(T0 + 10**9, 10)] == ["H1"]
    assert (await _folders(store, "alice@example.com")).get("Sent") == 1
    with pytest.raises(NotFoundError):
        await store.feeds.release("H1")
    body = store.blobs.path_for(hashlib.sha256(b"Subject: two\r\n\r\n2\r\n").hexdigest())
    assert body.exists()
    await store.feeds.delete("H2")
    assert await store.messages.get("H2") is None and not body.exists()


async def test_the_window_prunes_mirrored_and_relayed_copies_and_keeps_shared_bodies(store: SqliteStore) -> None:
    shared = b"Subject: same bytes\r\n\r\nsame\r\n"
    inbox = (AcceptedRecipient("bob@example.com", "bob@example.com"),)
    await store.messages.commit(
        [
            _message("M1", MessageState.MIRRORED, sender="p@partner.test", recipients=inbox, content=shared, at=T0),
            _message("R1", MessageState.RELAYED, sender="p@partner.test", recipients=inbox, at=T0),
            _message("Q1", MessageState.QUEUED, sender="p@partner.test", recipients=inbox, content=shared, at=T0),
            _message("M2", MessageState.MIRRORED, content=b"Subject: new\r\n\r\nnew\r\n", at=T0 + 86400),
        ]
    )
    assert (await _folders(store, "bob@example.com")).get("INBOX") == 3
    report = await store.feeds.prune_window(T0 + 3600)
    assert report.messages == 2
    assert await store.messages.get("M1") is None and await store.messages.get("R1") is None
    assert await store.messages.get("Q1") is not None and await store.messages.get("M2") is not None
    # The queued message still needs the body it shares with the pruned copy.
    assert store.blobs.path_for(hashlib.sha256(shared).hexdigest()).exists()
    assert (await _folders(store, "bob@example.com")).get("INBOX") == 1
    assert (await store.feeds.prune_window(T0 + 3600)).messages == 0
