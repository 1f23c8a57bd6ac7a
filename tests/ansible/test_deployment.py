"""A real run of site.yml against this machine: install, configure, verify the unit, serve, re-run."""

from __future__ import annotations

import grp
import json
import pwd
import shutil
import smtplib
import ssl
import stat
import subprocess
import time
import tomllib
import zipfile
from pathlib import Path

from tests.ansible.conftest import MAILBOXES_CSV, Deployed
from tests.ansible.deployment import Deployment
from tests.support.appliance import READY, clean_env
from tests.support.messages import make_message

RESTART = "RUNNING HANDLER [continuity : Restart continuity]"
RELOAD = "RUNNING HANDLER [continuity : Reload systemd]"


def _mode(path: Path) -> tuple[str, str, int]:
    info = path.stat()
    return pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name, stat.S_IMODE(info.st_mode)


def test_first_run_changes_the_host_and_the_second_run_changes_nothing(deployed: Deployed) -> None:
    assert deployed.first.recap["failed"] == 0
    assert deployed.first.recap["changed"] >= 10, deployed.first.output
    assert deployed.second.returncode == 0, deployed.second.output
    assert deployed.second.recap["changed"] == 0, f"changed on the second run: {deployed.second.changed_tasks()}"
    assert "Import the mailboxes as the service user" in deployed.first.changed_tasks()
    assert "Import the mailboxes as the service user" not in deployed.second.changed_tasks()
    # The restart handler is notified by the changes of the first run only (systemd itself is off here).
    assert RESTART in deployed.first.output and RELOAD in deployed.first.output
    assert RESTART not in deployed.second.output and RELOAD not in deployed.second.output
    checked = deployed.deployment.run("--check", "--diff")
    assert checked.returncode == 0, checked.output
    assert checked.recap["changed"] == 0, f"changed in check mode: {checked.changed_tasks()}"


def test_files_belong_to_root_and_are_readable_only_by_the_service_group(deployed: Deployed) -> None:
    deployment = deployed.deployment
    user = deployment.user
    assert _mode(deployment.data_dir) == (user, user, 0o750)
    assert _mode(deployment.config_dir) == ("root", user, 0o750)
    assert _mode(deployment.config_file) == ("root", user, 0o640)
    assert _mode(deployment.config_dir / "tls") == ("root", user, 0o750)
    assert _mode(deployment.config_dir / "tls" / "key.pem") == ("root", user, 0o640)
    assert _mode(deployment.config_dir / "tls" / "cert.pem") == ("root", user, 0o644)
    assert _mode(deployment.config_dir / "tsig.key") == ("root", user, 0o640)
    assert (deployment.config_dir / "tsig.key").read_text() == deployed.tsig_key
    assert _mode(deployment.unit_file) == ("root", "root", 0o644)
    assert _mode(deployment.executable.resolve().parent)[0] == "root"
    assert _mode(deployment.install_dir / "venv" / "lib")[:2] == ("root", "root")
    account = subprocess.run(["getent", "passwd", user], capture_output=True, text=True, check=True).stdout
    assert account.strip().endswith(f":{deployment.data_dir}:/usr/sbin/nologin")
    assert int(account.split(":")[2]) < 1000, "the service user is not a system user"


def test_configuration_is_rendered_from_the_role_variables(deployed: Deployed) -> None:
    deployment = deployed.deployment
    config = tomllib.loads(deployment.config_file.read_text())
    assert config["data_dir"] == str(deployment.data_dir)
    assert config["domains"] == ["example.com", "Example.NET"]
    assert config["smtp"] == {
        "listen": f"{deployed.smtp_host}:25",
        "hostname": "mx.example.com",
        "tls_cert": str(deployment.config_dir / "tls" / "cert.pem"),
        "tls_key": str(deployment.config_dir / "tls" / "key.pem"),
        "max_message_size": 10_485_760,
        "limit_exempt_networks": ["192.0.2.0/24"],
    }
    assert config["primary"] == {"host": "exchange.example.com", "smtp_port": 25, "imap_port": 993}
    assert config["storage"] == {"group_commit_max": 128}, "a null setting must be left out"
    assert config["dns"] == {"tsig_key_file": str(deployment.config_dir / "tsig.key")}
    shown = deployment.cli("config", "show")
    assert shown.returncode == 0, shown.stderr
    effective = tomllib.loads(shown.stdout)
    assert effective["domains"] == ["example.com", "example.net"]
    assert effective["smtp"]["max_recipients"] == 1000


def test_systemd_unit_verifies_and_is_hardened(deployed: Deployed) -> None:
    deployment = deployed.deployment
    unit = deployment.unit_file
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    directives = {
        line.partition("=")[0]: line.partition("=")[2]
        for line in unit.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert directives["User"] == directives["Group"] == deployment.user
    assert directives["ExecStart"] == f"{deployment.executable} --config {deployment.config_file} serve"
    assert directives["NoNewPrivileges"] == "yes"
    assert directives["ProtectSystem"] == "strict"
    assert directives["PrivateTmp"] == "yes"
    assert directives["ReadWritePaths"] == str(deployment.data_dir)
    assert directives["AmbientCapabilities"] == directives["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    # systemd's own assessment: exposure 2.0 or less ("OK") on its 0-10 scale (the threshold is in tenths).
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert security.returncode == 0, security.stdout + security.stderr


def _serve_as_service_user(deployment: Deployment, log: Path, *, capability: bool) -> subprocess.Popen[bytes]:
    """`continuity serve` as the unit runs it: the service user, no new privileges, only CAP_NET_BIND_SERVICE."""
    caps = ["--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service"] if capability else []
    command = [
        "setpriv",
        f"--reuid={deployment.user}",
        f"--regid={deployment.user}",
        "--init-groups",
        *caps,
        "--bounding-set=-all,+net_bind_service",
        "--no-new-privs",
        "--",
        str(deployment.executable),
        "--config",
        str(deployment.config_file),
        "serve",
    ]
    with log.open("wb") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=clean_env())


def test_installed_appliance_serves_port_25_as_the_service_user(deployed: Deployed) -> None:
    deployment = deployed.deployment
    without = _serve_as_service_user(deployment, deployment.root / "serve-nocap.log", capability=False)
    assert without.wait(timeout=60) == 1
    assert "[Errno 13]" in (deployment.root / "serve-nocap.log").read_text()

    log = deployment.root / "serve.log"
    server = _serve_as_service_user(deployment, log, capability=True)
    try:
        deadline = time.monotonic() + 30
        while READY not in log.read_text():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        context = ssl.create_default_context()
        deployed.ca.configure_trust(context)
        with smtplib.SMTP(deployed.smtp_host, 25, timeout=30) as client:
            client.starttls(context=context)
            refused = client.sendmail("sender@outside.example", ["a.example@example.com"], make_message())
        assert refused == {}
    finally:
        server.terminate()
        code = server.wait(timeout=90)
    assert code == 0, log.read_text()
    listed = deployment.cli("queue", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["recipients"] == ["a.example@example.com"]
    assert entry["state"] == "queued"
    assert all(path.owner() == deployment.user for path in deployment.data_dir.rglob("*"))


def test_invalid_configuration_is_refused_and_the_installed_file_is_kept(deployed: Deployed) -> None:
    deployment = deployed.deployment
    before = deployment.config_file.read_bytes()
    run = deployment.run(overrides={"continuity_settings": {"smtp": {"max_message_size": 10}}})
    assert run.returncode != 0
    assert "failed to validate" in run.output
    assert "smtp.max_message_size" in run.output
    assert deployment.config_file.read_bytes() == before


def _rebuilt_wheel(wheel: Path, directory: Path) -> Path:
    """The same wheel (same name and version) with one more file, as a rebuild with a change."""
    directory.mkdir()
    rebuilt = directory / wheel.name
    shutil.copy2(wheel, rebuilt)
    with zipfile.ZipFile(rebuilt, "a") as archive:
        archive.writestr("continuity/rebuilt_marker.txt", "rebuilt\n")
    return rebuilt


def test_changed_package_variables_and_mailboxes_are_applied_and_a_failed_import_is_retried(
    deployed: Deployed,
) -> None:
    deployment = deployed.deployment
    csv = deployment.root / "mailboxes-2.csv"
    csv.write_text(MAILBOXES_CSV + "carol@example.net,Carol Example,,,\n")
    rebuilt = _rebuilt_wheel(deployed.wheel, deployment.root / "dist-rebuilt")
    overrides = {"continuity_log_level": "debug", "continuity_mailboxes_csv": str(csv)}
    changed = deployment.run(overrides={**overrides, "continuity_package_file": str(rebuilt)})
    assert changed.returncode == 0, changed.output
    tasks = changed.changed_tasks()
    assert tasks == [
        "Copy the appliance package",
        "Reinstall the appliance from a changed package of the same version",
        "Write the configuration (validated before it is put in place)",
        "Copy the mailbox CSV file",
        "Import the mailboxes as the service user",
    ]
    assert RESTART in changed.output and RELOAD not in changed.output
    assert tomllib.loads(deployment.config_file.read_text())["log_level"] == "debug"
    listed = json.loads(deployment.cli("mailbox", "list", "--json").stdout)
    assert [mailbox["address"] for mailbox in listed] == ["alice@example.com", "bob@example.com", "carol@example.net"]
    (marker,) = (deployment.install_dir / "venv").glob("lib/python3*/site-packages/continuity/rebuilt_marker.txt")
    assert marker.read_text() == "rebuilt\n"

    broken = deployment.root / "mailboxes-broken.csv"
    broken.write_text("email,fullname\ndave@example.com,Dave\n")
    failed = deployment.run(
        overrides={**overrides, "continuity_package_file": str(rebuilt), "continuity_mailboxes_csv": str(broken)}
    )
    assert failed.returncode != 0
    assert "lacks the column(s) address, name" in failed.output
    assert not (deployment.config_dir / "mailboxes.csv").exists(), "a failed import must be retried on the next run"
