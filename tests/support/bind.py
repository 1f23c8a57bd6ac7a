"""A private BIND9 `named` for tests: given zones, an optional TSIG key, a free loopback port.

It runs in the foreground from a temporary directory with its own configuration; zones
are primary zones that accept RFC 2136 updates signed with the key. Nothing of the
system's BIND configuration is used.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from tests.support.ports import free_port


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key as BIND and dnspython both take it."""

    name: str
    secret: str
    algorithm: str = "hmac-sha256"

    @classmethod
    def generate(cls, name: str = "continuity-test-key") -> TsigKey:
        """A fresh random key."""
        return cls(name, base64.b64encode(secrets.token_bytes(32)).decode())


def zone_text(origin: str, records: list[str], ttl: int = 300) -> str:
    """A zone file for origin with an SOA, one NS (ns1.<origin> at 127.0.0.1) and records."""
    return (
        f"$ORIGIN {origin}.\n$TTL {ttl}\n"
        f"@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n"
        f"@ IN NS ns1.{origin}.\nns1 IN A 127.0.0.1\n" + "".join(f"{record}\n" for record in records)
    )


class BindServer:
    """`named -g` with zones under workdir, listening on 127.0.0.1:port (UDP and TCP)."""

    def __init__(self, workdir: Path, zones: dict[str, str], key: TsigKey | None = None) -> None:
        self.workdir = workdir
        self.zones = zones
        self.key = key
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "named.log"

    def _config(self) -> str:
        key = ""
        update = "none;"
        if self.key is not None:
            key = f'key "{self.key.name}" {{ algorithm {self.key.algorithm}; secret "{self.key.secret}"; }};\n'
            update = f'key "{self.key.name}";'
        zones = "".join(
            f'zone "{origin}" {{ type primary; file "{self.workdir / (origin + ".zone")}"; '
            f"allow-update {{ {update} }}; }};\n"
            for origin in self.zones
        )
        return (
            f'options {{ directory "{self.workdir}"; pid-file "{self.workdir / "named.pid"}";\n'
            f"  listen-on port {self.port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n"
            "  recursion no; dnssec-validation no; allow-query { any; }; notify no;\n"
            f'  session-keyfile "{self.workdir / "session.key"}"; }};\n'
            "controls { };\n" + key + zones
        )

    def start(self, timeout: float = 20.0) -> None:
        """Write the configuration and zones, start named and wait until it answers."""
        named = shutil.which("named") or "/usr/sbin/named"
        self.workdir.mkdir(parents=True, exist_ok=True)
        for origin, text in self.zones.items():
            (self.workdir / f"{origin}.zone").write_text(text)
        config = self.workdir / "named.conf"
        config.write_text(self._config())
        check = subprocess.run(["named-checkconf", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"named.conf is invalid: {check.stdout}{check.stderr}")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([named, "-g", "-c", str(config), "-n", "1"], stdout=log, stderr=log)
        origin = next(iter(self.zones))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"named exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                self.query(origin, "SOA")
                return
            except Exception:  # not answering yet
                time.sleep(0.1)
        raise TimeoutError(f"named did not answer in {timeout}s:\n{self.log_path.read_text()}")

    def query(self, name: str, record_type: str) -> list[str]:
        """Ask this server directly (authoritative answer), return the records as text."""
        request = dns.message.make_query(name, dns.rdatatype.from_text(record_type))
        response = dns.query.udp(request, "127.0.0.1", port=self.port, timeout=2)
        return sorted(str(record) for rrset in response.answer for record in rrset)

    def stop(self) -> None:
        """Stop named."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
