"""scripts/dependency_audit.py: advisories fail the audit, an unreachable database does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "dependency_audit.py"


def _judge(tmp_path: Path, dependencies: list[dict[str, object]]) -> subprocess.CompletedProcess[str]:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"dependencies": dependencies, "fixes": []}))
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--report", str(report)], capture_output=True, text=True, check=False
    )


def test_an_advisory_fails_the_audit(tmp_path: Path) -> None:
    vulnerable: dict[str, object] = {
        "name": "jinja2",
        "version": "3.1.4",
        "vulns": [{"id": "GHSA-q2x7-8rv6-6q7h", "fix_versions": ["3.1.5"]}],
    }
    result = _judge(tmp_path, [{"name": "click", "version": "8.1.7", "vulns": []}, vulnerable])
    assert result.returncode == 1
    assert "jinja2 3.1.4: GHSA-q2x7-8rv6-6q7h (fixed in 3.1.5)" in result.stdout


def test_clean_and_unreachable_pass(tmp_path: Path) -> None:
    clean = _judge(tmp_path, [{"name": "click", "version": "8.1.7", "vulns": []}])
    assert clean.returncode == 0 and "no known advisories in 1 audited packages" in clean.stdout
    # A registry that knows no advisories skips every package: nothing was audited, which is not a pass
    # of the audit but not a failure of the tests either.
    skipped = _judge(tmp_path, [{"name": "click", "version": "8.1.7", "skip_reason": "Dependency not found"}])
    assert skipped.returncode == 0 and "none of the 1 installed packages is known" in skipped.stdout


def test_the_dependency_floors_have_no_known_advisories() -> None:
    # Releases without the advisories their predecessors have (litestar 2.20); litestar 2.23 is
    # also the first with litestar.di.NamedDependency, which the web tier uses.
    text = (SCRIPT.parents[1] / "pyproject.toml").read_text()
    for floor in ('"litestar>=2.23"', '"jinja2>=3.1.6"', '"dnspython>=2.6.1"', '"cryptography>=44"'):
        assert floor in text
