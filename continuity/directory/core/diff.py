"""The diff between the directory and the stored mailboxes: what a sync would create, change or disable.

Nothing is ever deleted: a user removed or disabled in the directory becomes a disabled
mailbox (no sign-in, no new mail) that keeps every stored message. Passwords are never
touched; new mailboxes await activation through their out-of-band contact, as the CSV
import leaves them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from continuity.core.addresses import domain_of, normalize_address
from continuity.core.mailbox_rows import build_mailbox
from continuity.core.models import Mailbox
from continuity.directory.core.links import DirectoryLink
from continuity.directory.core.records import DirectoryUser, SourceBatch


class ChangeKind(StrEnum):
    """One line of a sync plan."""

    CREATE = "create"
    UPDATE = "update"
    ENABLE = "enable"
    DISABLE = "disable"
    REMOVE = "remove"
    SKIP = "skip"


# Kinds that take a working mailbox away: the guard counts these.
REMOVING = frozenset({ChangeKind.DISABLE, ChangeKind.REMOVE})


@dataclass(frozen=True, slots=True)
class Change:
    """One planned change: the mailbox to store (None for a skip) and a short reason."""

    kind: ChangeKind
    address: str
    external_id: str
    detail: str
    mailbox: Mailbox | None = None


@dataclass(slots=True)
class SyncPlan:
    """Every change a batch asks for, and the link table as it will be once they are applied."""

    changes: list[Change] = field(default_factory=list)
    links: dict[str, DirectoryLink] = field(default_factory=dict)

    def count(self, kind: ChangeKind) -> int:
        """How many changes of this kind."""
        return sum(1 for change in self.changes if change.kind is kind)

    @property
    def removals(self) -> int:
        """Mailboxes this plan would disable (the guard's number)."""
        return sum(1 for change in self.changes if change.kind in REMOVING)

    def counts(self) -> dict[str, int]:
        """Changes counted by kind, every kind present."""
        return {kind.value: self.count(kind) for kind in ChangeKind}


def _protected_only(addresses: Iterable[str], protected: set[str]) -> list[str]:
    kept = []
    for address in addresses:
        try:
            canonical = normalize_address(address)
        except ValueError:
            continue
        if domain_of(canonical) in protected:
            kept.append(canonical)
    return kept


def desired_mailbox(user: DirectoryUser, domains: Iterable[str], current: Mailbox | None) -> Mailbox:
    """The mailbox the directory asks for; ValueError names what makes it unusable.

    Aliases outside the protected domains (e.g. tenant.onmicrosoft.com) are left out, and so is
    an out-of-band address inside them (it must work while the primary is down).
    """
    protected = set(domains)
    alternate = user.alternate_email
    if alternate is not None:
        try:
            alternate = normalize_address(alternate)
        except ValueError:
            alternate = None
        if alternate is not None and domain_of(alternate) in protected:
            alternate = None
    mailbox = build_mailbox(
        user.address,
        user.display_name or user.address,
        domains=protected,
        aliases=_protected_only(user.aliases, protected),
        alternate_email=alternate,
        enabled=current.enabled if current is not None else True,
    )
    if current is not None and mailbox.alternate_email is None:
        # An out-of-band address an admin set by hand is kept while the directory has none.
        mailbox = replace(mailbox, alternate_email=current.alternate_email)
    return mailbox


def _describe(before: Mailbox, after: Mailbox) -> str:
    parts = []
    if before.display_name != after.display_name:
        parts.append(f"name '{before.display_name}' -> '{after.display_name}'")
    added = sorted(set(after.aliases) - set(before.aliases))
    dropped = sorted(set(before.aliases) - set(after.aliases))
    if added:
        parts.append("aliases +" + ",".join(added))
    if dropped:
        parts.append("aliases -" + ",".join(dropped))
    if before.alternate_email != after.alternate_email:
        parts.append("out-of-band contact changed")
    return "; ".join(parts)


class _Planner:
    def __init__(self, links: Mapping[str, DirectoryLink], mailboxes: Mapping[str, Mailbox], domains: list[str]):
        self.mailboxes = mailboxes
        self.domains = domains
        self.plan = SyncPlan(links=dict(links))

    def take_away(self, link: DirectoryLink, kind: ChangeKind, detail: str) -> None:
        mailbox = self.mailboxes.get(link.address)
        removed = link.removed or kind is ChangeKind.REMOVE
        if mailbox is None or not mailbox.enabled:
            self.plan.links[link.external_id] = replace(link, removed=removed)
            return
        self.plan.changes.append(Change(kind, link.address, link.external_id, detail, replace(mailbox, enabled=False)))
        self.plan.links[link.external_id] = replace(link, disabled_by_sync=True, removed=removed)

    def apply_user(self, user: DirectoryUser) -> None:
        link = self.plan.links.get(user.external_id)
        try:
            address = normalize_address(user.address)
        except ValueError as exc:
            self.plan.changes.append(Change(ChangeKind.SKIP, user.address, user.external_id, str(exc)))
            return
        if link is not None and link.address != address:
            detail = f"primary address changed to {address} in the directory; rename the mailbox by hand"
            self.plan.changes.append(Change(ChangeKind.SKIP, link.address, user.external_id, detail))
            return
        if not user.enabled:
            if link is not None:
                self.take_away(
                    replace(link, mobile=user.mobile, removed=False), ChangeKind.DISABLE, "disabled in the directory"
                )
            return
        current = self.mailboxes.get(address)
        try:
            wanted = desired_mailbox(user, self.domains, current)
        except ValueError as exc:
            self.plan.changes.append(Change(ChangeKind.SKIP, address, user.external_id, str(exc)))
            return
        groups = link.groups if link is not None else frozenset()
        new_link = DirectoryLink(user.external_id, address, groups, user.mobile)
        if current is None:
            self.plan.changes.append(Change(ChangeKind.CREATE, address, user.external_id, user.kind, wanted))
            self.plan.links[user.external_id] = new_link
            return
        reenable = not current.enabled and link is not None and link.disabled_by_sync
        if reenable:
            wanted = replace(wanted, enabled=True)
        detail = _describe(current, wanted)
        if reenable:
            self.plan.changes.append(
                Change(ChangeKind.ENABLE, address, user.external_id, detail or "enabled again", wanted)
            )
        elif detail:
            self.plan.changes.append(Change(ChangeKind.UPDATE, address, user.external_id, detail, wanted))
        keep_disabled_mark = link is not None and link.disabled_by_sync and not reenable
        self.plan.links[user.external_id] = replace(new_link, disabled_by_sync=keep_disabled_mark)


def plan_sync(
    batch: SourceBatch,
    links: Mapping[str, DirectoryLink],
    mailboxes: Mapping[str, Mailbox],
    domains: list[str],
) -> SyncPlan:
    """What applying batch would change, given the stored links and mailboxes (by address)."""
    planner = _Planner(links, mailboxes, domains)
    for user in batch.changed:
        planner.apply_user(user)
    gone = set(batch.removed)
    if batch.present is not None:
        gone |= {external_id for external_id in links if external_id not in batch.present}
    for external_id in sorted(gone):
        link = planner.plan.links.get(external_id)
        if link is not None and not link.removed:
            planner.take_away(link, ChangeKind.REMOVE, "removed from the directory (or out of scope)")
    if batch.memberships is not None:
        for external_id, link in list(planner.plan.links.items()):
            groups = batch.memberships.get(external_id, frozenset())
            if groups != link.groups:
                planner.plan.links[external_id] = replace(link, groups=frozenset(groups))
    return planner.plan
