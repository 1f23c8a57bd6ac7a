"""A private BIND9 `named` for tests: given zones, an optional TSIG key, a free loopback port.

It runs in the foreground from a temporary directory with its own configuration; zones
are primary zones that accept RFC 2136 updates signed with the key. Nothing of the
system's BIND configuration is used.

:func:`start_pair` runs a primary and a secondary for the same zone, each on its own
loopback address and the same port, both listed as NS: the primary NOTIFYs the secondary
of every change and the secondary transfers the zone (IXFR/AXFR), as real deployments do.
The second address is ::1 by default: named only listens on addresses configured on an
interface, and the loopback interface has 127.0.0.1 and ::1 (a dual-stack pair).
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone

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


def zone_text(origin: str, records: list[str], ttl: int = 300, *, name_servers: Mapping[str, str] | None = None) -> str:
    """A zone file for origin with an SOA, its NS records and records.

    name_servers maps each name server's label in the zone to its address, IPv4 or IPv6
    (default: ns1 at 127.0.0.1); the first one is the SOA's primary name server.
    """
    servers = dict(name_servers or {"ns1": "127.0.0.1"})
    first = next(iter(servers))
    return (
        f"$ORIGIN {origin}.\n$TTL {ttl}\n"
        f"@ IN SOA {first}.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n"
        + "".join(
            f"@ IN NS {label}.{origin}.\n{label} IN {'AAAA' if ':' in address else 'A'} {address}\n"
            for label, address in servers.items()
        )
        + "".join(f"{record}\n" for record in records)
    )


def free_port_on(addresses: Sequence[str]) -> int:
    """A port free right now for TCP and UDP on every one of the loopback addresses."""
    for _ in range(100):
        port = free_port()
        sockets: list[socket.socket] = []
        try:
            for address in addresses:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    sock = socket.socket(family, kind)
                    sockets.append(sock)
                    sock.bind((address, port))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no port is free on all of {', '.join(addresses)}")


class BindServer:
    """`named -g` with zones under workdir, listening on address:port (UDP and TCP; 127.0.0.1 by default).

    By default every zone is a primary zone. With ``primary`` (an address on the same port),
    the zones are secondary zones transferred from it; their texts are the secondary's
    starting copy (as if transferred earlier), or "" to transfer at start. ``notify``
    lists the secondaries' addresses (on the same port) to NOTIFY of every change, and
    ``allow_transfer`` who may transfer the zones (None: BIND's default), and ``allow_query``
    who may query them (BIND's address match list, e.g. ``['key "name"']`` for signed queries only;
    None: anyone). ``update_policy`` (the statements inside ``update-policy { ... };``) replaces the
    default ``allow-update`` of the key.
    """

    def __init__(
        self,
        workdir: Path,
        zones: dict[str, str],
        key: TsigKey | None = None,
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
        primary: str | None = None,
        notify: Sequence[str] = (),
        allow_transfer: Sequence[str] | None = None,
        allow_query: Sequence[str] | None = None,
        update_policy: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.zones = zones
        self.key = key
        self.address = address
        self.port = port if port is not None else free_port()
        self.primary = primary
        self.notify = tuple(notify)
        self.allow_transfer = None if allow_transfer is None else tuple(allow_transfer)
        self.allow_query = ("any",) if allow_query is None else tuple(allow_query)
        self.update_policy = update_policy
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "named.log"

    def _zone_config(self, origin: str, update: str) -> str:
        file = self.workdir / (origin + ".zone")
        if self.primary is not None:
            # Text files (not BIND's default raw format for secondaries), so a starting copy can be given.
            # A NOTIFY sent to ::1 comes from ::1, whatever address the primary listens on.
            return (
                f'zone "{origin}" {{ type secondary; file "{file}"; masterfile-format text; '
                f"primaries {{ {self.primary} port {self.port}; }}; notify no; "
                f"allow-notify {{ {self.primary}; 127.0.0.1; ::1; }}; }};\n"
            )
        options = f"allow-update {{ {update} }};"
        if self.update_policy is not None:
            options = f"update-policy {{ {self.update_policy} }};"
        if self.notify:
            targets = " ".join(f"{address} port {self.port};" for address in self.notify)
            options += f" notify explicit; also-notify {{ {targets} }};"
        if self.allow_transfer is not None:
            allowed = " ".join(f"{address};" for address in self.allow_transfer) or "none;"
            options += f" allow-transfer {{ {allowed} }};"
        return f'zone "{origin}" {{ type primary; file "{file}"; {options} }};\n'

    def _config(self) -> str:
        key = ""
        update = "none;"
        if self.key is not None:
            key = f'key "{self.key.name}" {{ algorithm {self.key.algorithm}; secret "{self.key.secret}"; }};\n'
            update = f'key "{self.key.name}";'
        zones = "".join(self._zone_config(origin, update) for origin in self.zones)
        if ":" in self.address:
            listen = f"listen-on {{ none; }}; listen-on-v6 port {self.port} {{ {self.address}; }};"
        else:
            listen = f"listen-on port {self.port} {{ {self.address}; }}; listen-on-v6 {{ none; }};"
        # NOTIFY at once after a change (BIND waits 5 s by default); a secondary whose transfer
        # failed retries within seconds, not after BIND's minimum of 500 s.
        timers = "  notify-delay 0;\n" if self.notify else ""
        if self.primary is not None:
            timers += "  min-retry-time 1; max-retry-time 2;\n"
        return (
            f'options {{ directory "{self.workdir}"; pid-file "{self.workdir / "named.pid"}";\n'
            f"  {listen}\n"
            "  recursion no; dnssec-validation no; notify no;\n"
            f"  allow-query {{ {' '.join(f'{item};' for item in self.allow_query)} }};\n"
            + timers
            + f'  session-keyfile "{self.workdir / "session.key"}"; }};\n'
            "controls { };\n" + key + zones
        )

    def _write_config(self) -> Path:
        config = self.workdir / "named.conf"
        config.write_text(self._config())
        check = subprocess.run(["named-checkconf", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"named.conf is invalid: {check.stdout}{check.stderr}")
        return config

    def start(self, timeout: float = 20.0) -> None:
        """Write the configuration and zones, start named and wait until it answers.

        A secondary is waited for until it serves its first zone (loaded or transferred).
        """
        named = shutil.which("named") or "/usr/sbin/named"
        self.workdir.mkdir(parents=True, exist_ok=True)
        for origin, text in self.zones.items():
            if text or self.primary is None:
                (self.workdir / f"{origin}.zone").write_text(text)
        config = self._write_config()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([named, "-g", "-c", str(config), "-n", "1"], stdout=log, stderr=log)
        origin = next(iter(self.zones))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"named exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if self.query(origin, "SOA") or self.primary is None:
                    return
            except Exception:  # not answering yet
                pass
            time.sleep(0.1)
        raise TimeoutError(f"named did not answer in {timeout}s:\n{self.log_path.read_text()}")

    def query(self, name: str, record_type: str) -> list[str]:
        """Ask this server directly (authoritative answer), return the records as text."""
        request = dns.message.make_query(name, dns.rdatatype.from_text(record_type))
        response = dns.query.udp(request, self.address, port=self.port, timeout=2)
        return sorted(str(record) for rrset in response.answer for record in rrset)

    def serial(self, origin: str) -> int:
        """The SOA serial this server serves for origin."""
        (soa,) = self.query(origin, "SOA")
        return int(soa.split()[2])

    def may_transfer(self, origin: str, source: str) -> bool:
        """True when this server lets a client at source transfer origin (an AXFR attempt from that address)."""
        try:
            dns.query.inbound_xfr(self.address, dns.zone.Zone(origin), port=self.port, timeout=2, source=source)
        except dns.xfr.TransferError as exc:
            if exc.rcode == dns.rcode.REFUSED:
                return False
            raise
        return True

    def reconfigure(self, *, allow_transfer: Sequence[str] | None, timeout: float = 10.0) -> None:
        """Change who may transfer the zones and reload named (SIGHUP), as an operator's reload does."""
        assert self.process is not None
        self.allow_transfer = None if allow_transfer is None else tuple(allow_transfer)
        self._write_config()
        done = self.log_path.read_text().count("reloading configuration succeeded")
        os.kill(self.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log_path.read_text().count("reloading configuration succeeded") == done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"named did not reload in {timeout}s:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop named."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_pair(
    workdir: Path,
    origin: str,
    records: list[str],
    key: TsigKey | None = None,
    *,
    ttl: int = 300,
    addresses: tuple[str, str] = ("127.0.0.1", "::1"),
) -> tuple[BindServer, BindServer]:
    """A primary (accepting updates signed with key) and a secondary for origin, started and in step.

    Both listen on the same port, the primary at addresses[0] (ns1) and the secondary at
    addresses[1] (ns2); both are the zone's NS. The primary NOTIFYs the secondary of every
    change; only loopback clients may transfer the zone (the secondary's transfers leave
    from the loopback address of the primary's family). Stop both when done.
    """
    port = free_port_on(addresses)
    text = zone_text(origin, records, ttl, name_servers={"ns1": addresses[0], "ns2": addresses[1]})
    primary = BindServer(
        workdir / "primary",
        {origin: text},
        key,
        address=addresses[0],
        port=port,
        notify=[addresses[1]],
        allow_transfer=list(addresses),
    )
    secondary = BindServer(workdir / "secondary", {origin: ""}, address=addresses[1], port=port, primary=addresses[0])
    primary.start()
    try:
        secondary.start()
    except BaseException:
        primary.stop()
        raise
    return primary, secondary
