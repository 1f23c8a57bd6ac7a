"""The ``powerdns`` provider: PowerDNS Authoritative's HTTP API (``/api/v1/servers/localhost/zones/{zone}``).

The API's PATCH has no precondition, so the compare-and-swap is read, compare, write and
read again: the zone's MX RRset is read (GET), compared with the side being left, replaced
(PATCH with ``changetype: REPLACE``) and read once more. A change made by someone between
the read and the write cannot be detected by the API; the window is one request long.
Transport errors and 5xx answers are retried with backoff (a write whose answer was lost
is found done by the next read); a refused key (401/403), a missing zone (404/422) and an
MX that is neither side are not. Each call opens its own httpx client: a switch is rare,
and a client bound to no event loop can be used from any of the CLI's loops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from continuity.config.dns import DnsSettings, PowerDnsSettings
from continuity.dns.errors import DnsUpdateError, canonical_mx, describe, show_mx
from continuity.dns.provider import DomainSwitch, zone_of
from continuity.errors import ConfigError

log = logging.getLogger("continuity.dns")


class _RetryableError(DnsUpdateError):
    """The API did not answer, or answered 5xx: the same request may succeed later."""


def api_key(settings: PowerDnsSettings) -> tuple[str, str]:
    """The API key and the setting it came from; ConfigError when none is usable."""
    if settings.api_key_file is not None:
        try:
            key = settings.api_key_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"dns.powerdns.api_key_file: cannot read {settings.api_key_file}: {exc.strerror}."
            ) from exc
        if not key:
            raise ConfigError(f"dns.powerdns.api_key_file: {settings.api_key_file} is empty.")
        return key, "dns.powerdns.api_key_file"
    if settings.api_key is None or not settings.api_key.get_secret_value():
        raise ConfigError("dns.powerdns: set api_key or api_key_file (PowerDNS's api-key) to use provider 'powerdns'.")
    return settings.api_key.get_secret_value(), "dns.powerdns.api_key"


class PowerDnsProvider:
    """Reads and replaces MX RRsets through PowerDNS's HTTP API."""

    name = "powerdns"

    def __init__(self, settings: DnsSettings) -> None:
        self._settings = settings
        self._api = settings.powerdns
        self._key, self._key_setting = api_key(settings.powerdns)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self._api.url}/api/v1/servers/{quote(self._api.server_id, safe='')}",
            headers={"X-API-Key": self._key, "Accept": "application/json"},
            timeout=self._settings.query_timeout,
        )

    def _zone_path(self, domain: str) -> tuple[str, str]:
        zone = zone_of(self._settings, domain).to_text()
        return zone, f"/zones/{quote(zone, safe='')}"

    async def _request(self, client: httpx.AsyncClient, method: str, domain: str, body: Any = None) -> httpx.Response:
        zone, path = self._zone_path(domain)
        where = f"PowerDNS API {self._api.url}"
        try:
            response = await client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise _RetryableError(f"{where}: {method} zone {zone} failed: {describe(exc)}") from exc
        if response.status_code in (401, 403):
            raise DnsUpdateError(
                f"{where} refused the API key ({response.status_code}): check {self._key_setting} "
                "(PowerDNS's api-key) and its webserver-allow-from"
            )
        if response.status_code in (404, 422) and method == "GET":
            raise DnsUpdateError(
                f"{where} has no zone {zone} ({response.status_code}: {_error_text(response)}); "
                "create it, or set [dns] zones when the domain is not a zone apex"
            )
        if response.status_code >= 500:
            raise _RetryableError(
                f"{where}: {method} zone {zone} answered {response.status_code}: {_error_text(response)}"
            )
        if response.status_code >= 400:
            raise DnsUpdateError(
                f"{where} rejected {method} of zone {zone} ({response.status_code}: {_error_text(response)})"
            )
        return response

    async def _zone(self, client: httpx.AsyncClient, domain: str) -> dict[str, Any]:
        response = await self._request(client, "GET", domain)
        try:
            zone: dict[str, Any] = response.json()
        except ValueError as exc:
            raise _RetryableError(f"PowerDNS API {self._api.url} answered a zone that is not JSON") from exc
        return zone

    async def _mx(self, client: httpx.AsyncClient, domain: str) -> tuple[str, ...]:
        owner = _absolute(domain)
        zone = await self._zone(client, domain)
        return tuple(
            sorted(
                " ".join(str(record["content"]).lower().split())
                for rrset in zone.get("rrsets", [])
                if rrset.get("type") == "MX" and str(rrset.get("name", "")).lower() == owner
                for record in rrset.get("records", [])
                if not record.get("disabled", False)
            )
        )

    async def access(self, domain: str) -> str:
        """The key is accepted and the zone exists (a GET of the zone)."""
        async with self._client() as client:
            zone = await self._zone(client, domain)
        return f"zone {zone.get('name', '?')} ({zone.get('kind', '?')}) at {self._api.url}"

    async def current_mx(self, domain: str) -> tuple[str, ...]:
        """The enabled MX records of domain as the API holds them."""
        async with self._client() as client:
            return await self._mx(client, domain)

    async def _patch(self, client: httpx.AsyncClient, domain: str, rrsets: list[dict[str, Any]]) -> None:
        await self._request(client, "PATCH", domain, {"rrsets": rrsets})

    async def replace_mx(self, domain: str, expected: Sequence[str], target: Sequence[str]) -> DomainSwitch:
        """Read, compare with expected, REPLACE with target, read again (see the module)."""
        settings = self._settings
        owner = _absolute(domain)
        rrset = {
            "name": owner,
            "type": "MX",
            "ttl": settings.ttl,
            "changetype": "REPLACE",
            "records": [{"content": record, "disabled": False} for record in sorted(canonical_mx(target))],
        }
        delay = 1.0
        last = ""
        for attempt in range(1, settings.attempts + 1):
            try:
                async with self._client() as client:
                    before = await self._mx(client, domain)
                    if canonical_mx(before) == canonical_mx(target):
                        return DomainSwitch(domain, before, before, updated=False)
                    if canonical_mx(before) != canonical_mx(expected):
                        raise DnsUpdateError(
                            f"{domain} MX is {show_mx(before)} at PowerDNS, not the expected {show_mx(expected)}; "
                            "someone changed it and nothing was updated"
                        )
                    await self._patch(client, domain, [rrset])
                    after = await self._mx(client, domain)
            except _RetryableError as exc:
                last = str(exc)
            else:
                if canonical_mx(after) != canonical_mx(target):
                    raise DnsUpdateError(
                        f"PowerDNS accepted the new MX of {domain} but holds {show_mx(after)} right after; "
                        "someone else is changing it"
                    )
                return DomainSwitch(domain, before, after, updated=True)
            log.warning("MX update of %s, attempt %d of %d: %s", domain, attempt, settings.attempts, last)
            if attempt < settings.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        raise DnsUpdateError(f"could not update {domain} MX after {settings.attempts} attempts: {last}")

    async def test_change(self, domain: str) -> None:
        """Add and remove the TXT record _continuity-check.<zone> through the API."""
        zone, _path = self._zone_path(domain)
        owner = f"_continuity-check.{zone}"
        add = {
            "name": owner,
            "type": "TXT",
            "ttl": 60,
            "changetype": "REPLACE",
            "records": [{"content": f'"dns check {int(time.time())}"', "disabled": False}],
        }
        remove = {"name": owner, "type": "TXT", "changetype": "DELETE"}
        async with self._client() as client:
            await self._zone(client, domain)  # a missing zone is named as such, not as a rejected PATCH
            for rrset, what in ((add, "add"), (remove, "remove")):
                try:
                    await self._patch(client, domain, [rrset])
                except DnsUpdateError as exc:
                    raise DnsUpdateError(f"a test change ({what} TXT {owner}) failed: {exc}") from exc


def _absolute(domain: str) -> str:
    return domain.lower().rstrip(".") + "."


def _error_text(response: httpx.Response) -> str:
    """The API's {"error": ...} text, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return response.text[:200]
