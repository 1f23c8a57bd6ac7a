"""The ``cloudflare`` provider: Cloudflare's API v4 through plain REST with httpx.

Why no SDK: the official ``cloudflare`` package is a large generated client whose
interface changes with every major version, for four calls (find the zone, list its MX
records, one batch, a test record); httpx is already a dependency and the calls are
stable, documented REST.

The zone is found by name (``GET /zones?name=``), its MX records listed
(``GET /zones/{id}/dns_records?type=MX&name=``). Cloudflare has no precondition on a
record's content, so the compare-and-swap is read, compare, write, read again: the
records read are compared with the side being left, then replaced in ONE
``POST /zones/{id}/dns_records/batch`` (deletes of the records read, by id, and posts of
the new ones; Cloudflare applies a batch whole or not at all, and a record deleted in the
meantime fails the batch), then read once more. A change of a record's content between
the read and the batch cannot be detected; the window is one request long.
Answers are Cloudflare's envelope ``{success, errors[{code, message}], messages, result}``.
Transport errors and 5xx are retried with backoff, 429 after its Retry-After; a refused
token (HTTP 401/403, codes 9109, 10000) and an MX that is neither side are not.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from continuity.config.dns import DnsSettings
from continuity.dns.credentials import secret_from
from continuity.dns.errors import DnsUpdateError, canonical_mx, describe, show_mx
from continuity.dns.provider import DomainSwitch, zone_of
from continuity.dns.retry import RetryableError, retry_after, with_retries

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Zone:
    id: str
    name: str
    name_servers: tuple[str, ...]


class CloudflareProvider:
    """Reads and replaces MX records through Cloudflare's API v4 (see the module)."""

    name = "cloudflare"

    def __init__(self, settings: DnsSettings) -> None:
        self._settings = settings
        self._api = settings.cloudflare
        self._token, self._token_setting = secret_from(
            "cloudflare", "api_token", self._api.api_token, self._api.credential_file, "an API token"
        )
        self._zones: dict[str, _Zone] = {}

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self._api.api_url,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
            timeout=self._settings.query_timeout,
        )

    async def _request(
        self, client: httpx.AsyncClient, method: str, path: str, *, params: Any = None, body: Any = None
    ) -> Any:
        """The envelope's result; errors as DnsUpdateError (retryable ones as RetryableError)."""
        where = f"Cloudflare API {self._api.api_url}: {method} {path}"
        try:
            response = await client.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise RetryableError(f"{where} failed: {describe(exc)}") from exc
        errors = _errors(response)
        codes = {code for code, _message in errors}
        text = "; ".join(f"{code}: {message}" for code, message in errors) or response.reason_phrase
        if response.status_code in (401, 403) or codes & {9109, 10000}:
            raise DnsUpdateError(
                f"{where}: the API token was refused ({response.status_code}, {text}): check {self._token_setting} "
                "(a token with Zone:DNS:Edit and Zone:Zone:Read on the zone)"
            )
        if response.status_code == 429:
            wait = retry_after(response)
            raise RetryableError(f"{where}: rate limited (429, Retry-After {wait:g}s)", wait)
        if response.status_code >= 500:
            raise RetryableError(f"{where} answered {response.status_code}: {text}")
        if response.status_code == 404 or 7003 in codes:
            self._zones.clear()  # a zone deleted and added again has a new id: look it up again next time
        if response.status_code >= 400 or errors:
            raise DnsUpdateError(f"{where} was rejected ({response.status_code}: {text})")
        try:
            return response.json()["result"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RetryableError(f"{where} answered no result envelope") from exc

    async def _patiently(self, operation: str, run: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        """run(client) on a new client, with retries (continuity.dns.retry)."""

        async def attempt() -> T:
            async with self._client() as client:
                return await run(client)

        return await with_retries(self._settings.attempts, operation, attempt)

    async def _zone(self, client: httpx.AsyncClient, domain: str) -> _Zone:
        name = zone_of(self._settings, domain).to_text(omit_final_dot=True)
        if name in self._zones:
            return self._zones[name]
        found = await self._request(client, "GET", "/zones", params={"name": name})
        if not found:
            raise DnsUpdateError(
                f"Cloudflare API {self._api.api_url} has no zone {name} that this token may read; "
                "add it, give the token Zone:Zone:Read on it, or set [dns] zones when the domain is not a zone apex"
            )
        zone = _Zone(str(found[0]["id"]), str(found[0]["name"]), tuple(found[0].get("name_servers", [])))
        self._zones[name] = zone
        return zone

    async def _records(self, client: httpx.AsyncClient, zone: _Zone, domain: str, rdtype: str) -> list[dict[str, Any]]:
        params = {"type": rdtype, "name": domain.lower().rstrip("."), "per_page": 100}
        records: list[dict[str, Any]] = await self._request(
            client, "GET", f"/zones/{zone.id}/dns_records", params=params
        )
        return records

    async def _mx(
        self, client: httpx.AsyncClient, zone: _Zone, domain: str
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        records = await self._records(client, zone, domain, "MX")
        texts = tuple(
            sorted(f"{record['priority']} {str(record['content']).lower().rstrip('.')}." for record in records)
        )
        return records, texts

    async def name_servers(self, zone: str) -> list[str]:
        """The zone's Cloudflare name servers, for the verification."""

        async def run(client: httpx.AsyncClient) -> list[str]:
            return list((await self._zone(client, zone)).name_servers)

        return await self._patiently(f"the lookup of zone {zone}", run)

    async def access(self, domain: str) -> str:
        """The token finds the zone and may list its DNS records."""

        async def run(client: httpx.AsyncClient) -> str:
            zone = await self._zone(client, domain)
            await self._mx(client, zone, domain)
            return f"zone {zone.name} ({zone.id}) at {self._api.api_url}, token from {self._token_setting}"

        return await self._patiently(f"the lookup of {domain}'s zone", run)

    async def current_mx(self, domain: str) -> tuple[str, ...]:
        """The MX records of domain as Cloudflare holds them."""

        async def run(client: httpx.AsyncClient) -> tuple[str, ...]:
            return (await self._mx(client, await self._zone(client, domain), domain))[1]

        return await self._patiently(f"the read of {domain} MX", run)

    async def replace_mx(self, domain: str, expected: Sequence[str], target: Sequence[str]) -> DomainSwitch:
        """Read, compare with expected, one batch (deletes by id, posts of target), read again (see the module)."""
        name = domain.lower().rstrip(".")

        async def run(client: httpx.AsyncClient) -> DomainSwitch:
            zone = await self._zone(client, domain)
            records, before = await self._mx(client, zone, domain)
            if canonical_mx(before) == canonical_mx(target):
                return DomainSwitch(domain, before, before, updated=False)
            if canonical_mx(before) != canonical_mx(expected):
                raise DnsUpdateError(
                    f"{domain} MX is {show_mx(before)} at Cloudflare, not the expected {show_mx(expected)}; "
                    "someone changed it and nothing was updated"
                )
            posts = []
            for text in sorted(canonical_mx(target)):
                priority, host = text.split()
                posts.append(
                    {
                        "type": "MX",
                        "name": name,
                        "content": host.rstrip("."),
                        "priority": int(priority),
                        "ttl": self._settings.ttl,
                    }
                )
            batch = {"deletes": [{"id": record["id"]} for record in records], "posts": posts}
            await self._request(client, "POST", f"/zones/{zone.id}/dns_records/batch", body=batch)
            after = (await self._mx(client, zone, domain))[1]
            if canonical_mx(after) != canonical_mx(target):
                raise DnsUpdateError(
                    f"Cloudflare accepted the new MX of {domain} but holds {show_mx(after)} right after; "
                    "someone else is changing it"
                )
            return DomainSwitch(domain, before, after, updated=True)

        return await self._patiently(f"the MX update of {domain}", run)

    async def test_change(self, domain: str) -> None:
        """Create and delete the TXT record _continuity-check.<zone>."""

        async def run(client: httpx.AsyncClient) -> None:
            zone = await self._zone(client, domain)
            owner = f"_continuity-check.{zone.name}"
            record = {"type": "TXT", "name": owner, "content": f'"dns check {int(time.time())}"', "ttl": 60}
            try:
                created = await self._request(client, "POST", f"/zones/{zone.id}/dns_records", body=record)
            except RetryableError:
                raise
            except DnsUpdateError as exc:
                raise DnsUpdateError(f"a test change (add TXT {owner}.) failed: {exc}") from exc
            try:
                await self._request(client, "DELETE", f"/zones/{zone.id}/dns_records/{created['id']}")
            except DnsUpdateError as exc:
                raise DnsUpdateError(f"a test change (remove TXT {owner}., id {created['id']}) failed: {exc}") from exc

        await self._patiently(f"a test change in {domain}'s zone", run)


def _errors(response: httpx.Response) -> list[tuple[int, str]]:
    """The envelope's errors as (code, message); a body that is not the envelope gives none."""
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    return [
        (int(item.get("code", 0)), str(item.get("message", "")))
        for item in body.get("errors") or []
        if isinstance(item, dict)
    ]
