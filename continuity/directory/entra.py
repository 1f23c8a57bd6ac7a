"""Entra ID as a source of mailboxes, over Microsoft Graph's delta queries.

A token comes from msal's client credentials flow (a secret or a certificate); ``users/delta``
and ``groups/delta`` are paged through ``@odata.nextLink`` until the ``@odata.deltaLink`` that
the next run starts from. Delta pages carry only what changed (and, for updated objects,
possibly only the changed properties), so the users' last known properties and the groups'
members are kept in the cursor and merged. 429 and 503 are retried after Retry-After
(bounded); an expired delta link (410) starts a full read again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
from collections.abc import Mapping
from typing import Any

import httpx
import msal  # type: ignore[import-untyped]
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from continuity.config.directory import EntraSettings
from continuity.directory.core.proxy import split_proxy_addresses
from continuity.directory.core.records import DirectoryUser, SourceBatch
from continuity.errors import DirectorySourceError

log = logging.getLogger("continuity.directory")

USER_FIELDS = "id,displayName,mail,proxyAddresses,accountEnabled,mobilePhone,otherMails,userPrincipalName"
GROUP_FIELDS = "displayName,members"
_RETRIED = (429, 503)
_MAX_PAGES = 100_000


class _DeltaExpiredError(Exception):
    """Graph answered 410: the delta link is too old; start over."""


def _certificate_credential(pem: bytes) -> dict[str, str]:
    """msal's certificate credential from one PEM file holding the private key and the certificate.

    msal computes the certificate's SHA-256 thumbprint (x5t#S256) from public_certificate.
    """
    certificate = x509.load_pem_x509_certificate(pem)
    key = serialization.load_pem_private_key(pem, password=None)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    return {"private_key": key_pem.decode("ascii"), "public_certificate": certificate_pem.decode("ascii")}


class EntraSource:
    """Reads users and their failover groups from Entra ID."""

    name = "entra"

    def __init__(self, settings: EntraSettings) -> None:
        self._settings = settings
        self._app: Any = None

    # --- token ---

    def _credential(self) -> str | dict[str, str]:
        settings = self._settings
        try:
            if settings.certificate_file is not None:
                return _certificate_credential(settings.certificate_file.read_bytes())
            if settings.credential_file is not None:
                return settings.credential_file.read_text(encoding="utf-8").strip()
        except (OSError, ValueError) as exc:
            raise DirectorySourceError(f"cannot read the [directory.entra] credential: {exc}") from None
        if settings.client_secret is not None:
            return settings.client_secret.get_secret_value()
        raise DirectorySourceError("[directory.entra] needs client_secret, credential_file or certificate_file")

    def _http_client(self) -> Any:
        """msal's HTTP session: with a ca_file, that file and not REQUESTS_CA_BUNDLE decides.

        requests lets the environment's CA bundle win over a session's verify, so the session
        ignores the environment (and its proxies) when the settings name a CA file.
        """
        session = requests.Session()
        if self._settings.ca_file is not None:
            session.trust_env = False
            session.verify = str(self._settings.ca_file)
        timeout = self._settings.timeout
        session.request = functools.partial(session.request, timeout=timeout)  # type: ignore[method-assign]
        return session

    def _token_sync(self) -> str:
        settings = self._settings
        authority = f"{settings.authority_url.rstrip('/')}/{settings.tenant_id}"
        try:
            if self._app is None:
                self._app = msal.ConfidentialClientApplication(
                    settings.client_id,
                    client_credential=self._credential(),
                    authority=authority,
                    http_client=self._http_client(),
                    instance_discovery=False,
                )
            result = self._app.acquire_token_for_client(scopes=[f"{settings.graph_url.rstrip('/')}/.default"])
        except DirectorySourceError:
            raise
        except Exception as exc:  # msal raises ValueError or requests' errors for an unreachable authority
            raise DirectorySourceError(f"cannot get a token from {authority}: {exc}") from None
        if "access_token" not in result:
            description = str(result.get("error_description", "")).splitlines()[0] if result else ""
            raise DirectorySourceError(
                f"Entra refused the token request of client {settings.client_id}: "
                f"{result.get('error', 'unknown error')}: {description}"
            )
        return str(result["access_token"])

    # --- Graph ---

    async def _get(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        settings = self._settings
        for attempt in range(settings.max_retries + 1):
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                raise DirectorySourceError(
                    f"Microsoft Graph at {settings.graph_url} cannot be reached: {exc}"
                ) from None
            if response.status_code in _RETRIED and attempt < settings.max_retries:
                wait = float(response.headers.get("Retry-After", "1") or 1)
                if wait > settings.max_retry_after:
                    raise DirectorySourceError(
                        f"Microsoft Graph is throttling ({response.status_code}) for {wait:.0f}s, "
                        f"longer than max_retry_after ({settings.max_retry_after:.0f}s)"
                    )
                log.info("directory: Graph answered %d, retrying in %.0fs", response.status_code, wait)
                await asyncio.sleep(wait)
                continue
            if response.status_code == 410:
                raise _DeltaExpiredError
            if response.status_code != 200:
                raise DirectorySourceError(f"Microsoft Graph answered {response.status_code}: {_graph_error(response)}")
            body: dict[str, Any] = response.json()
            return body
        raise DirectorySourceError(f"Microsoft Graph is still throttling after {settings.max_retries} retries")

    async def _delta(self, client: httpx.AsyncClient, url: str) -> tuple[list[dict[str, Any]], str]:
        items: list[dict[str, Any]] = []
        for _ in range(_MAX_PAGES):
            page = await self._get(client, url)
            items += page.get("value", [])
            if "@odata.nextLink" in page:
                url = str(page["@odata.nextLink"])
            elif "@odata.deltaLink" in page:
                return items, str(page["@odata.deltaLink"])
            else:
                raise DirectorySourceError("Microsoft Graph's delta page has neither a nextLink nor a deltaLink")
        raise DirectorySourceError(f"Microsoft Graph's delta query did not end after {_MAX_PAGES} pages")

    async def read(self, cursor: str) -> SourceBatch:
        """The users and groups changed since cursor ("" reads everyone)."""
        state: dict[str, Any] = json.loads(cursor) if cursor else {}
        token = await asyncio.to_thread(self._token_sync)
        verify: ssl.SSLContext | bool = True
        if self._settings.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(self._settings.ca_file))
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        async with httpx.AsyncClient(headers=headers, timeout=self._settings.timeout, verify=verify) as client:
            try:
                return await self._read(client, state)
            except _DeltaExpiredError:
                log.warning("directory: Graph's delta link expired; reading everything again")
                return await self._read(client, {})

    async def _read(self, client: httpx.AsyncClient, state: Mapping[str, Any]) -> SourceBatch:
        graph = self._settings.graph_url.rstrip("/")
        full = not state
        users_url = state.get("users_link") or f"{graph}/v1.0/users/delta?$select={USER_FIELDS}"
        groups_url = state.get("groups_link") or f"{graph}/v1.0/groups/delta?$select={GROUP_FIELDS}"
        user_items, users_link = await self._delta(client, users_url)
        group_items, groups_link = await self._delta(client, groups_url)
        known: dict[str, dict[str, Any]] = {} if full else dict(state.get("users", {}))
        changed_ids: list[str] = []
        removed: list[str] = []
        for item in user_items:
            object_id = str(item["id"])
            if "@removed" in item:
                known.pop(object_id, None)
                removed.append(object_id)
                continue
            merged = {**known.get(object_id, {}), **{key: value for key, value in item.items() if "@" not in key}}
            known[object_id] = merged
            changed_ids.append(object_id)
        groups = _merge_groups({} if full else dict(state.get("groups", {})), group_items)
        users = [user for object_id in changed_ids if (user := _user(known[object_id])) is not None]
        present = frozenset(object_id for object_id, record in known.items() if _primary(record))
        memberships: dict[str, set[str]] = {}
        for group in groups.values():
            for member in group["members"]:
                memberships.setdefault(member, set()).add(group["name"])
        new_state = {"users_link": users_link, "groups_link": groups_link, "users": known, "groups": groups}
        return SourceBatch(
            changed=tuple(users),
            removed=tuple(removed),
            present=present,
            memberships={object_id: frozenset(names) for object_id, names in memberships.items()},
            cursor=json.dumps(new_state, sort_keys=True),
            mode="full" if full else "delta",
        )


def _graph_error(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return f"{error.get('code', '')}: {error.get('message', '')}"
    except ValueError:
        return response.text[:200]


def _merge_groups(groups: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    for item in items:
        group_id = str(item["id"])
        if "@removed" in item:
            groups.pop(group_id, None)
            continue
        group = groups.setdefault(group_id, {"name": group_id, "members": []})
        if "displayName" in item:
            group["name"] = str(item["displayName"])
        members = set(group["members"])
        for member in item.get("members@delta", []):
            if "@removed" in member:
                members.discard(str(member["id"]))
            elif member.get("@odata.type", "#microsoft.graph.user") == "#microsoft.graph.user":
                members.add(str(member["id"]))
        group["members"] = sorted(members)
    return groups


def _primary(record: Mapping[str, Any]) -> str | None:
    primary, _ = split_proxy_addresses(record.get("proxyAddresses") or [])
    return primary or record.get("mail") or None


def _user(record: Mapping[str, Any]) -> DirectoryUser | None:
    primary = _primary(record)
    if primary is None:
        return None
    _, aliases = split_proxy_addresses(record.get("proxyAddresses") or [])
    other = [str(address) for address in record.get("otherMails") or []]
    return DirectoryUser(
        external_id=str(record["id"]),
        address=primary,
        display_name=str(record.get("displayName") or primary),
        aliases=tuple(aliases),
        enabled=record.get("accountEnabled") is not False,
        alternate_email=other[0] if other else None,
        mobile=record.get("mobilePhone") or None,
    )
