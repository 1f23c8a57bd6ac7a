"""A stand-in for Azure DNS (Resource Manager, api-version 2018-05-01) and Entra ID's token endpoint.

Built from Microsoft's published REST reference: ``POST /{tenant}/oauth2/v2.0/token``
(client-credentials grant; a wrong secret answers 401 ``invalid_client`` with an
AADSTS7000215 description), ``GET .../dnsZones/{zone}`` (with ``properties.nameServers``),
``GET/PUT/DELETE .../dnsZones/{zone}/{type}/{name}`` with an ``etag`` on every record set,
``If-Match`` and ``If-None-Match: *`` answered 412 PreconditionFailed when they do not
hold, 401 InvalidAuthenticationToken for a token it did not issue, 404 ResourceNotFound
for a zone it does not have, 429 with Retry-After (:meth:`AzureDnsApi.throttle`).

Its DNS side is real: every change of an MX or TXT record set is published into a BIND
(:class:`CloudNameServers`), which the verification queries, as Azure's name servers do.
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from collections.abc import Callable
from typing import Any

from tests.support.cloud_name_servers import CloudNameServers
from tests.support.json_http import JsonHttpServer, Reply, Request

NAME_SERVERS = ("ns1-01.azure-dns.com.", "ns2-01.azure-dns.net.", "ns3-01.azure-dns.org.", "ns4-01.azure-dns.info.")
SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-111122223333"
RESOURCE_GROUP = "mail-rg"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "5e1d4c8a-7d41-4f0e-8a55-9c2d9d0e1f20"
API_VERSION = "2018-05-01"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}}, headers or {})


class AzureDnsApi:
    """Entra ID's token endpoint and Azure DNS's record sets on 127.0.0.1, publishing into name_servers."""

    def __init__(self, name_servers: CloudNameServers) -> None:
        self.client_secret = secrets.token_urlsafe(30)
        self.name_servers = name_servers
        # zone -> (type, relative name) -> {"etag", "ttl", "records"}; records are '10 host.' (MX) or texts (TXT).
        self.zones: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._throttled = 0
        self._retry_after = 1
        self._before_put: Callable[[], None] | None = None
        self.server = JsonHttpServer(self._handle)

    @property
    def url(self) -> str:
        """The base URL of both the authority and Resource Manager."""
        return self.server.url

    def start(self) -> None:
        """Serve."""
        self.server.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()

    def add_zone(self, zone: str, mx: list[str]) -> None:
        """A zone holding an apex MX record set (TTL 60)."""
        with self._lock:
            self.zones[zone] = {("MX", "@"): {"etag": str(uuid.uuid4()), "ttl": 60, "records": list(mx)}}

    def mx(self, zone: str) -> list[str]:
        """The apex MX records as Azure DNS holds them."""
        found = self.zones[zone].get(("MX", "@"))
        return sorted(found["records"]) if found else []

    def txt_names(self, zone: str) -> list[str]:
        """The names holding a TXT record set."""
        return sorted(name for rdtype, name in self.zones[zone] if rdtype == "TXT")

    def edit_mx_by_hand(self, zone: str, mx: list[str]) -> None:
        """Replace the apex MX set as someone in the portal does (a new etag)."""
        with self._lock:
            self._put(zone, "MX", "@", 60, list(mx))

    def edit_mx_before_next_put(self, zone: str, mx: list[str]) -> None:
        """Someone edits the MX in the portal right between the appliance's read and its PUT."""

        def edit() -> None:
            self._put(zone, "MX", "@", 60, list(mx))

        self._before_put = edit

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (401), as after a secret's rotation."""
        self._tokens.clear()

    def throttle(self, requests: int, retry_after: int = 1) -> None:
        """The next Resource Manager requests answer 429 with Retry-After."""
        self._throttled, self._retry_after = requests, retry_after

    def _put(self, zone: str, rdtype: str, name: str, ttl: int, records: list[str]) -> dict[str, Any]:
        record_set = {"etag": str(uuid.uuid4()), "ttl": ttl, "records": records}
        self.zones[zone][(rdtype, name)] = record_set
        self._publish(zone, rdtype, name)
        return record_set

    def _publish(self, zone: str, rdtype: str, name: str) -> None:
        found = self.zones[zone].get((rdtype, name))
        owner = f"{zone}." if name == "@" else f"{name}.{zone}."
        records = found["records"] if found else []
        if rdtype == "TXT":
            records = [f'"{text}"' for text in records]
        self.name_servers.publish(zone, owner, rdtype, found["ttl"] if found else 60, records)

    def _token(self, request: Request) -> Reply:
        form = request.body or {}
        if form.get("grant_type") != "client_credentials" or not str(form.get("scope", "")).endswith("/.default"):
            return Reply(400, {"error": "invalid_request", "error_description": "AADSTS900144: bad grant or scope."})
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != self.client_secret:
            return Reply(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being "
                    f"sent in the request is the client secret value, not the client secret ID, for a secret added "
                    f"to app '{CLIENT_ID}'.",
                    "error_codes": [7000215],
                },
            )
        token = secrets.token_urlsafe(40)
        self._tokens.add(token)
        return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    def _handle(self, request: Request) -> Reply:
        if re.fullmatch(rf"/{TENANT}/oauth2/v2\.0/token", request.path) and request.method == "POST":
            return self._token(request)
        auth = request.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") not in self._tokens:
            return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if self._throttled > 0:
            self._throttled -= 1
            return _error(
                429,
                "TooManyRequests",
                "The request is being throttled.",
                {"Retry-After": str(self._retry_after)},
            )
        if request.query.get("api-version") != API_VERSION:
            return _error(400, "InvalidApiVersionParameter", "The api-version is invalid.")
        with self._lock:
            return self._route(request)

    def _route(self, request: Request) -> Reply:
        base = rf"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft\.Network/dnsZones"
        match = re.fullmatch(base + r"/(?P<zone>[^/]+)(?:/(?P<type>MX|TXT)/(?P<name>[^/]+))?", request.path)
        if match is None:
            return _error(404, "NotFound", f"No route for {request.path}")
        zone = match["zone"]
        if zone not in self.zones:
            return _error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Network/dnszones/{zone}' under resource group '{RESOURCE_GROUP}' "
                "was not found.",
            )
        if match["type"] is None:
            return Reply(200, self._zone_body(zone)) if request.method == "GET" else _error(405, "MethodNotAllowed", "")
        return self._record_set(request, zone, match["type"], match["name"])

    def _zone_body(self, zone: str) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/"
            f"dnszones/{zone}",
            "name": zone,
            "type": "Microsoft.Network/dnszones",
            "etag": "00000002-0000-0000-76c2-f7ad90b5d101",
            "location": "global",
            "properties": {
                "maxNumberOfRecordSets": 10000,
                "numberOfRecordSets": len(self.zones[zone]) + 2,
                "nameServers": list(NAME_SERVERS),
            },
        }

    def _record_set_body(self, zone: str, rdtype: str, name: str) -> dict[str, Any]:
        found = self.zones[zone][(rdtype, name)]
        properties: dict[str, Any] = {"TTL": found["ttl"], "fqdn": (zone if name == "@" else f"{name}.{zone}") + "."}
        if rdtype == "MX":
            properties["MXRecords"] = [
                {"preference": int(text.split()[0]), "exchange": text.split()[1].rstrip(".")}
                for text in found["records"]
            ]
        else:
            properties["TXTRecords"] = [{"value": [text]} for text in found["records"]]
        return {
            "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/"
            f"dnszones/{zone}/{rdtype}/{name}",
            "name": name,
            "type": f"Microsoft.Network/dnszones/{rdtype}",
            "etag": found["etag"],
            "properties": properties,
        }

    def _record_set(self, request: Request, zone: str, rdtype: str, name: str) -> Reply:
        key = (rdtype, name)
        if request.method == "GET":
            if key not in self.zones[zone]:
                return _error(
                    404,
                    "NotFound",
                    f"The resource record '{name}' does not exist in resource group "
                    f"'{RESOURCE_GROUP}' of subscription '{SUBSCRIPTION}'.",
                )
            return Reply(200, self._record_set_body(zone, rdtype, name))
        if request.method == "DELETE":
            existed = self.zones[zone].pop(key, None) is not None
            self._publish(zone, rdtype, name)
            return Reply(200 if existed else 204)
        if request.method != "PUT":
            return _error(405, "MethodNotAllowed", f"{request.method} is not allowed")
        if rdtype == "MX" and self._before_put is not None:
            edit, self._before_put = self._before_put, None
            edit()
        current = self.zones[zone].get(key)
        if_match, if_none_match = request.headers.get("if-match"), request.headers.get("if-none-match")
        if (if_match is not None and (current is None or current["etag"] != if_match)) or (
            if_none_match == "*" and current is not None
        ):
            return _error(412, "PreconditionFailed", f"The Record set {name} has been modified (etag mismatch).")
        properties = request.body["properties"]
        if rdtype == "MX":
            records = [f"{item['preference']} {item['exchange'].rstrip('.')}." for item in properties["MXRecords"]]
        else:
            records = [" ".join(item["value"]) for item in properties["TXTRecords"]]
        self._put(zone, rdtype, name, int(properties["TTL"]), records)
        return Reply(201 if current is None else 200, self._record_set_body(zone, rdtype, name))
