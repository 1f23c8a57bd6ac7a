"""Active Directory (Samba as a DC) into the standby mailboxes: add, alias rename, disable, delete, the guard."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from continuity.config.directory import ActiveDirectorySettings, AdIncremental, LdapSecurity
from continuity.directory.ad import ActiveDirectorySource
from continuity.directory.service import DirectorySync
from continuity.errors import DirectorySourceError
from continuity.store.sqlite import SqliteStore
from tests.support.samba import USER_PASSWORD, SambaDc

DOMAINS = ["example.com"]


def _sync(store: SqliteStore, settings: ActiveDirectorySettings, max_removals: int | None = None) -> DirectorySync:
    return DirectorySync(store, ActiveDirectorySource(settings), DOMAINS, max_removals)


def _populate(samba: SambaDc) -> dict[str, str]:
    ou = samba.add_ou("Failover")
    dns = {
        "alice": samba.add_user(
            "alice",
            proxy=["SMTP:alice@example.com", "smtp:a.smith@example.com", "smtp:alice@corp.onmicrosoft.test"],
            display_name="Alice Smith",
            mobile="+41 79 555 01 01",
            other_mailbox="alice.private@outside.test",
        ),
        "bob": samba.add_user("bob", mail="bob@example.com", display_name="Bob Jones"),
        "shared": samba.add_user("info", proxy=["SMTP:info@example.com"], display_name="Info (shared)"),
        "carol": samba.add_user("carol", mail="carol@example.com", enabled=False),
        "nomail": samba.add_user("svc-backup"),
    }
    samba.add_group("Finance", [dns["alice"], dns["bob"]], ou)
    return dns


async def test_users_aliases_contacts_and_groups_reach_the_appliance(
    samba: SambaDc, ad_settings: ActiveDirectorySettings, store: SqliteStore
) -> None:
    _populate(samba)
    report = await _sync(store, ad_settings).run()
    assert report.outcome == "applied", report.summary()
    mailboxes = {mailbox.address: mailbox for mailbox in await store.mailboxes.list()}
    assert sorted(mailboxes) == ["alice@example.com", "bob@example.com", "info@example.com"]
    alice = mailboxes["alice@example.com"]
    assert alice.aliases == ("a.smith@example.com",)  # the tenant alias is not a protected domain
    assert alice.display_name == "Alice Smith"
    assert alice.alternate_email == "alice.private@outside.test"
    assert not alice.has_password  # awaits activation through the out-of-band contact
    links = {link.address: link for link in (await store.directory_sync.links()).values()}
    assert links["alice@example.com"].mobile == "+41 79 555 01 01"
    assert await store.directory_sync.groups() == {"Finance": ["alice@example.com", "bob@example.com"]}
    entries = await store.audit.list()
    assert entries[-1].record.action == "directory.sync"
    assert entries[-1].details["counts"]["create"] == 3  # type: ignore[index]


@pytest.mark.parametrize("incremental", [AdIncremental.AUTO, AdIncremental.USN, AdIncremental.FULL])
async def test_alias_rename_disable_and_delete_each_reach_the_appliance(
    samba: SambaDc, ad_settings: ActiveDirectorySettings, store: SqliteStore, incremental: AdIncremental
) -> None:
    dns = _populate(samba)
    for index in range(20):  # a directory large enough for one leaver per run to be within the default limit
        samba.add_user(f"user{index}", mail=f"user{index}@example.com")
    settings = ad_settings.model_copy(update={"incremental": incremental})
    sync = _sync(store, settings, max_removals=1)
    first = await sync.run()
    assert first.counts["create"] == 23
    assert first.mode == "full"

    samba.replace(dns["alice"], "proxyAddresses", ["SMTP:alice@example.com", "smtp:alice.smith@example.com"])
    report = await sync.run()
    expected_mode = {AdIncremental.AUTO: "dirsync", AdIncremental.USN: "usn", AdIncremental.FULL: "full"}[incremental]
    assert report.mode == expected_mode
    assert [change.kind.value for change in report.changes] == ["update"]
    assert (await store.mailboxes.get("alice@example.com")).aliases == ("alice.smith@example.com",)  # type: ignore[union-attr]

    samba.replace(dns["bob"], "userAccountControl", ["514"])
    report = await sync.run()
    assert [(change.kind.value, change.address) for change in report.changes] == [("disable", "bob@example.com")]
    bob = await store.mailboxes.get("bob@example.com")
    assert bob is not None and not bob.enabled

    samba.delete(dns["shared"])
    report = await sync.run()
    assert [(change.kind.value, change.address) for change in report.changes] == [("remove", "info@example.com")]
    info = await store.mailboxes.get("info@example.com")
    assert info is not None and not info.enabled  # kept, with its mail, only disabled

    samba.replace(dns["bob"], "userAccountControl", ["512"])
    report = await sync.run()
    assert [(change.kind.value, change.address) for change in report.changes] == [("enable", "bob@example.com")]


async def test_a_mass_deletion_is_refused_until_allowed(
    samba: SambaDc, ad_settings: ActiveDirectorySettings, store: SqliteStore
) -> None:
    users = [samba.add_user(f"staff{index}", mail=f"staff{index}@example.com") for index in range(10)]
    sync = _sync(store, ad_settings)  # default limit: 5% of 10, at least 1
    assert (await sync.run()).counts["create"] == 10
    for dn in users[:6]:
        samba.delete(dn)
    refused = await sync.run()
    assert refused.outcome == "refused"
    assert refused.guard.removals == 6 and refused.guard.limit == 1
    assert all(mailbox.enabled for mailbox in await store.mailboxes.list())
    entries = await store.audit.list()
    assert entries[-1].record.action == "directory.sync.refused"
    assert (await store.directory_sync.runs())[0].outcome == "refused"
    # Refused again on the next run: the cursor did not move past the deletions.
    assert (await sync.run()).outcome == "refused"
    allowed = await sync.run(allow_removals=True)
    assert allowed.outcome == "applied"
    enabled = sorted(mailbox.address for mailbox in await store.mailboxes.list() if mailbox.enabled)
    assert enabled == [f"staff{index}@example.com" for index in range(6, 10)]


async def test_a_wrong_password_is_a_clear_error(
    samba: SambaDc, ad_settings: ActiveDirectorySettings, store: SqliteStore
) -> None:
    settings = ad_settings.model_copy(update={"bind_password": SecretStr("wrong")})
    with pytest.raises(DirectorySourceError, match="refused the bind"):
        await _sync(store, settings).run()
    assert (await store.directory_sync.runs())[0].outcome == "failed"
    entry = (await store.audit.list())[-1]
    assert entry.record.action == "directory.sync.failed" and "refused the bind" in entry.record.reason


async def test_a_certificate_from_another_ca_is_refused(
    samba: SambaDc, ad_settings: ActiveDirectorySettings, store: SqliteStore, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import trustme

    other = tmp_path_factory.mktemp("other-ca") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    settings = ad_settings.model_copy(update={"ca_file": other})
    with pytest.raises(DirectorySourceError, match="cannot connect"):
        await _sync(store, settings).run()


async def test_starttls_on_port_389_works_too(
    samba: SambaDc, ad_settings: ActiveDirectorySettings, store: SqliteStore
) -> None:
    samba.add_user("dave", mail="dave@example.com")
    settings = ad_settings.model_copy(update={"url": "ldap://127.0.0.1:389", "security": LdapSecurity.STARTTLS})
    assert (await _sync(store, settings).run()).counts["create"] == 1


async def test_an_account_without_replication_rights_falls_back_to_usn(
    samba: SambaDc, ad_settings: ActiveDirectorySettings, store: SqliteStore
) -> None:
    service_dn = samba.add_user("svc-continuity")
    samba.add_user("erin", mail="erin@example.com")
    settings = ad_settings.model_copy(update={"bind_dn": service_dn, "bind_password": SecretStr(USER_PASSWORD)})
    sync = _sync(store, settings)
    first = await sync.run()
    assert first.counts["create"] == 1
    assert any("DirSync refused" in warning for warning in first.warnings), first.warnings
    samba.add_user("frank", mail="frank@example.com")
    second = await sync.run()
    assert second.mode == "usn"
    assert [(change.kind.value, change.address) for change in second.changes] == [("create", "frank@example.com")]
