"""The playbook and role pass ansible-lint's production profile and Ansible's syntax check."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.ansible.deployment import ANSIBLE_DIR, VENV_BIN, ansible_env


def test_ansible_lint_passes_the_production_profile(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor"],
        cwd=ANSIBLE_DIR,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Profile 'production' was required, and it passed" in output


def test_playbook_passes_the_syntax_check_with_the_example_inventory(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", "inventories/example", "site.yml"],
        cwd=ANSIBLE_DIR,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "playbook: site.yml" in result.stdout


def test_every_role_variable_is_typed_and_has_a_documented_default() -> None:
    import yaml  # type: ignore[import-untyped, unused-ignore]

    role = ANSIBLE_DIR / "roles" / "continuity"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    optional = {name for name, spec in specs.items() if not spec.get("required")}
    assert set(defaults) == optional, "defaults/main.yml and meta/argument_specs.yml name different variables"
    for name in set(specs) - optional:
        assert f"#   {name}: " in (role / "defaults" / "main.yml").read_text(), f"required {name} lacks an example"
    for name, spec in specs.items():
        assert "type" in spec and spec.get("description"), f"{name} lacks a type or description"
        if name in optional:
            assert spec.get("default") == defaults[name], f"{name}: argument_specs default differs"
    documented = (role / "defaults" / "main.yml").read_text().split("\n")
    for name in defaults:
        line = next(index for index, text in enumerate(documented) if text.startswith(f"{name}:"))
        above = [text for text in documented[max(0, line - 3) : line] if text.startswith("#")]
        grouped = documented[line - 1].startswith(("continuity_", "  -"))
        assert above or grouped, f"{name} in defaults/main.yml has no comment above it"
