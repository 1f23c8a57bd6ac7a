"""A private PowerDNS Authoritative `pdns_server` for tests: gsqlite3 backend, HTTP API, loopback ports.

The zones are loaded with ``pdnsutil load-zone`` into a fresh SQLite database (the schema
Debian's pdns-backend-sqlite3 ships); the webserver with the API (``api=yes``, an
``api-key``, ``webserver-allow-from`` loopback only) listens on its own loopback port.
Caches keep PowerDNS's defaults, as in production: the API purges them on every change,
and :meth:`PowerDnsServer.edit_by_hand` purges them after a ``pdnsutil`` edit as an
administrator would (``pdns_control purge``). Nothing of the system's PowerDNS
configuration is used.

With an ``update_key`` the server also takes RFC 2136 UPDATEs (``dnsupdate=yes``, from
loopback only) signed with that TSIG key: the key is imported with ``pdnsutil
import-tsig-key`` and every zone gets the ``TSIG-ALLOW-DNSUPDATE`` metadata naming it.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import httpx

from tests.support.bind import TsigKey
from tests.support.ports import free_port

SCHEMA_PATHS = (
    Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"),
    Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"),
)


def _tool(name: str) -> str:
    return shutil.which(name) or next(
        (str(path) for path in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if path.exists()), name
    )


class PowerDnsServer:
    """`pdns_server` with zones (origin -> zone file text), DNS on address:port, the API on address:api_port."""

    def __init__(
        self,
        workdir: Path,
        zones: dict[str, str],
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
        api_key: str | None = None,
        update_key: TsigKey | None = None,
    ) -> None:
        self.workdir = workdir
        self.zones = zones
        self.address = address
        self.port = port if port is not None else free_port()
        self.api_port = free_port()
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.update_key = update_key
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "pdns.log"
        self.database = workdir / "pdns.sqlite3"

    @property
    def api_url(self) -> str:
        """The webserver's base URL, as [dns.powerdns] url takes it."""
        return f"http://{self.address}:{self.api_port}"

    def _config(self) -> str:
        return (
            "launch=gsqlite3\n"
            f"gsqlite3-database={self.database}\n"
            f"local-address={self.address}\n"
            f"local-port={self.port}\n"
            f"socket-dir={self.workdir}\n"
            "guardian=no\ndaemon=no\ndisable-syslog=yes\nloglevel=5\n"
            "api=yes\n"
            f"api-key={self.api_key}\n"
            "webserver=yes\n"
            f"webserver-address={self.address}\n"
            f"webserver-port={self.api_port}\n"
            "webserver-allow-from=127.0.0.0/8,::1/128\n"
            + ("dnsupdate=yes\nallow-dnsupdate-from=127.0.0.0/8,::1/128\n" if self.update_key else "")
        )

    def start(self, timeout: float = 20.0) -> None:
        """Create the database, load the zones, start pdns_server and wait until DNS and the API answer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        schema = next((path for path in SCHEMA_PATHS if path.exists()), None)
        if schema is None:
            raise RuntimeError("the gsqlite3 schema is missing: install the Debian package pdns-backend-sqlite3")
        with sqlite3.connect(self.database) as connection:
            connection.executescript(schema.read_text())
        connection.close()
        (self.workdir / "pdns.conf").write_text(self._config())
        for origin, text in self.zones.items():
            file = self.workdir / f"{origin}.zone"
            file.write_text(text)
            self.pdnsutil("load-zone", origin, str(file))
        if self.update_key is not None:
            key = self.update_key
            self.pdnsutil("import-tsig-key", key.name, key.algorithm, key.secret)
            for origin in self.zones:
                self.pdnsutil("set-meta", origin, "TSIG-ALLOW-DNSUPDATE", key.name)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [_tool("pdns_server"), f"--config-dir={self.workdir}"], stdout=log, stderr=log
            )
        origin = next(iter(self.zones))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pdns_server exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if self.query(origin, "SOA") and self._api_answers():
                    return
            except Exception:  # not answering yet
                pass
            time.sleep(0.1)
        raise TimeoutError(f"pdns_server did not answer in {timeout}s:\n{self.log_path.read_text()}")

    def _api_answers(self) -> bool:
        response = httpx.get(f"{self.api_url}/api/v1/servers/localhost", headers={"X-API-Key": self.api_key})
        return response.status_code == 200

    def pdnsutil(self, *args: str) -> str:
        """Run pdnsutil on this server's database; RuntimeError when it fails."""
        done = subprocess.run(
            [_tool("pdnsutil"), f"--config-dir={self.workdir}", *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(f"pdnsutil {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def add_zone(self, origin: str, text: str) -> None:
        """Create a zone from a zone file's text through the API (pdnsutil's zones wait for the zone cache)."""
        response = httpx.post(
            f"{self.api_url}/api/v1/servers/localhost/zones",
            headers={"X-API-Key": self.api_key},
            json={"name": origin.rstrip(".") + ".", "kind": "Native", "zone": text, "nameservers": []},
        )
        if response.status_code != 201:
            raise RuntimeError(f"creating zone {origin}: {response.status_code} {response.text}")

    def edit_by_hand(self, origin: str, owner: str, record_type: str, ttl: int, records: list[str]) -> None:
        """Replace an RRset with pdnsutil, then purge the caches, as an administrator does."""
        self.pdnsutil("replace-rrset", origin, owner, record_type, str(ttl), *records)
        done = subprocess.run(
            [_tool("pdns_control"), f"--socket-dir={self.workdir}", f"--config-dir={self.workdir}", "purge"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pdns_control purge: {done.stdout}{done.stderr}")

    def query(self, name: str, record_type: str) -> list[str]:
        """Ask this server directly (authoritative answer), return the records as text."""
        request = dns.message.make_query(name, dns.rdatatype.from_text(record_type))
        response = dns.query.udp(request, self.address, port=self.port, timeout=2)
        return sorted(str(record) for rrset in response.answer for record in rrset)

    def stop(self) -> None:
        """Stop pdns_server."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
