"""Entra ID through Microsoft Graph (an HTTPS stand-in) into the standby mailboxes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from pydantic import SecretStr

from continuity.config.directory import EntraSettings
from continuity.directory.entra import EntraSource
from continuity.directory.service import DirectorySync
from continuity.errors import DirectorySourceError
from continuity.store.sqlite import SqliteStore
from tests.support.graph_api import GraphStandIn, start_graph

TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
CLIENT = "00001111-aaaa-2222-bbbb-3333cccc4444"
SECRET = "qWgdYAmab0YSkuL1qKv5bPX"  # a throwaway stand-in secret


def _user(user_id: str, name: str, mail: str, *aliases: str, enabled: bool = True) -> dict[str, object]:
    # Shaped as the "user: delta" example on Microsoft Learn.
    return {
        "businessPhones": [],
        "displayName": name,
        "givenName": name.split()[0],
        "jobTitle": None,
        "mail": mail,
        "mobilePhone": "+1 425 555 0109",
        "otherMails": [f"{name.split()[0].lower()}@outside.test"],
        "officeLocation": "18/2111",
        "preferredLanguage": "en-US",
        "surname": name.split()[-1],
        "userPrincipalName": mail,
        "accountEnabled": enabled,
        "proxyAddresses": [f"SMTP:{mail}", *[f"smtp:{alias}" for alias in aliases]],
        "id": user_id,
    }


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[GraphStandIn]:
    stand_in = start_graph(tmp_path, TENANT, CLIENT, SECRET)
    yield stand_in
    stand_in.stop()


def _settings(graph: GraphStandIn, secret: str = SECRET, tenant: str = TENANT) -> EntraSettings:
    return EntraSettings(
        tenant_id=tenant,
        client_id=CLIENT,
        client_secret=SecretStr(secret),
        authority_url=graph.url,
        graph_url=graph.url,
        ca_file=graph.ca_file,
        max_retry_after=5,
    )


def _sync(store: SqliteStore, settings: EntraSettings, max_removals: int | None = None) -> DirectorySync:
    return DirectorySync(store, EntraSource(settings), ["example.com"], max_removals)


async def test_delta_paging_then_changes_only(graph: GraphStandIn, store: SqliteStore) -> None:
    state = graph.state
    for index, name in enumerate(["Adele Vance", "Alex Wilber", "Diego Siciliani", "Grady Archie", "Lee Gu"]):
        first = name.split()[0].lower()
        state.put_user(_user(f"u{index}", name, f"{first}@example.com", f"{first}.alias@example.com"))
    state.put_user({"id": "u9", "displayName": "No Mailbox", "accountEnabled": True, "proxyAddresses": []})
    state.put_group("g1", "Finance", ["u0", "u1"])
    sync = _sync(store, _settings(graph), max_removals=2)
    report = await sync.run()
    assert report.outcome == "applied" and report.mode == "full"
    assert report.counts["create"] == 5
    # Five users at two per page: three pages of users/delta.
    assert state.requests.count("GET /v1.0/users/delta") == 3
    adele = await store.mailboxes.get("adele@example.com")
    assert adele is not None and adele.aliases == ("adele.alias@example.com",)
    assert adele.alternate_email == "adele@outside.test"
    assert await store.directory_sync.groups() == {"Finance": ["adele@example.com", "alex@example.com"]}

    state.put_user({"id": "u1", "proxyAddresses": ["SMTP:alex@example.com", "smtp:awilber@example.com"]})
    state.put_user({"id": "u2", "accountEnabled": False})
    state.delete_user("u3")
    state.put_group("g1", "Finance", ["u0", "u4"])
    state.requests.clear()
    report = await sync.run()
    assert report.mode == "delta"
    assert state.requests.count("GET /v1.0/users/delta") == 2  # three changes, two per page
    assert sorted((change.kind.value, change.address) for change in report.changes) == [
        ("disable", "diego@example.com"),
        ("remove", "grady@example.com"),
        ("update", "alex@example.com"),
    ]
    alex = await store.mailboxes.get("alex@example.com")
    assert alex is not None and alex.aliases == ("awilber@example.com",) and alex.display_name == "Alex Wilber"
    assert await store.directory_sync.groups() == {"Finance": ["adele@example.com", "lee@example.com"]}


async def test_throttling_is_waited_out(graph: GraphStandIn, store: SqliteStore) -> None:
    graph.state.put_user(_user("u0", "Adele Vance", "adele@example.com"))
    graph.state.throttle = 2
    report = await _sync(store, _settings(graph)).run()
    assert report.counts["create"] == 1
    assert graph.state.throttle == 0


async def test_throttling_longer_than_allowed_is_an_error(graph: GraphStandIn, store: SqliteStore) -> None:
    graph.state.put_user(_user("u0", "Adele Vance", "adele@example.com"))
    graph.state.throttle = 1
    graph.state.retry_after = 3600
    with pytest.raises(DirectorySourceError, match=r"throttling .*3600s, longer than max_retry_after"):
        await _sync(store, _settings(graph)).run()


async def test_a_certificate_signs_the_token_request(graph: GraphStandIn, store: SqliteStore, tmp_path: Path) -> None:
    issued = trustme.CA().issue_cert("continuity-app", key_type=trustme.KeyType.RSA)
    pem = tmp_path / "app.pem"
    pem.write_bytes(issued.private_key_pem.bytes() + issued.cert_chain_pems[0].bytes())
    graph.state.certificate_pem = issued.cert_chain_pems[0].bytes()
    graph.state.put_user(_user("u0", "Adele Vance", "adele@example.com"))
    settings = _settings(graph).model_copy(update={"client_secret": None, "certificate_file": pem})
    assert (await _sync(store, settings).run()).counts["create"] == 1
    graph.state.certificate_pem = (
        trustme.CA().issue_cert("other", key_type=trustme.KeyType.RSA).cert_chain_pems[0].bytes()
    )
    with pytest.raises(DirectorySourceError, match="AADSTS700027"):
        await EntraSource(settings).read("")


@pytest.mark.parametrize(
    ("secret", "tenant", "expected"),
    [
        ("wrong", TENANT, "invalid_client: AADSTS7000215: Invalid client secret provided."),
        (SECRET, "11112222-0000-cccc-1111-dddd2222eeee", "tenant name or GUID is correct"),
    ],
)
async def test_token_errors_name_the_aadsts_code(
    graph: GraphStandIn, store: SqliteStore, secret: str, tenant: str, expected: str
) -> None:
    with pytest.raises(DirectorySourceError, match=expected):
        await _sync(store, _settings(graph, secret, tenant)).run()
    assert await store.mailboxes.list() == []
