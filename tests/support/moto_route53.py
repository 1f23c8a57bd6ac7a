"""Route 53 for tests: moto's server mode (a maintained AWS emulator) on 127.0.0.1, and its name servers in BIND.

moto answers Route 53's API but serves no DNS. :class:`Route53Mirror` does what Route 53's
name servers do: a thread reads every hosted zone's MX and TXT sets through the API
(every 0.1 s) and publishes each change into a real BIND (:class:`CloudNameServers`),
which the verification queries. moto's state is global to the process: it is reset
when a server starts.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
import httpx
from moto.server import ThreadedMotoServer

from tests.support.cloud_name_servers import CloudNameServers
from tests.support.ports import free_port, wait_for_port

if TYPE_CHECKING:
    from mypy_boto3_route53.client import Route53Client

# moto's default delegation set (what Route 53 assigns a new hosted zone, in moto's spelling).
NAME_SERVERS = (
    "ns-2048.awsdns-64.com.",
    "ns-2049.awsdns-65.net.",
    "ns-2050.awsdns-66.org.",
    "ns-2051.awsdns-67.co.uk.",
)
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class MotoRoute53:
    """moto's server on 127.0.0.1 with Route 53's API; hosted zones made with :meth:`create_zone`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint_url(self) -> str:
        """As [dns.route53] endpoint_url takes it."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and forget what an earlier one held."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        self.server.start()
        wait_for_port(self.port)
        httpx.post(f"{self.endpoint_url}/moto-api/reset").raise_for_status()

    def stop(self) -> None:
        """Stop the server."""
        self.server.stop()

    def client(self) -> Route53Client:
        """A boto3 client of this server (an administrator's console)."""
        return boto3.client(
            "route53",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def create_zone(self, origin: str, records: list[tuple[str, str, list[str]]], ttl: int = 300) -> str:
        """A public hosted zone with records (owner relative to origin or '@', type, values); its id.

        The TTL differs from the switch's (60): moto refuses a CREATE equal to one in the zone's
        history while a set of that name exists before the batch's DELETE is applied (Route 53
        applies the DELETE first), so a failback to the very set made here would be refused.
        """
        client = self.client()
        zone = client.create_hosted_zone(Name=origin, CallerReference=f"test {origin}")["HostedZone"]
        zone_id = zone["Id"].rsplit("/", 1)[-1]
        changes: list[Any] = []
        for owner, rdtype, values in records:
            name = origin if owner == "@" else f"{owner}.{origin}"
            changes.append(
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": name.rstrip(".") + ".",
                        "Type": rdtype,
                        "TTL": ttl,
                        "ResourceRecords": [{"Value": value} for value in values],
                    },
                }
            )
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
        return zone_id

    def edit_by_hand(self, origin: str, rdtype: str, values: list[str]) -> None:
        """UPSERT origin's rdtype set as an administrator does in the console."""
        client = self.client()
        (zone,) = [z for z in client.list_hosted_zones()["HostedZones"] if z["Name"] == origin.rstrip(".") + "."]
        rrset: Any = {
            "Name": zone["Name"],
            "Type": rdtype,
            "TTL": 60,
            "ResourceRecords": [{"Value": value} for value in values],
        }
        client.change_resource_record_sets(
            HostedZoneId=zone["Id"], ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": rrset}]}
        )


class Route53Mirror:
    """Publishes the MX and TXT sets of moto's hosted zones into BIND as they change (Route 53's name servers)."""

    def __init__(self, route53: MotoRoute53, name_servers: CloudNameServers) -> None:
        self._route53 = route53
        self._name_servers = name_servers
        self._stop = threading.Event()
        self._served: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}
        self._thread = threading.Thread(target=self._run, name="route53-mirror", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start copying."""
        self._thread.start()

    def stop(self) -> None:
        """Stop copying; raises what went wrong in the thread, if anything."""
        self._stop.set()
        self._thread.join(timeout=10)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        client = self._route53.client()
        while not self._stop.wait(0.1):
            try:
                self._copy_once(client)
            except botocore.exceptions.EndpointConnectionError:
                continue  # moto stopped by the test: nothing to copy until it is back
            except Exception as exc:
                self.error = exc
                return

    def _copy_once(self, client: Route53Client) -> None:
        if not self._name_servers.copying:
            return
        for zone in client.list_hosted_zones()["HostedZones"]:
            origin = zone["Name"]
            seen: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}
            for rrset in client.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]:
                if rrset["Type"] in ("MX", "TXT"):
                    values = tuple(sorted(item["Value"] for item in rrset.get("ResourceRecords", [])))
                    seen[(rrset["Name"], rrset["Type"])] = (int(rrset.get("TTL", 60)), values)
            gone = {key for key in self._served if key[0].endswith(origin) and key not in seen}
            for key in gone:
                self._name_servers.publish(origin, key[0], key[1], 60, [])
                del self._served[key]
            for key, (ttl, values) in seen.items():
                if self._served.get(key) != (ttl, values):
                    self._name_servers.publish(origin, key[0], key[1], ttl, list(values))
                    self._served[key] = (ttl, values)
