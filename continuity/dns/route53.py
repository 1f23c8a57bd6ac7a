"""The ``route53`` provider: Amazon Route 53's API through boto3 (AWS's maintained client).

The hosted zone is found by name (ListHostedZonesByName, public zones only) and the MX
set read with ListResourceRecordSets. The compare-and-swap is Route 53's own
precondition: ONE ChangeResourceRecordSets batch holding a DELETE of the exact set read
(name, type, TTL and values) and a CREATE of the new one; Route 53 applies a batch whole
or not at all and rejects it (InvalidChangeBatch) when the DELETE does not match what it
holds, so a change made by someone between the read and the write changes nothing. The
set is also compared before the batch is sent, so the error names what was found. After
the batch the change is waited for until INSYNC (GetChange, at most
``[dns.route53] insync_timeout``); the shared verification then queries the zone's name
servers, which this provider lists from the zone's apex NS set.

boto3 blocks: every call runs in a worker thread (``asyncio.to_thread``), never on the
event loop. Transient errors (throttling, 5xx, connection errors) are retried by
botocore's standard retry mode, ``[dns] attempts`` times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from continuity.config.dns import DnsSettings
from continuity.dns.credentials import secret_from
from continuity.dns.errors import DnsUpdateError, canonical_mx, describe, show_mx
from continuity.dns.provider import DomainSwitch, zone_of

if TYPE_CHECKING:
    from mypy_boto3_route53.client import Route53Client
    from mypy_boto3_route53.type_defs import ChangeTypeDef, ResourceRecordSetOutputTypeDef

T = TypeVar("T")

# Codes with which AWS refuses who is asking (unknown key, bad secret, expired, or not allowed by IAM).
_REFUSED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "ExpiredToken",
        "InvalidAccessKeyId",
    }
)


class _BatchRejectedError(DnsUpdateError):
    """Route 53 rejected a change batch (InvalidChangeBatch): its DELETE did not match, or its CREATE exists."""


class Route53Provider:
    """Reads and replaces MX sets in a Route 53 hosted zone (see the module)."""

    name = "route53"

    def __init__(self, settings: DnsSettings) -> None:
        self._settings = settings
        self._aws = settings.route53
        self._secret: str | None = None
        self._credentials_from = "AWS's standard credential chain"
        if self._aws.access_key_id:
            self._secret, self._credentials_from = secret_from(
                "route53", "secret_access_key", self._aws.secret_access_key, self._aws.credential_file, "the secret key"
            )
        self._client_made: Route53Client | None = None
        self._zone_ids: dict[str, str] = {}
        self._where = f"Route 53 ({self._aws.endpoint_url})" if self._aws.endpoint_url else "Route 53"

    def _make_client(self) -> Route53Client:
        session = boto3.session.Session(
            aws_access_key_id=self._aws.access_key_id or None,
            aws_secret_access_key=self._secret,
            region_name=self._aws.region,
        )
        config = botocore.config.Config(
            retries={"mode": "standard", "max_attempts": self._settings.attempts},
            connect_timeout=self._settings.query_timeout,
            read_timeout=self._settings.query_timeout,
        )
        return session.client("route53", endpoint_url=self._aws.endpoint_url or None, config=config)

    async def _call(self, what: str, call: Callable[[Route53Client], T]) -> T:
        """One API call in a worker thread, its errors as DnsUpdateError naming what to fix."""

        def run() -> T:
            if self._client_made is None:
                self._client_made = self._make_client()
            return call(self._client_made)

        try:
            return await asyncio.to_thread(run)
        except botocore.exceptions.NoCredentialsError as exc:
            raise DnsUpdateError(
                f"{self._where}: no AWS credentials for {what}: set dns.route53.access_key_id and secret_access_key "
                "(or credential_file), or provide AWS's standard chain (environment, shared files, instance role)"
            ) from exc
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "?"), error.get("Message", "")
            if code == "InvalidChangeBatch":
                raise _BatchRejectedError(f"{self._where} rejected the change batch of {what}: {message}") from exc
            if code in _REFUSED:
                raise DnsUpdateError(
                    f"{self._where} refused {what} ({code}: {message}): check {self._credentials_from} "
                    "and its IAM policy (docs/dns-providers.md)"
                ) from exc
            if code == "NoSuchHostedZone":
                self._zone_ids.clear()  # recreated zones get new ids: look them up again next time
                raise DnsUpdateError(f"{self._where} has no such hosted zone for {what} ({message})") from exc
            raise DnsUpdateError(f"{self._where}: {what} failed ({code}: {message})") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise DnsUpdateError(f"{self._where}: {what} failed: {describe(exc)}") from exc

    async def _zone_id(self, domain: str) -> str:
        """The id of the one public hosted zone named like domain's zone."""
        zone = zone_of(self._settings, domain).to_text()
        if zone in self._zone_ids:
            return self._zone_ids[zone]
        found = await self._call(
            f"the lookup of zone {zone}", lambda client: client.list_hosted_zones_by_name(DNSName=zone, MaxItems="10")
        )
        public = [
            item["Id"].rsplit("/", 1)[-1]
            for item in found.get("HostedZones", [])
            if item["Name"].lower() == zone.lower() and not item.get("Config", {}).get("PrivateZone", False)
        ]
        if not public:
            raise DnsUpdateError(
                f"{self._where} has no public hosted zone {zone}; create it, or set [dns] zones "
                "when the domain is not a zone apex"
            )
        if len(public) > 1:
            raise DnsUpdateError(f"{self._where} has {len(public)} public hosted zones named {zone}: {public}")
        self._zone_ids[zone] = public[0]
        return public[0]

    async def _record_set(
        self, zone_id: str, owner: str, rdtype: Literal["MX", "NS"]
    ) -> ResourceRecordSetOutputTypeDef | None:
        """The record set owner/rdtype exactly as Route 53 holds it, or None."""
        found = await self._call(
            f"the read of {owner} {rdtype}",
            lambda client: client.list_resource_record_sets(
                HostedZoneId=zone_id, StartRecordName=owner, StartRecordType=rdtype, MaxItems="1"
            ),
        )
        for rrset in found.get("ResourceRecordSets", []):
            if rrset["Name"].lower() == owner.lower() and rrset["Type"] == rdtype:
                if "SetIdentifier" in rrset or "AliasTarget" in rrset:
                    raise DnsUpdateError(
                        f"{owner} {rdtype} on {self._where} uses a routing policy or an alias; "
                        "only a simple record set can be switched"
                    )
                return rrset
        return None

    @staticmethod
    def _values(rrset: ResourceRecordSetOutputTypeDef | None) -> tuple[str, ...]:
        if rrset is None:
            return ()
        return tuple(sorted(" ".join(item["Value"].lower().split()) for item in rrset.get("ResourceRecords", [])))

    async def name_servers(self, zone: str) -> list[str]:
        """The hosted zone's apex NS set (Route 53's delegation set), for the verification."""
        zone_id = await self._zone_id(zone)
        return list(self._values(await self._record_set(zone_id, zone, "NS")))

    async def access(self, domain: str) -> str:
        """The credentials find the hosted zone and may read its records."""
        zone_id = await self._zone_id(domain)
        await self._record_set(zone_id, _absolute(domain), "MX")
        zone = zone_of(self._settings, domain).to_text()
        return f"hosted zone {zone} ({zone_id}) on {self._where}, credentials from {self._credentials_from}"

    async def current_mx(self, domain: str) -> tuple[str, ...]:
        """The MX set of domain as Route 53 holds it."""
        return self._values(await self._record_set(await self._zone_id(domain), _absolute(domain), "MX"))

    async def _change(self, zone_id: str, what: str, changes: list[ChangeTypeDef]) -> str:
        answer = await self._call(
            what,
            lambda client: client.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch={"Comment": "continuity: " + what, "Changes": changes}
            ),
        )
        return answer["ChangeInfo"]["Id"]

    async def _change_status(self, change_id: str) -> str:
        """PENDING or INSYNC (GetChange)."""
        answer = await self._call(f"the status of change {change_id}", lambda client: client.get_change(Id=change_id))
        return answer["ChangeInfo"]["Status"]

    async def _wait_insync(self, change_id: str, domain: str) -> None:
        deadline = time.monotonic() + self._aws.insync_timeout
        while True:
            status = await self._change_status(change_id)
            if status == "INSYNC":
                return
            if time.monotonic() >= deadline:
                raise DnsUpdateError(
                    f"the change of {domain} MX ({change_id}) is still {status} on {self._where} after "
                    f"{self._aws.insync_timeout:g}s ([dns.route53] insync_timeout); the next attempt verifies it"
                )
            await asyncio.sleep(min(2.0, max(0.1, deadline - time.monotonic())))

    async def replace_mx(self, domain: str, expected: Sequence[str], target: Sequence[str]) -> DomainSwitch:
        """DELETE the exact expected set and CREATE target in one batch, wait for INSYNC (see the module)."""
        owner = _absolute(domain)
        zone_id = await self._zone_id(domain)
        rrset = await self._record_set(zone_id, owner, "MX")
        before = self._values(rrset)
        if canonical_mx(before) == canonical_mx(target):
            return DomainSwitch(domain, before, before, updated=False)
        if canonical_mx(before) != canonical_mx(expected):
            raise DnsUpdateError(
                f"{domain} MX is {show_mx(before)} on {self._where}, not the expected {show_mx(expected)}; "
                "someone changed it and nothing was updated"
            )
        changes: list[ChangeTypeDef] = []
        if rrset is not None:
            changes.append({"Action": "DELETE", "ResourceRecordSet": rrset})
        new_set: Any = {
            "Name": owner,
            "Type": "MX",
            "TTL": self._settings.ttl,
            "ResourceRecords": [{"Value": value} for value in sorted(canonical_mx(target))],
        }
        changes.append({"Action": "CREATE", "ResourceRecordSet": new_set})
        try:
            change_id = await self._change(zone_id, f"the MX switch of {domain}", changes)
        except _BatchRejectedError as exc:
            current = self._values(await self._record_set(zone_id, owner, "MX"))
            if canonical_mx(current) == canonical_mx(target):
                return DomainSwitch(domain, current, current, updated=False)
            if canonical_mx(current) == canonical_mx(expected):
                raise DnsUpdateError(f"{exc}; {domain} MX is still {show_mx(current)}, nothing was updated") from exc
            raise DnsUpdateError(
                f"{exc}; {domain} MX is now {show_mx(current)}, not the expected {show_mx(expected)}: "
                "someone changed it and nothing was updated"
            ) from exc
        await self._wait_insync(change_id, domain)
        after = self._values(await self._record_set(zone_id, owner, "MX"))
        return DomainSwitch(domain, before, after, updated=True)

    async def test_change(self, domain: str) -> None:
        """UPSERT and DELETE the TXT record _continuity-check.<zone> (one batch each), and read their status."""
        zone_id = await self._zone_id(domain)
        owner = f"_continuity-check.{zone_of(self._settings, domain).to_text()}"
        txt: Any = {
            "Name": owner,
            "Type": "TXT",
            "TTL": 60,
            "ResourceRecords": [{"Value": f'"dns check {int(time.time())}"'}],
        }
        steps: tuple[tuple[Literal["UPSERT", "DELETE"], str], ...] = (("UPSERT", "add"), ("DELETE", "remove"))
        for action, what in steps:
            try:
                change_id = await self._change(
                    zone_id, f"a test change ({what} TXT {owner})", [{"Action": action, "ResourceRecordSet": txt}]
                )
                # The switch waits for INSYNC: prove route53:GetChange too (one call, no waiting).
                await self._change_status(change_id)
            except DnsUpdateError as exc:
                raise DnsUpdateError(f"a test change ({what} TXT {owner}) failed: {exc}") from exc


def _absolute(domain: str) -> str:
    return domain.lower().rstrip(".") + "."
