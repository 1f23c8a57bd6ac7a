"""The role's TOML template turns any settings dictionary into TOML that reads back the same."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from tests.ansible.deployment import ANSIBLE_DIR, VENV_BIN, ansible_env

TEMPLATE = ANSIBLE_DIR / "roles" / "continuity" / "templates" / "continuity.toml.j2"

SETTINGS: dict[str, Any] = {
    "data_dir": "/var/lib/continuity",
    "domains": ["example.com", "éxample.org"],
    "log_level": "info",
    "unset": None,
    "smtp": {
        "listen": "[::]:25",
        "max_message_size": 52428800,
        "session_timeout": 300.5,
        "tls_cert": None,
        "limit_exempt_networks": [],
    },
    "empty": {},
    "dns": {
        "zones": {"example.com": "ns1.example.com.", "sub.example.org": "ns2.example.org."},
        "primary_mx": ["10 mail.example.com."],
    },
    "filters": {
        "enabled": True,
        "quarantine": False,
        "rules": [{"name": 'say "hi"', "score": 1.5, "tags": ["a", "b"]}, {"name": "back\\slash\nnewline\ttab"}],
        "nested": {"deeper": {"value": "x = y # not a comment"}},
    },
}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {key: _without_nulls(item) for key, item in value.items() if item is not None}
        return {key: item for key, item in kept.items() if item != {} or not isinstance(value[key], dict)}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def render(settings: dict[str, Any], tmp_path: Path) -> str:
    """The template rendered by Ansible itself (template lookup, as the template module does)."""
    variables = tmp_path / "vars.json"
    variables.write_text(
        json.dumps(
            {
                "continuity_effective_settings": settings,
                "continuity_executable": "/opt/continuity/venv/bin/continuity",
                "continuity_config_file": "/etc/continuity/continuity.toml",
            }
        )
    )
    destination = tmp_path / "continuity.toml"
    result = subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "localhost",
            "--connection=local",
            "--module-name=ansible.builtin.template",
            f"--args=src={TEMPLATE} dest={destination} mode=0644",
            f"--extra-vars=@{variables}",
            f"--extra-vars=ansible_python_interpreter={VENV_BIN / 'python'}",
        ],
        cwd=ANSIBLE_DIR,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return destination.read_text()


def test_settings_round_trip_through_the_toml_template(tmp_path: Path) -> None:
    text = render(SETTINGS, tmp_path)
    assert tomllib.loads(text) == _without_nulls(SETTINGS)
    assert "[empty]" not in text and "unset" not in text and "tls_cert" not in text
    assert text.startswith("# Ansible managed\n")
