"""A private rspamd for tests: its own minimal configuration, one test rule, a free loopback port.

No system configuration and no module that needs the network: one Lua symbol
(CONTINUITY_TEST_PILLS, score 20) fires on a subject, and the actions are reject at 15,
add header at 6.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.ports import free_port

RULES = """
rspamd_config:register_symbol({
  name = 'CONTINUITY_TEST_PILLS',
  score = 20.0,
  callback = function(task)
    local subject = task:get_subject()
    return subject ~= nil and subject:find('CHEAP PILLS') ~= nil
  end
})
rspamd_config:register_symbol({
  name = 'CONTINUITY_TEST_PROMO',
  score = 7.0,
  callback = function(task)
    local subject = task:get_subject()
    return subject ~= nil and subject:find('LIMITED OFFER') ~= nil
  end
})
"""


class RspamdServer:
    """`rspamd -f` with a normal worker on 127.0.0.1:port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL for [filters.rspamd] url."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Write the configuration, start rspamd and wait until /ping answers."""
        (self.workdir / "db").mkdir(parents=True, exist_ok=True)
        (self.workdir / "rules.lua").write_text(RULES)
        config = self.workdir / "rspamd.conf"
        config.write_text(
            f'options {{ pidfile = "{self.workdir / "rspamd.pid"}"; dbdir = "{self.workdir / "db"}"; filters = "";\n'
            '  dns { nameserver = ["127.0.0.1:9"]; timeout = 1s; retransmits = 1; } }\n'
            f'logging {{ type = "file"; filename = "{self.workdir / "rspamd.log"}"; level = "error"; }}\n'
            f'worker "normal" {{ bind_socket = "127.0.0.1:{self.port}"; count = 1; }}\n'
            "actions { reject = 15; add_header = 6; greylist = 4; }\n"
            f'lua = "{self.workdir / "rules.lua"}";\n'
        )
        rspamd = shutil.which("rspamd") or "/usr/bin/rspamd"
        self.process = subprocess.Popen(
            [rspamd, "-f", "-u", "root", "-g", "root", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rspamd exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"rspamd did not answer in {timeout}s")

    def stop(self) -> None:
        """Stop rspamd (the main process stops its workers)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
