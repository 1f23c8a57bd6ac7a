"""The layout rules docs/architecture.md states, checked on the source: core is pure, the store stands alone.

``continuity/core`` imports only the standard library's pure modules, other core modules
and ``continuity.errors``: no sockets, no event loop, no database, no framework.
``continuity/store`` builds on core and config only, never on services, adapters or the
web tier.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
# Standard modules that do I/O or run things: core must not touch them.
IMPURE_STDLIB = frozenset(
    {"asyncio", "socket", "ssl", "sqlite3", "subprocess", "threading", "concurrent", "os", "shutil", "urllib", "http"}
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _package_imports(package: str) -> dict[str, set[str]]:
    return {str(path.relative_to(ROOT)): _imports(path) for path in sorted((ROOT / package).glob("*.py"))}


def test_core_is_pure() -> None:
    offences = []
    for module, names in _package_imports("continuity/core").items():
        for name in names:
            top = name.split(".")[0]
            if name.startswith("continuity."):
                allowed = name.startswith("continuity.core") or name == "continuity.errors"
            else:
                allowed = top in sys.stdlib_module_names and top not in IMPURE_STDLIB
            if not allowed:
                offences.append(f"{module} imports {name}")
    assert offences == []


def test_the_store_depends_on_core_and_config_only() -> None:
    forbidden = ("continuity.services", "continuity.adapters", "continuity.cli", "continuity.filters", "webmail")
    offences = [
        f"{module} imports {name}"
        for module, names in _package_imports("continuity/store").items()
        for name in names
        if name.startswith(forbidden)
    ]
    assert offences == []


def test_the_rules_see_the_code() -> None:
    # A control: the scan reads real modules (an empty scan would pass any rule).
    core = _package_imports("continuity/core")
    assert len(core) > 20 and any("continuity.errors" in names for names in core.values())
    assert any("sqlite3" in names for names in _package_imports("continuity/store").values())
