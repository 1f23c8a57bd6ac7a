"""The ``azure`` provider: Azure DNS through Azure Resource Manager's REST API (api-version 2018-05-01), with httpx.

Why not the Azure SDK: azure-mgmt-dns with azure-identity brings two large packages and
their transport stack for three calls (a token, GET and PUT of one record set); httpx is
already a dependency. Why not msal: it validates the authority by instance discovery
against Microsoft's hosts, which a private cloud or a test stand-in does not have; the
client-credentials grant is one documented POST.

A token comes from Entra ID's client-credentials grant
(``POST {authority_url}/{tenant}/oauth2/v2.0/token``, scope ``{management_url}/.default``)
and is kept until shortly before it expires. The zone is read for its name servers
(``GET .../dnsZones/{zone}``). The compare-and-swap is Azure's own precondition: the MX
record set is read with its ``etag`` (``GET .../dnsZones/{zone}/MX/{name}``), compared
with the side being left, and replaced with ``PUT`` and ``If-Match: <etag>`` (or
``If-None-Match: *`` when there was none); Azure answers 412 Precondition Failed when
the set changed since the read, and nothing changes. Transport errors, 5xx and 429
(after its Retry-After) are retried, and so is a 401 to a kept token (with a new one);
a 401 to a new token, a 403 and a 412 are not.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import dns.name
import httpx

from continuity.config.dns import DnsSettings
from continuity.dns.credentials import secret_from
from continuity.dns.errors import DnsUpdateError, canonical_mx, describe, show_mx
from continuity.dns.provider import DomainSwitch, zone_of
from continuity.dns.retry import RetryableError, retry_after, with_retries
from continuity.errors import ConfigError

T = TypeVar("T")

API_VERSION = "2018-05-01"


class _PreconditionFailedError(DnsUpdateError):
    """Azure answered 412: the record set's etag is no longer the one read."""


class AzureDnsProvider:
    """Reads and replaces MX record sets of an Azure DNS zone (see the module)."""

    name = "azure"

    def __init__(self, settings: DnsSettings) -> None:
        self._settings = settings
        self._azure = settings.azure
        missing = [
            key
            for key in ("tenant_id", "client_id", "subscription_id", "resource_group")
            if not getattr(self._azure, key)
        ]
        if missing:
            raise ConfigError(f"dns.azure: set {', '.join(missing)} to use provider 'azure'.")
        self._secret, self._secret_setting = secret_from(
            "azure", "client_secret", self._azure.client_secret, self._azure.credential_file, "a client secret"
        )
        self._token = ""
        self._token_expires = 0.0

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._settings.query_timeout)

    async def _access_token(self, client: httpx.AsyncClient) -> str:
        if self._token and time.monotonic() < self._token_expires:
            return self._token
        azure = self._azure
        url = f"{azure.authority_url}/{quote(azure.tenant_id, safe='')}/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": azure.client_id,
            "client_secret": self._secret,
            "scope": f"{azure.management_url}/.default",
        }
        try:
            response = await client.post(url, data=form)
        except httpx.HTTPError as exc:
            raise RetryableError(f"Entra ID token service {url} failed: {describe(exc)}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"Entra ID token service {url} answered {response.status_code}", retry_after(response))
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            error = f"{body.get('error', response.status_code)}: {str(body.get('error_description', '')).strip()}"
            raise DnsUpdateError(
                f"Entra ID refused the client credentials ({error}): check dns.azure.tenant_id, client_id and "
                f"{self._secret_setting}"
            )
        self._token = str(body["access_token"])
        self._token_expires = time.monotonic() + max(0.0, float(body.get("expires_in", 3600)) - 60)
        return self._token

    def _zone_url(self, domain: str) -> tuple[str, str]:
        azure = self._azure
        zone = zone_of(self._settings, domain).to_text(omit_final_dot=True)
        return zone, (
            f"{azure.management_url}/subscriptions/{quote(azure.subscription_id, safe='')}"
            f"/resourceGroups/{quote(azure.resource_group, safe='')}"
            f"/providers/Microsoft.Network/dnsZones/{quote(zone, safe='')}"
        )

    def _record_url(self, domain: str, rdtype: str, owner: str) -> str:
        zone, url = self._zone_url(domain)
        origin = dns.name.from_text(zone)
        relative = dns.name.from_text(owner).relativize(origin).to_text()
        return f"{url}/{rdtype}/{quote('@' if relative == '@' else relative, safe='@')}"

    async def _request(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A call to Resource Manager; 404 is returned to the caller, other errors raised."""
        cached = bool(self._token) and time.monotonic() < self._token_expires
        token = await self._access_token(client)
        where = f"Azure DNS {method} {url.removeprefix(self._azure.management_url)}"
        try:
            response = await client.request(
                method,
                url,
                params={"api-version": API_VERSION},
                json=body,
                headers={"Authorization": f"Bearer {token}", **(headers or {})},
            )
        except httpx.HTTPError as exc:
            raise RetryableError(f"{where} failed: {describe(exc)}") from exc
        text = _error_text(response)
        if response.status_code == 401:
            self._token = ""  # a new token next time
            if cached:
                # A kept token can be revoked or expire early: the next attempt asks for a new one.
                raise RetryableError(f"{where}: the kept token was refused (401, {text}); asking for a new one")
            raise DnsUpdateError(
                f"{where}: a new token was refused (401, {text}); check dns.azure.tenant_id and authority_url"
            )
        if response.status_code == 403:
            raise DnsUpdateError(
                f"{where}: not allowed (403, {text}); give the service principal 'DNS Zone Contributor' on the zone"
            )
        if response.status_code == 412:
            raise _PreconditionFailedError(f"{where} answered 412 Precondition Failed ({text})")
        if response.status_code == 429:
            wait = retry_after(response)
            raise RetryableError(f"{where}: rate limited (429, Retry-After {wait:g}s)", wait)
        if response.status_code >= 500:
            raise RetryableError(f"{where} answered {response.status_code}: {text}")
        if response.status_code >= 400 and response.status_code != 404:
            raise DnsUpdateError(f"{where} was rejected ({response.status_code}: {text})")
        return response

    async def _patiently(self, operation: str, run: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        async def attempt() -> T:
            async with self._client() as client:
                return await run(client)

        return await with_retries(self._settings.attempts, operation, attempt)

    async def _zone(self, client: httpx.AsyncClient, domain: str) -> dict[str, Any]:
        zone, url = self._zone_url(domain)
        response = await self._request(client, "GET", url)
        if response.status_code == 404:
            raise DnsUpdateError(
                f"Azure DNS has no zone {zone} in resource group {self._azure.resource_group} of subscription "
                f"{self._azure.subscription_id} ({_error_text(response)}); or set [dns] zones when the domain "
                "is not a zone apex"
            )
        return _json(response)

    async def _mx(self, client: httpx.AsyncClient, domain: str) -> tuple[str | None, tuple[str, ...]]:
        """The MX set's etag (None when there is no set) and its records as '10 host.'."""
        response = await self._request(client, "GET", self._record_url(domain, "MX", domain))
        if response.status_code == 404:
            await self._zone(client, domain)  # a missing zone is named as such, not as a missing MX set
            return None, ()
        body = _json(response)
        records = body.get("properties", {}).get("MXRecords") or []
        texts = (f"{item['preference']} {str(item['exchange']).lower().rstrip('.')}." for item in records)
        return str(body.get("etag", "")), tuple(sorted(texts))

    async def name_servers(self, zone: str) -> list[str]:
        """The zone's Azure name servers (the zone's nameServers), for the verification."""

        async def run(client: httpx.AsyncClient) -> list[str]:
            found = await self._zone(client, zone)
            return [str(name) for name in found.get("properties", {}).get("nameServers", [])]

        return await self._patiently(f"the lookup of zone {zone}", run)

    async def access(self, domain: str) -> str:
        """A token is granted, the zone is found and its MX record set readable."""

        async def run(client: httpx.AsyncClient) -> str:
            found = await self._zone(client, domain)
            await self._mx(client, domain)
            return (
                f"zone {found.get('name', '?')} in resource group {self._azure.resource_group}, "
                f"client {self._azure.client_id} (secret from {self._secret_setting})"
            )

        return await self._patiently(f"the lookup of {domain}'s zone", run)

    async def current_mx(self, domain: str) -> tuple[str, ...]:
        """The MX records of domain as Azure DNS holds them."""

        async def run(client: httpx.AsyncClient) -> tuple[str, ...]:
            return (await self._mx(client, domain))[1]

        return await self._patiently(f"the read of {domain} MX", run)

    async def replace_mx(self, domain: str, expected: Sequence[str], target: Sequence[str]) -> DomainSwitch:
        """Read with the etag, compare with expected, PUT with If-Match, read again (see the module)."""
        records = []
        for text in sorted(canonical_mx(target)):
            preference, exchange = text.split()
            records.append({"preference": int(preference), "exchange": exchange.rstrip(".")})
        body = {"properties": {"TTL": self._settings.ttl, "MXRecords": records}}

        async def run(client: httpx.AsyncClient) -> DomainSwitch:
            etag, before = await self._mx(client, domain)
            if canonical_mx(before) == canonical_mx(target):
                return DomainSwitch(domain, before, before, updated=False)
            if canonical_mx(before) != canonical_mx(expected):
                raise DnsUpdateError(
                    f"{domain} MX is {show_mx(before)} at Azure DNS, not the expected {show_mx(expected)}; "
                    "someone changed it and nothing was updated"
                )
            condition = {"If-Match": etag} if etag is not None else {"If-None-Match": "*"}
            try:
                await self._request(client, "PUT", self._record_url(domain, "MX", domain), body=body, headers=condition)
            except _PreconditionFailedError as exc:
                _etag, current = await self._mx(client, domain)
                if canonical_mx(current) == canonical_mx(target):
                    return DomainSwitch(domain, current, current, updated=False)
                raise DnsUpdateError(
                    f"{exc}: {domain} MX changed since it was read and is now {show_mx(current)}; "
                    "someone changed it and nothing was updated"
                ) from exc
            after = (await self._mx(client, domain))[1]
            if canonical_mx(after) != canonical_mx(target):
                raise DnsUpdateError(
                    f"Azure DNS accepted the new MX of {domain} but holds {show_mx(after)} right after; "
                    "someone else is changing it"
                )
            return DomainSwitch(domain, before, after, updated=True)

        return await self._patiently(f"the MX update of {domain}", run)

    async def test_change(self, domain: str) -> None:
        """PUT and DELETE the TXT record set _continuity-check.<zone>."""
        zone, _url = self._zone_url(domain)
        owner = f"_continuity-check.{zone}."
        body = {"properties": {"TTL": 60, "TXTRecords": [{"value": [f"dns check {int(time.time())}"]}]}}

        async def run(client: httpx.AsyncClient) -> None:
            await self._zone(client, domain)
            url = self._record_url(domain, "TXT", owner)
            for method, what in (("PUT", "add"), ("DELETE", "remove")):
                try:
                    await self._request(client, method, url, body=body if method == "PUT" else None)
                except RetryableError:
                    raise
                except DnsUpdateError as exc:
                    raise DnsUpdateError(f"a test change ({what} TXT {owner}) failed: {exc}") from exc

        await self._patiently(f"a test change in {domain}'s zone", run)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise RetryableError(f"{response.request.url} answered {response.status_code} that is not JSON") from exc
    return body if isinstance(body, dict) else {}


def _error_text(response: httpx.Response) -> str:
    """Resource Manager's {"error": {"code", "message"}} as 'code: message', or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code', '?')}: {error.get('message', '')}"
    return response.text[:200]
