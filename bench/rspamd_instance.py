"""A private rspamd for benchmarks: Debian's shipped rules, a milter proxy on loopback, no network.

The reference for "Postfix with a spam filter": rspamd as Debian ships it (every rule and
module of /etc/rspamd, the normal worker and a proxy worker in milter mode in front of
it, as in the package's own rspamd.conf), run as a separate instance with its own
configuration directory, database and log, on free loopback ports. What is changed, in
the instance's own local.d (the package's files are only read):

* DNS goes to the given loopback resolver, so no query leaves the machine;
* fuzzy_check is off: its servers are on the Internet;
* loopback clients are checked like any others (``check_local``): every benchmark client
  connects from 127.0.0.1, and by default rspamd skips SPF, DMARC and the HELO checks
  for local addresses, which the appliance does not.

Modules that need Redis (Bayes, greylisting, rate limits, reputation) stay off, as they
are in the package until an operator configures Redis. rspamd is installed from Debian
when missing (needs root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.ports import free_port

PACKAGE_CONFIG = Path("/etc/rspamd")


def ensure_rspamd() -> None:
    """Install rspamd from Debian when it is missing."""
    if shutil.which("rspamd"):
        return
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "rspamd"], check=True, env=env)


class RspamdMilter:
    """rspamd's proxy worker in milter mode on 127.0.0.1:milter_port, scanning with a normal worker behind it."""

    def __init__(self, root_dir: Path, resolver: str, scanners: int | None = None) -> None:
        self.root = root_dir
        self.resolver = resolver
        self.scanners = scanners  # normal worker processes; None: the package's default (one)
        self.milter_port = free_port()
        self.scanner_port = free_port()
        self.log_path = root_dir / "rspamd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def describe(self) -> str:
        """What this rspamd runs, for the benchmark's output."""
        scanners = f"{self.scanners} scanner processes" if self.scanners else "one scanner process (as shipped)"
        return f"Debian's rules and modules, fuzzy_check off, loopback DNS, no Redis, {scanners} behind the proxy"

    def _write_config(self) -> Path:
        local = self.root / "local.d"
        local.mkdir(parents=True)
        (self.root / "db").mkdir()
        (local / "options.inc").write_text(f'dns {{ nameserver = ["{self.resolver}"]; }}\ncheck_local = true;\n')
        (local / "fuzzy_check.conf").write_text("enabled = false;\n")
        # The package's rspamd.conf with our ports and without the controller (nothing here uses its web UI);
        # the proxy's settings are those of the package's worker-proxy.inc, with the upstream on our port.
        config = self.root / "rspamd.conf"
        config.write_text(
            '.include "$CONFDIR/common.conf"\n'
            "options {\n"
            f'  pidfile = "{self.root / "rspamd.pid"}";\n'
            '  .include "$CONFDIR/options.inc"\n'
            '  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"\n'
            "}\n"
            f'logging {{ type = "file"; filename = "{self.log_path}"; .include "$CONFDIR/logging.inc" }}\n'
            'worker "normal" {\n'
            f'  bind_socket = "127.0.0.1:{self.scanner_port}";\n'
            '  .include "$CONFDIR/worker-normal.inc"\n'
            + (f"  count = {self.scanners};\n" if self.scanners else "")
            + "}\n"
            'worker "rspamd_proxy" {\n'
            f'  bind_socket = "127.0.0.1:{self.milter_port}";\n'
            "  milter = yes; timeout = 120s; count = 1; max_retries = 5;\n"
            "  discard_on_reject = false; quarantine_on_reject = false;\n"
            '  spam_header = "X-Spam"; reject_message = "Spam message rejected";\n'
            f'  upstream "local" {{ default = yes; hosts = "127.0.0.1:{self.scanner_port}"; }}\n'
            "}\n"
        )
        return config

    def start(self, timeout: float = 180.0) -> None:
        """Write the configuration, start rspamd and wait until both workers accept connections."""
        config = self._write_config()
        rspamd = shutil.which("rspamd") or "/usr/bin/rspamd"
        variables = {
            "CONFDIR": PACKAGE_CONFIG,
            "LOCAL_CONFDIR": self.root,
            "RUNDIR": self.root,
            "DBDIR": self.root / "db",
        }
        command = [rspamd, "-f", "-u", "root", "-g", "root", "-c", str(config)]
        for name, value in variables.items():
            command += ["--var", f"{name}={value}"]
        with (self.root / "rspamd.stderr").open("wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        waiting = [self.scanner_port, self.milter_port]
        while waiting:
            if self.process.poll() is not None:
                raise RuntimeError(f"rspamd exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"rspamd did not listen in {timeout}s; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", waiting[0]), timeout=1).close()
                waiting.pop(0)
            except OSError:
                time.sleep(0.2)
        self._wait_for_hyperscan(deadline)

    def _wait_for_hyperscan(self, deadline: float) -> None:
        """Wait until the scanner matches with hyperscan (until then it falls back to slower PCRE).

        The hs_helper process compiles the rules' expressions after start and the scanner
        loads them when told; a CPU without hyperscan support never logs the engine, and then
        there is nothing to wait for.
        """
        while True:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if "loaded hyperscan engine" not in log:
                return
            if any(
                "(normal)" in line and "hyperscan database" in line and "has been loaded" in line
                for line in log.splitlines()
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"rspamd's scanner did not load its hyperscan database; see {self.log_path}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop rspamd (the main process stops its workers)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
