"""Run the Ansible playbook against this machine with every path under a temporary root.

The role's path variables point into a scratch directory that mirrors /opt, /etc and
/var/lib; only the service user is real (it has to be, to run the appliance as that
user) and it is removed again afterwards.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.appliance import clean_env

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
VENV_BIN = Path(sys.executable).parent
# What a wheel of the appliance is built from (copied, so the shared checkout stays clean).
PACKAGE_SOURCES = ("pyproject.toml", "README.md", "continuity", "webmail")
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)",
    re.MULTILINE,
)
TASK = re.compile(r"^TASK \[(?P<name>[^\]]+)\]", re.MULTILINE)


@dataclass(frozen=True)
class PlaybookRun:
    """What one ansible-playbook run printed and its recap."""

    returncode: int
    output: str

    @property
    def recap(self) -> dict[str, int]:
        """ok, changed, unreachable and failed counts of the single host."""
        matches = list(RECAP.finditer(self.output))
        assert len(matches) == 1, f"expected one PLAY RECAP line:\n{self.output}"
        return {key: int(value) for key, value in matches[0].groupdict().items() if key != "host"}

    def changed_tasks(self) -> list[str]:
        """Names of the tasks that reported a change (without the role prefix)."""
        changed = []
        for block in re.split(r"(?=^TASK \[)", self.output, flags=re.MULTILINE):
            name = TASK.match(block)
            if name and re.search(r"^changed: ", block, re.MULTILINE):
                changed.append(name.group("name").rpartition(" : ")[2])
        return changed


def build_wheel(destination: Path) -> Path:
    """A wheel of the appliance built from a copy of this checkout."""
    source = destination / "src"
    for name in PACKAGE_SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(destination), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.rmtree(source)
    (wheel,) = destination.glob("continuity-*.whl")
    return wheel


def ansible_env(work: Path) -> dict[str, str]:
    """The environment of ansible-playbook and ansible-lint: this repository's config, scratch state."""
    env = clean_env()
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
        ANSIBLE_HOME=str(work / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(work / "ansible-home" / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(work / "ansible-home" / "remote-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    return env


@dataclass
class Deployment:
    """A deployment of the role onto this host, rooted at root (a scratch directory)."""

    root: Path
    user: str = field(default_factory=lambda: "ctytest" + secrets.token_hex(4))

    @property
    def install_dir(self) -> Path:
        return self.root / "opt" / "continuity"

    @property
    def config_dir(self) -> Path:
        return self.root / "etc" / "continuity"

    @property
    def data_dir(self) -> Path:
        return self.root / "var" / "lib" / "continuity"

    @property
    def unit_dir(self) -> Path:
        return self.root / "etc" / "systemd" / "system"

    @property
    def wrapper(self) -> Path:
        return self.root / "usr" / "local" / "sbin" / "continuity"

    @property
    def executable(self) -> Path:
        return self.install_dir / "venv" / "bin" / "continuity"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "continuity.toml"

    @property
    def unit_file(self) -> Path:
        return self.unit_dir / "continuity.service"

    def prepare(self) -> None:
        """The directories a Debian host already has."""
        self.root.chmod(0o755)
        for directory in (self.unit_dir, self.wrapper.parent):
            directory.mkdir(parents=True, exist_ok=True)

    def host_vars(self, **variables: Any) -> dict[str, Any]:
        """Connection and role variables of localhost."""
        return {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            # Root already; su from root needs no password (and no sudo on the machine).
            "ansible_become_method": "su",
            "continuity_install_dir": str(self.install_dir),
            "continuity_config_dir": str(self.config_dir),
            "continuity_data_dir": str(self.data_dir),
            "continuity_systemd_unit_dir": str(self.unit_dir),
            "continuity_cli_wrapper": str(self.wrapper),
            "continuity_manage_service": False,
            "continuity_user": self.user,
            "continuity_group": self.user,
            **variables,
        }

    def write_inventory(self, **variables: Any) -> Path:
        """An inventory with localhost in the continuity group (JSON is YAML)."""
        inventory = self.root / "inventory.yml"
        data = {"continuity": {"hosts": {"localhost": self.host_vars(**variables)}}}
        inventory.write_text(json.dumps(data, indent=2))
        return inventory

    def run(self, *extra: str, overrides: dict[str, Any] | None = None) -> PlaybookRun:
        """ansible-playbook site.yml against the inventory; overrides become extra vars."""
        command = [str(VENV_BIN / "ansible-playbook"), "-i", str(self.root / "inventory.yml"), "site.yml", *extra]
        if overrides:
            command += ["--extra-vars", json.dumps(overrides)]
        result = subprocess.run(
            command,
            cwd=ANSIBLE_DIR,
            env=ansible_env(self.root),
            capture_output=True,
            text=True,
            timeout=600,
        )
        return PlaybookRun(result.returncode, result.stdout + result.stderr)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The installed wrapper: `continuity ARGS` as the service user with the installed config."""
        return subprocess.run(
            [str(self.wrapper), *args], capture_output=True, text=True, timeout=60, env=clean_env(), check=False
        )

    def remove_user(self) -> None:
        """Delete the service user and group created by the role."""
        subprocess.run(["userdel", self.user], capture_output=True, check=False)
        subprocess.run(["groupdel", self.user], capture_output=True, check=False)
