"""The appliance as a benchmark runs it: `continuity serve` in its own data directory on loopback ports.

Two variants: the production default (the filters as shipped, the default log level,
the log on stderr written to a file, as a service manager would) with the filters' DNS
pointed at a loopback resolver, and the same with ``[filters] enabled = false``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from continuity.config.filters import FilterSettings, StageSettings
from tests.support.ports import free_port, wait_for_port


def shipped_filters() -> str:
    """The stages the filters run by default, read from the settings' defaults (so this text cannot go stale)."""
    defaults = FilterSettings()
    if not defaults.enabled:
        return "none (the filters are off by default)"
    names = [
        name
        for name in type(defaults).model_fields
        if isinstance(getattr(defaults, name), StageSettings) and getattr(defaults, name).enabled
    ]
    unset = [name for name in ("clamd", "rspamd") if name in names and not _configured(defaults, name)]
    used = [name for name in names if name not in unset]
    return ", ".join(used) + (f" ({', '.join(unset)}: not used until configured)" if unset else "")


def _configured(defaults: FilterSettings, name: str) -> bool:
    stage = getattr(defaults, name)
    return bool(getattr(stage, "address", "") or getattr(stage, "url", ""))


class ApplianceInstance:
    """`continuity serve` with one mailbox, filters on (with resolver) or off, under work_dir."""

    def __init__(self, work_dir: Path, recipient: str, *, filters: bool, resolver: str) -> None:
        self.work = work_dir
        self.recipient = recipient
        self.filters = filters
        self.resolver = resolver
        self.port = free_port()
        self.web_port = free_port()
        self.log_path = work_dir / "appliance.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        self.work.mkdir(parents=True)
        filters = f'resolver = ["{self.resolver}"]\n' if self.filters else "enabled = false\n"
        config = self.work / "continuity.toml"
        config.write_text(
            f'data_dir = "{self.work / "data"}"\ndomains = ["example.com"]\n'
            f'[smtp]\nlisten = "127.0.0.1:{self.port}"\nhostname = "standby.bench.test"\n'
            'limit_exempt_networks = ["127.0.0.0/8"]\n'
            f'[web]\nlisten = "127.0.0.1:{self.web_port}"\n'
            f"[filters]\n{filters}"
        )
        return config

    def start(self) -> None:
        """Add the mailbox, start the server and wait for its SMTP and web ports."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("CONTINUITY_")}
        command = [sys.executable, "-m", "continuity", "--config", str(self._config())]
        subprocess.run(
            [*command, "mailbox", "add", self.recipient, "--name", "Bench"], check=True, env=env, capture_output=True
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([*command, "serve"], stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_for_port(self.port)
        wait_for_port(self.web_port)

    def stored(self) -> int:
        """Messages in the store."""
        connection = sqlite3.connect(self.work / "data" / "continuity.db")
        try:
            return int(connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        finally:
            connection.close()

    def wait_until_idle(self, timeout: float = 60.0, busy_share: float = 0.05) -> float:
        """Wait until the server and its worker processes use under busy_share of a core; return seconds waited.

        After a round the appliance still indexes and learns from what it accepted; without
        this wait that work would be measured against whichever server runs next.
        """
        assert self.process is not None
        started = time.monotonic()
        before = _tree_cpu_seconds(self.process.pid)
        while time.monotonic() - started < timeout:
            time.sleep(0.5)
            now = _tree_cpu_seconds(self.process.pid)
            if now - before < 0.5 * busy_share:
                break
            before = now
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop the server (it drains and closes its store)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _tree_cpu_seconds(root: int) -> float:
    """User and system CPU seconds of root and its descendants, from /proc (no third-party library needed)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        # After the command's closing parenthesis: state, ppid, ..., utime is field 14 and stime 15 of stat(5).
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree = {root}
    grew = True
    while grew:
        grown = {pid for pid, parent in parents.items() if parent in tree} | tree
        grew = len(grown) > len(tree)
        tree = grown
    return sum(ticks.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")
