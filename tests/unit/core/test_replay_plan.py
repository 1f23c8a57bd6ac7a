"""The replay plan: folders on the primary, flags, kinds, channels, the marker and the wire bytes."""

from __future__ import annotations

from dataclasses import replace

from continuity.core.replay_plan import (
    Candidate,
    Channel,
    FolderMap,
    ItemKind,
    join_path,
    marker_value,
    parse_marker_fields,
    plan_item,
    wire_message,
)

BASE = Candidate(
    row_id=7, mailbox="alice@example.com", queue_id="01M82GMNKSNSYZ2Z", folder="INBOX", flags="\\Seen",
    expunged=False, client_helo="mta.outside.test", client_address="192.0.2.1", sender="sam@outside.test",
    message_id="<1@outside.test>", subject="Hello", sha256="ab" * 32, size=100, received_at=1_772_719_387.0,
    recipients=("a.example@example.com",),
)  # fmt: skip
FOLDERS = FolderMap()


def test_standard_folders_map_to_exchanges() -> None:
    for standby, primary in (("INBOX", "INBOX"), ("Sent", "Sent Items"), ("Drafts", "Drafts"),
                             ("Trash", "Deleted Items"), ("Junk", "Junk Email")):  # fmt: skip
        assert FOLDERS.target(standby, expunged=False) == (primary,)


def test_deleted_and_emptied_go_to_deleted_items_user_folders_keep_their_name() -> None:
    assert FOLDERS.target("Projects", expunged=True) == ("Deleted Items",)
    assert FOLDERS.target("Projects", expunged=False) == ("Projects",)
    assert FolderMap(user_parent="INBOX").target("Projects", expunged=False) == ("INBOX", "Projects")


def test_join_path_keeps_a_delimiter_inside_a_name_from_nesting() -> None:
    assert join_path(("INBOX", "Q1.2026"), ".") == "INBOX.Q1_2026"
    assert join_path(("Q1/2026",), "/") == "Q1_2026"
    assert join_path(("Sent Items",), None) == "Sent Items"


def test_received_mail_keeps_folder_flags_and_arrival_time() -> None:
    item = plan_item(replace(BASE, folder="Projects", flags="\\Seen \\Flagged"), FOLDERS, smtp_for_received=False)
    assert item.kind is ItemKind.RECEIVED and item.channel is Channel.IMAP
    assert item.folder == ("Projects",) and item.flags == ("\\Seen", "\\Flagged")
    assert item.internal_date == BASE.received_at and item.recipients == ("a.example@example.com",)


def test_webmail_mail_goes_to_sent_items_and_drafts() -> None:
    sent = plan_item(replace(BASE, client_helo="webmail", folder="Sent"), FOLDERS, smtp_for_received=True)
    assert (sent.kind, sent.channel, sent.folder) == (ItemKind.SENT, Channel.IMAP, ("Sent Items",))
    draft = plan_item(replace(BASE, client_helo="webmail", folder="Drafts"), FOLDERS, smtp_for_received=False)
    assert draft.kind is ItemKind.DRAFT and draft.flags == ("\\Seen", "\\Draft")
    notice = plan_item(replace(BASE, client_helo="webmail", folder="INBOX"), FOLDERS, smtp_for_received=True)
    assert notice.kind is ItemKind.LOCAL and notice.channel is Channel.IMAP


def test_smtp_replay_lands_in_the_inbox_without_flags() -> None:
    item = plan_item(replace(BASE, folder="Projects"), FOLDERS, smtp_for_received=True)
    assert (item.channel, item.folder, item.flags) == (Channel.SMTP, ("INBOX",), ())


def test_unsafe_flags_are_dropped_and_noted() -> None:
    item = plan_item(replace(BASE, flags="\\Seen bad)flag \\Bogus"), FOLDERS, smtp_for_received=False)
    assert item.flags == ("\\Seen",) and "unsafe flags dropped" in item.note


def test_wire_bytes_carry_the_marker_then_the_trace_header_then_the_body() -> None:
    body = b"Subject: Hello\r\n\r\nHi\r\n"
    wire = wire_message("Q1", "cd" * 32, b"Received: from x\r\n", body)
    assert wire.startswith(b"X-Continuity-Replay: Q1; sha256=" + b"cd" * 32 + b"\r\nReceived: from x\r\n")
    assert wire.endswith(body)
    assert parse_marker_fields(wire.split(b"\r\n\r\n")[0] + b"\r\n") == [marker_value("Q1", "cd" * 32)]
    folded = b"X-Continuity-Replay: Q1;\r\n sha256=ef\r\nOther: x\r\n\r\n"
    assert parse_marker_fields(folded) == ["Q1; sha256=ef"]
