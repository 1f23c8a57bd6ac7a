"""A real BIND standing in for a DNS service's name servers (Route 53's, Cloudflare's, Azure's) on loopback.

It serves the customer's zones and, so that the service's name server names resolve, a
zone for each of those names' parents (``ns-2048.awsdns-64.com`` becomes zone
``awsdns-64.com`` with ``ns-2048`` at 127.0.0.1). The service's API (moto, a stand-in)
holds the records; what the service's name servers do, serving each change, is done by
:meth:`CloudNameServers.publish`, a signed UPDATE into BIND. With ``copying`` off the
changes are not published: the API says OK, its name servers keep the old records.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dns.name
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update

from tests.support.bind import BindServer, TsigKey, zone_text


def _name_server_zones(names: Sequence[str], address: str) -> dict[str, str]:
    labels: dict[str, list[str]] = {}
    for name in names:
        absolute = dns.name.from_text(name)
        labels.setdefault(absolute.parent().to_text(omit_final_dot=True), []).append(
            absolute.relativize(absolute.parent()).to_text()
        )
    return {
        origin: zone_text(origin, [f"{label} IN A {address}" for label in found], ttl=3600)
        for origin, found in labels.items()
    }


class CloudNameServers:
    """BIND serving zones (origin -> records) and the names of the service's name servers, at 127.0.0.1."""

    def __init__(self, workdir: Path, zones: dict[str, list[str]], name_servers: Sequence[str]) -> None:
        self.key = TsigKey.generate("cloud-publisher")
        texts = {origin: zone_text(origin, records, ttl=60) for origin, records in zones.items()}
        texts |= _name_server_zones(name_servers, "127.0.0.1")
        self.bind = BindServer(workdir, texts, self.key)
        self.copying = True

    @property
    def port(self) -> int:
        """The port BIND answers on (UDP and TCP, 127.0.0.1)."""
        return self.bind.port

    def start(self) -> None:
        """Start BIND."""
        self.bind.start()

    def stop(self) -> None:
        """Stop BIND."""
        self.bind.stop()

    def query(self, name: str, record_type: str) -> list[str]:
        """What BIND serves for name/type."""
        return self.bind.query(name, record_type)

    def publish(self, origin: str, owner: str, record_type: str, ttl: int, records: Sequence[str]) -> None:
        """Serve owner/type as records (none: delete it), unless copying is off."""
        if not self.copying:
            return
        keyring = dns.tsigkeyring.from_text({self.key.name: self.key.secret})
        update = dns.update.UpdateMessage(origin, keyring=keyring)
        if records:
            update.replace(dns.name.from_text(owner), ttl, record_type, *records)
        else:
            update.delete(dns.name.from_text(owner), record_type)
        response = dns.query.tcp(update, "127.0.0.1", port=self.port, timeout=5)
        if response.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"BIND refused {owner} {record_type}: {dns.rcode.to_text(response.rcode())}")
