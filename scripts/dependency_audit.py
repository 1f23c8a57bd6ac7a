"""Audit the installed Python dependencies for known advisories with pip-audit; offline-capable.

Run by scripts/test with the virtualenv's Python. The audit must run whenever an advisory
database answers, and must not fail the tests when none can be reached (a machine without
the network, a registry mirror that serves packages but no advisories). So:

* each advisory service asked for is tried in turn: by default only the package index's,
  the one registry the test machines reach; ``--services pypi,osv`` adds OSV where the
  network allows it;
* a service that answers about at least one installed package decides: any advisory fails
  (exit 1, each one printed), none passes;
* a service that cannot be reached (pip-audit fails without a report) or that knows none
  of the installed packages (every one skipped) is passed over; when no service decides,
  the audit says it was skipped and exits 0.

``--report FILE`` judges an existing pip-audit JSON report instead of running pip-audit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SERVICES = ("pypi",)
# Exit codes: 0 no known advisory (or no database reachable), 1 advisories found.
CLEAN, VULNERABLE = 0, 1


def judge(report: dict[str, object]) -> tuple[int | None, list[str]]:
    """From a pip-audit JSON report: (exit code, lines to print), or (None, why) when it audited nothing."""
    dependencies = report.get("dependencies")
    if not isinstance(dependencies, list):
        return None, ["the report lists no dependencies"]
    audited = [item for item in dependencies if isinstance(item, dict) and "skip_reason" not in item]
    if not audited:
        return None, [f"none of the {len(dependencies)} installed packages is known to the advisory service"]
    found = []
    for item in audited:
        for vuln in item.get("vulns") or []:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
            found.append(f"{item['name']} {item['version']}: {vuln.get('id')} (fixed in {fixed})")
    if found:
        return VULNERABLE, ["known advisories in installed packages:", *found]
    return CLEAN, [f"no known advisories in {len(audited)} audited packages"]


def run_service(service: str) -> tuple[int | None, list[str]]:
    """Run pip-audit against one advisory service and judge its report."""
    with tempfile.TemporaryDirectory() as workdir:
        output = Path(workdir) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip_audit",
            "--skip-editable",
            "--progress-spinner",
            "off",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--output",
            str(output),
            "--timeout",
            "30",
        ]
        try:
            finished = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        except subprocess.TimeoutExpired:
            return None, [f"{service}: no answer within 600 s"]
        if not output.exists() or not output.read_text().strip():
            last = (finished.stderr.strip().splitlines() or ["no report"])[-1]
            return None, [f"{service}: not reachable ({last[:200]})"]
        code, lines = judge(json.loads(output.read_text()))
        return code, [f"{service}: {line}" if index == 0 else line for index, line in enumerate(lines)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="judge this pip-audit JSON report instead of running pip-audit")
    parser.add_argument(
        "--services", default=",".join(SERVICES), help="advisory services to try in turn (pypi, osv; default: pypi)"
    )
    args = parser.parse_args()
    if args.report is not None:
        code, lines = judge(json.loads(args.report.read_text()))
        print("\n".join(lines))
        return CLEAN if code is None else code
    skipped = []
    for service in [name.strip() for name in args.services.split(",") if name.strip()]:
        code, lines = run_service(service)
        if code is not None:
            print("\n".join(lines))
            return code
        skipped += lines
    print("dependency audit skipped: no advisory database could be reached")
    for line in skipped:
        print(f"  {line}")
    return CLEAN


if __name__ == "__main__":
    sys.exit(main())
