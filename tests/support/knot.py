"""A private Knot DNS `knotd` for tests: one primary zone, a TSIG key, the ACL an operator would write, a loopback port.

The ACL is the one docs/dns-providers.md gives: the key may update only MX and TXT
records (``update-type``), and only at the zone's apex and ``_continuity-check``
(``update-owner``). A control socket lets a test edit the zone the way an administrator
does by hand (``knotc zone-begin`` ... ``zone-commit``). Nothing of the system's Knot
configuration is used.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from tests.support.bind import TsigKey
from tests.support.ports import free_port


class KnotServer:
    """`knotd` with one zone under workdir, listening on address:port (UDP and TCP)."""

    def __init__(
        self,
        workdir: Path,
        origin: str,
        zone: str,
        key: TsigKey,
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.origin = origin
        self.zone = zone
        self.key = key
        self.address = address
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "knotd.log"
        self.config_path = workdir / "knot.conf"
        self.socket_path = workdir / "knot.sock"

    def _config(self) -> str:
        key = self.key
        return (
            "server:\n"
            f'    rundir: "{self.workdir}"\n'
            f"    listen: {self.address}@{self.port}\n"
            "log:\n  - target: stderr\n    any: info\n"
            f'database:\n    storage: "{self.workdir / "db"}"\n'
            f'control:\n    listen: "{self.socket_path}"\n'
            "key:\n"
            f"  - id: {key.name}\n    algorithm: {key.algorithm}\n    secret: {key.secret}\n"
            "acl:\n"
            "  - id: continuity_update\n"
            f"    key: {key.name}\n"
            "    action: update\n"
            "    update-type: [MX, TXT]\n"
            "    update-owner: name\n"
            "    update-owner-match: equal\n"
            f"    update-owner-name: [{self.origin}., _continuity-check.{self.origin}.]\n"
            "zone:\n"
            f"  - domain: {self.origin}\n"
            f'    storage: "{self.workdir}"\n'
            f"    file: {self.origin}.zone\n"
            "    acl: continuity_update\n"
        )

    def start(self, timeout: float = 20.0) -> None:
        """Write the configuration and zone, start knotd and wait until it serves the zone."""
        knotd = shutil.which("knotd") or "/usr/sbin/knotd"
        (self.workdir / "db").mkdir(parents=True, exist_ok=True)
        (self.workdir / f"{self.origin}.zone").write_text(self.zone)
        self.config_path.write_text(self._config())
        check = subprocess.run(
            [shutil.which("knotc") or "/usr/sbin/knotc", "-c", str(self.config_path), "conf-check"],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise RuntimeError(f"knot.conf is invalid: {check.stdout}{check.stderr}")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([knotd, "-c", str(self.config_path)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"knotd exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if self.query(self.origin, "SOA"):
                    return
            except Exception:  # not answering yet
                pass
            time.sleep(0.1)
        raise TimeoutError(f"knotd did not serve {self.origin} in {timeout}s:\n{self.log_path.read_text()}")

    def query(self, name: str, record_type: str) -> list[str]:
        """Ask this server directly (authoritative answer), return the records as text."""
        request = dns.message.make_query(name, dns.rdatatype.from_text(record_type))
        response = dns.query.udp(request, self.address, port=self.port, timeout=2)
        return sorted(str(record) for rrset in response.answer for record in rrset)

    def knotc(self, *args: str) -> str:
        """Run knotc against this server's control socket; RuntimeError when it fails."""
        knotc = shutil.which("knotc") or "/usr/sbin/knotc"
        done = subprocess.run(
            [knotc, "-c", str(self.config_path), "-s", str(self.socket_path), *args],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if done.returncode != 0:
            raise RuntimeError(f"knotc {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def edit_by_hand(self, owner: str, record_type: str, ttl: int, records: list[str]) -> None:
        """Replace an RRset in a zone transaction, as an administrator does with knotc."""
        self.knotc("zone-begin", self.origin)
        try:
            self.knotc("zone-unset", self.origin, owner, record_type)
            for record in records:
                self.knotc("zone-set", self.origin, owner, str(ttl), record_type, *record.split())
        except BaseException:
            self.knotc("zone-abort", self.origin)
            raise
        self.knotc("zone-commit", self.origin)

    def stop(self) -> None:
        """Stop knotd."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
