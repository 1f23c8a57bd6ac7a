"""The pure sync plan: creations, updates, disabling instead of deleting, re-enabling, groups, skips."""

from __future__ import annotations

from dataclasses import replace

from continuity.core.models import Mailbox
from continuity.directory.core.diff import ChangeKind, plan_sync
from continuity.directory.core.links import DirectoryLink
from continuity.directory.core.proxy import split_proxy_addresses
from continuity.directory.core.records import DirectoryUser, SourceBatch

DOMAINS = ["example.com"]
ALICE = DirectoryUser("id-a", "Alice@Example.com", "Alice", ("a@example.com", "alice@tenant.onmicrosoft.test"))
BOB = DirectoryUser("id-b", "bob@example.com", "Bob", alternate_email="bob@outside.test")


def _kinds(batch: SourceBatch, links: dict[str, DirectoryLink], boxes: dict[str, Mailbox]) -> list[tuple[str, str]]:
    return [(change.kind.value, change.address) for change in plan_sync(batch, links, boxes, DOMAINS).changes]


def test_proxy_addresses_primary_aliases_and_other_types() -> None:
    values = ["smtp:alias@example.com", "X500:/o=Org/cn=alice", "SMTP:alice@example.com", "sip:alice@example.com"]
    assert split_proxy_addresses(values) == ("alice@example.com", ["alias@example.com"])
    assert split_proxy_addresses(["smtp:only-alias@example.com"]) == (None, ["only-alias@example.com"])


def test_new_users_are_created_awaiting_activation_with_protected_aliases_only() -> None:
    plan = plan_sync(SourceBatch((ALICE, BOB)), {}, {}, DOMAINS)
    assert [change.kind for change in plan.changes] == [ChangeKind.CREATE, ChangeKind.CREATE]
    alice = plan.changes[0].mailbox
    assert alice is not None
    assert (alice.address, alice.aliases, alice.password_hash) == ("alice@example.com", ("a@example.com",), None)
    assert plan.changes[1].mailbox is not None and plan.changes[1].mailbox.alternate_email == "bob@outside.test"
    assert set(plan.links) == {"id-a", "id-b"}


def test_an_existing_csv_mailbox_is_adopted_and_keeps_its_password_and_contact() -> None:
    csv_box = Mailbox("bob@example.com", "Bob", alternate_email="bob@elsewhere.test", password_hash="$argon2id$x")
    user = replace(BOB, alternate_email=None)
    plan = plan_sync(SourceBatch((user,)), {}, {"bob@example.com": csv_box}, DOMAINS)
    assert plan.changes == []  # nothing differs
    assert plan.links["id-b"].address == "bob@example.com"


def test_disabled_and_removed_users_are_disabled_never_deleted_and_counted() -> None:
    links = {"id-a": DirectoryLink("id-a", "alice@example.com"), "id-b": DirectoryLink("id-b", "bob@example.com")}
    boxes = {
        "alice@example.com": Mailbox("alice@example.com", "Alice", ("a@example.com",)),
        "bob@example.com": Mailbox("bob@example.com", "Bob", alternate_email="bob@outside.test"),
    }
    batch = SourceBatch((replace(ALICE, enabled=False),), present=frozenset({"id-a"}))
    plan = plan_sync(batch, links, boxes, DOMAINS)
    assert [(c.kind.value, c.address) for c in plan.changes] == [
        ("disable", "alice@example.com"),
        ("remove", "bob@example.com"),
    ]
    assert all(c.mailbox is not None and not c.mailbox.enabled for c in plan.changes)
    assert plan.removals == 2
    assert plan.links["id-b"].removed and plan.links["id-b"].disabled_by_sync


def test_only_mailboxes_the_sync_disabled_are_enabled_again() -> None:
    boxes = {"alice@example.com": Mailbox("alice@example.com", "Alice", ("a@example.com",), enabled=False)}
    by_sync = {"id-a": DirectoryLink("id-a", "alice@example.com", disabled_by_sync=True)}
    assert _kinds(SourceBatch((ALICE,)), by_sync, boxes) == [("enable", "alice@example.com")]
    by_admin = {"id-a": DirectoryLink("id-a", "alice@example.com")}
    assert _kinds(SourceBatch((ALICE,)), by_admin, boxes) == []


def test_alias_and_name_changes_are_updates() -> None:
    links = {"id-a": DirectoryLink("id-a", "alice@example.com")}
    boxes = {"alice@example.com": Mailbox("alice@example.com", "Alice", ("a@example.com",))}
    renamed = replace(ALICE, display_name="Alice Smith", aliases=("a.smith@example.com",))
    plan = plan_sync(SourceBatch((renamed,)), links, boxes, DOMAINS)
    assert [c.kind for c in plan.changes] == [ChangeKind.UPDATE]
    assert "aliases +a.smith@example.com" in plan.changes[0].detail
    assert "aliases -a@example.com" in plan.changes[0].detail


def test_a_changed_primary_address_or_a_foreign_domain_is_skipped_with_a_reason() -> None:
    links = {"id-a": DirectoryLink("id-a", "alice@example.com")}
    boxes = {"alice@example.com": Mailbox("alice@example.com", "Alice")}
    moved = replace(ALICE, address="alice.smith@example.com")
    foreign = DirectoryUser("id-c", "carol@other.test", "Carol")
    plan = plan_sync(SourceBatch((moved, foreign)), links, boxes, DOMAINS)
    assert [c.kind for c in plan.changes] == [ChangeKind.SKIP, ChangeKind.SKIP]
    assert "primary address changed" in plan.changes[0].detail
    assert "not in a protected domain" in plan.changes[1].detail
    assert plan.links["id-a"].address == "alice@example.com"


def test_memberships_replace_each_linked_mailboxes_groups() -> None:
    links = {"id-a": DirectoryLink("id-a", "alice@example.com", frozenset({"Old"}))}
    boxes = {"alice@example.com": Mailbox("alice@example.com", "Alice", ("a@example.com",))}
    batch = SourceBatch((), memberships={"id-a": frozenset({"Finance", "Board"})})
    assert plan_sync(batch, links, boxes, DOMAINS).links["id-a"].groups == {"Finance", "Board"}
    assert plan_sync(SourceBatch((), memberships={}), links, boxes, DOMAINS).links["id-a"].groups == frozenset()
