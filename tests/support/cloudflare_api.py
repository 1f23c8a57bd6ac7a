"""A stand-in for Cloudflare's API v4 (the DNS parts), built from Cloudflare's published API reference.

Requests and answers as documented: the envelope ``{success, errors[{code, message}],
messages, result, result_info}``; ``GET /zones?name=`` (an empty result for a zone the
token cannot see), ``GET/POST /zones/{id}/dns_records``, ``DELETE .../dns_records/{id}``
and ``POST .../dns_records/batch`` (deletes, then posts, applied whole or not at all;
a delete of an unknown id fails the batch with 81044). A wrong token answers HTTP 403
with code 10000 (Authentication error) and 9109 (Invalid access token); an unknown zone
id 404 with 7003. :meth:`CloudflareApi.throttle` makes the next requests answer 429
with Retry-After and code 971, :meth:`CloudflareApi.fail` answers 500 to a path.

Its DNS side is real: every change of an MX or TXT record set is published into a BIND
(:class:`CloudNameServers`), which the verification queries, as Cloudflare's edge serves
its records.
"""

from __future__ import annotations

import re
import secrets
import threading
from typing import Any

from tests.support.cloud_name_servers import CloudNameServers
from tests.support.json_http import JsonHttpServer, Reply, Request

NAME_SERVERS = ("ada.ns.cloudflare.com", "bob.ns.cloudflare.com")


def _envelope(result: Any, status: int = 200, **extra: Any) -> Reply:
    return Reply(status, {"success": True, "errors": [], "messages": [], "result": result, **extra})


def _failure(status: int, *errors: tuple[int, str], headers: dict[str, str] | None = None) -> Reply:
    body = {
        "success": False,
        "errors": [{"code": code, "message": message} for code, message in errors],
        "messages": [],
        "result": None,
    }
    return Reply(status, body, headers or {})


class CloudflareApi:
    """The API on 127.0.0.1, holding zones whose MX and TXT records it publishes into name_servers."""

    def __init__(self, name_servers: CloudNameServers) -> None:
        self.token = secrets.token_urlsafe(30)
        self.name_servers = name_servers
        self.zones: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._throttled = 0
        self._retry_after = 1
        self._failing: set[str] = set()
        self.server = JsonHttpServer(self._handle)

    @property
    def api_url(self) -> str:
        """As [dns.cloudflare] api_url takes it."""
        return f"{self.server.url}/client/v4"

    def start(self) -> None:
        """Serve."""
        self.server.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()

    def add_zone(self, name: str, records: list[tuple[str, str, str, int | None]]) -> None:
        """A zone with records (owner name, type, content, priority) as the account's admin adds them."""
        zone_id = secrets.token_hex(16)
        with self._lock:
            self.zones[zone_id] = {"id": zone_id, "name": name, "records": {}}
            for owner, rdtype, content, priority in records:
                self._create(zone_id, {"type": rdtype, "name": owner, "content": content, "priority": priority})

    def zone_id(self, name: str) -> str:
        """The id of zone name."""
        return next(zone_id for zone_id, zone in self.zones.items() if zone["name"] == name)

    def mx(self, zone: str) -> list[str]:
        """The zone apex's MX records as Cloudflare holds them, as '10 host.'."""
        records = self.zones[self.zone_id(zone)]["records"].values()
        return sorted(f"{r['priority']} {r['content']}." for r in records if r["type"] == "MX" and r["name"] == zone)

    def txt_owners(self, zone: str) -> list[str]:
        """The names that have TXT records in zone."""
        return sorted(r["name"] for r in self.zones[self.zone_id(zone)]["records"].values() if r["type"] == "TXT")

    def edit_mx_by_hand(self, zone: str, mx: list[str]) -> None:
        """Replace the apex MX records as someone in the dashboard does."""
        zone_id = self.zone_id(zone)
        with self._lock:
            records = self.zones[zone_id]["records"]
            for record_id in [i for i, r in records.items() if r["type"] == "MX" and r["name"] == zone]:
                del records[record_id]
            for text in mx:
                priority, host = text.split()
                self._create(
                    zone_id, {"type": "MX", "name": zone, "content": host.rstrip("."), "priority": int(priority)}
                )
            self._publish(zone_id, zone, "MX")

    def renumber_zone(self, name: str) -> None:
        """The zone gets a new id, records kept (as when it is deleted and added again)."""
        with self._lock:
            zone = self.zones.pop(self.zone_id(name))
            zone["id"] = secrets.token_hex(16)
            for record in zone["records"].values():
                record["zone_id"] = zone["id"]
            self.zones[zone["id"]] = zone

    def throttle(self, requests: int, retry_after: int = 1) -> None:
        """The next requests answer 429 with Retry-After."""
        self._throttled, self._retry_after = requests, retry_after

    def fail(self, path_pattern: str) -> None:
        """Requests whose path matches the regular expression answer 500 (until cleared with '')."""
        self._failing = {path_pattern} if path_pattern else set()

    def _create(self, zone_id: str, body: dict[str, Any]) -> dict[str, Any]:
        record = {
            "id": secrets.token_hex(16),
            "zone_id": zone_id,
            "zone_name": self.zones[zone_id]["name"],
            "type": body["type"],
            "name": str(body["name"]).rstrip(".").lower(),
            "content": str(body["content"]).rstrip("."),
            "ttl": int(body.get("ttl", 1)),
            "proxied": False,
        }
        if body["type"] == "MX":
            record["priority"] = int(body["priority"])
        self.zones[zone_id]["records"][record["id"]] = record
        return record

    def _publish(self, zone_id: str, owner: str, rdtype: str) -> None:
        zone = self.zones[zone_id]
        found = [r for r in zone["records"].values() if r["name"] == owner and r["type"] == rdtype]
        values = [f"{r['priority']} {r['content']}." if rdtype == "MX" else r["content"] for r in found]
        # Cloudflare's ttl 1 means "automatic" (300 s).
        ttl = min((r["ttl"] for r in found), default=300)
        self.name_servers.publish(zone["name"], owner + ".", rdtype, 300 if ttl == 1 else ttl, values)

    def _handle(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _failure(403, (10000, "Authentication error"), (9109, "Invalid access token"))
        if self._throttled > 0:
            self._throttled -= 1
            return _failure(
                429,
                (971, "Please wait and consider throttling your request speed"),
                headers={"Retry-After": str(self._retry_after)},
            )
        path = request.path.removeprefix("/client/v4")
        if any(re.search(pattern, path) for pattern in self._failing):
            return _failure(500, (10001, "Internal server error"))
        with self._lock:
            return self._route(request, path)

    def _route(self, request: Request, path: str) -> Reply:
        if path == "/zones" and request.method == "GET":
            name = request.query.get("name")
            zones = [
                {"id": z["id"], "name": z["name"], "status": "active", "name_servers": list(NAME_SERVERS)}
                for z in self.zones.values()
                if name is None or z["name"] == name
            ]
            info = {"page": 1, "per_page": 20, "count": len(zones), "total_count": len(zones), "total_pages": 1}
            return _envelope(zones, result_info=info)
        match = re.fullmatch(r"/zones/(?P<zone>[^/]+)/dns_records(?:/(?P<record>[^/]+))?", path)
        if match is None or match["zone"] not in self.zones:
            return _failure(404, (7003, f"Could not route to {path}, perhaps your object identifier is invalid?"))
        zone_id, record_id = match["zone"], match["record"]
        records: dict[str, dict[str, Any]] = self.zones[zone_id]["records"]
        if record_id is None and request.method == "GET":
            found = [
                r
                for r in records.values()
                if r["type"] == request.query.get("type", r["type"])
                and r["name"] == request.query.get("name", r["name"])
            ]
            return _envelope(
                found, result_info={"page": 1, "per_page": 100, "count": len(found), "total_count": len(found)}
            )
        if record_id is None and request.method == "POST":
            record = self._create(zone_id, request.body)
            self._publish(zone_id, record["name"], record["type"])
            return _envelope(record)
        if record_id == "batch" and request.method == "POST":
            return self._batch(zone_id, request.body)
        if record_id is not None and request.method == "DELETE":
            if record_id not in records:
                return _failure(404, (81044, "Record does not exist."))
            gone = records.pop(record_id)
            self._publish(zone_id, gone["name"], gone["type"])
            return _envelope({"id": record_id})
        return _failure(405, (10000, f"{request.method} {path} is not supported here"))

    def _batch(self, zone_id: str, body: dict[str, Any]) -> Reply:
        records: dict[str, dict[str, Any]] = self.zones[zone_id]["records"]
        deletes = [item["id"] for item in body.get("deletes", [])]
        if any(record_id not in records for record_id in deletes):
            return _failure(404, (81044, "Record does not exist."))
        touched = {(records[i]["name"], records[i]["type"]) for i in deletes}
        deleted = [records.pop(record_id) for record_id in deletes]
        posted = [self._create(zone_id, item) for item in body.get("posts", [])]
        touched |= {(r["name"], r["type"]) for r in posted}
        for owner, rdtype in touched:
            self._publish(zone_id, owner, rdtype)
        return _envelope({"deletes": deleted, "patches": [], "puts": [], "posts": posted})
