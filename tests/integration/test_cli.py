"""The `continuity` command as an operator runs it: real processes, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.appliance import ServeProcess, clean_env


def run(
    *args: str, input_text: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "continuity", *args],
        input=input_text,
        capture_output=True,
        text=True,
        timeout=60,
        env=env or clean_env(),
    )


@pytest.fixture
def served(tmp_path: Path) -> ServeProcess:
    return ServeProcess(tmp_path)


def test_config_validate_accepts_the_test_file(served: ServeProcess) -> None:
    result = served.cli("config", "validate")
    assert "Configuration is valid" in result.stdout


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[smtp]\nlisten = "nowhere"\n', "Invalid configuration: smtp.listen: 'nowhere' is not HOST:PORT"),
        ('[smtp]\nlisen = "127.0.0.1:25"\n', "Invalid configuration: unknown key 'smtp.lisen'"),
        (
            'domains = ["bad_name.example"]\n',
            "Invalid configuration: domains: 'bad_name.example' is not a valid domain name",
        ),
        (
            "[smtp]\nmax_message_size = -1\n",
            "Invalid configuration: smtp.max_message_size: Input should be greater than or equal to 1024",
        ),
        ('[smtp]\ntls_cert = "/x.pem"\n', "Invalid configuration: smtp: tls_cert and tls_key must be set together"),
        ("this is = not toml [", "is not valid TOML"),
    ],
)
def test_invalid_configuration_is_one_sentence_naming_the_key(tmp_path: Path, toml: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    result = run("--config", str(config), "config", "validate")
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_environment_overrides_the_file(served: ServeProcess) -> None:
    env = clean_env() | {"CONTINUITY_SMTP__LISTEN": "127.0.0.1:2999", "CONTINUITY_CONFIG": str(served.config_path)}
    result = run("config", "show", env=env)
    assert result.returncode == 0, result.stderr
    assert 'listen = "127.0.0.1:2999"' in result.stdout
    bad = run("config", "validate", env=env | {"CONTINUITY_SMTP__MAX_ERRORS": "many"})
    assert bad.returncode == 2
    assert "smtp.max_errors" in bad.stderr and "CONTINUITY_SMTP__MAX_ERRORS" in bad.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "absent.toml"), "config", "validate")
    assert result.returncode == 2
    assert f"Configuration file {tmp_path / 'absent.toml'} does not exist." in result.stderr


def test_serve_refuses_invalid_configuration_before_starting(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('data_dir = "x"\n[web]\nlisten = "127.0.0.1"\n')
    result = run("--config", str(config), "serve")
    assert result.returncode == 2
    assert "web.listen" in result.stderr


def test_mailbox_lifecycle(served: ServeProcess) -> None:
    added = served.cli(
        "mailbox",
        "add",
        "Dana@Example.com",
        "--name",
        "Dana Example",
        "--alias",
        "d@example.com",
        "--alternate-email",
        "dana@private.test",
        "--password-stdin",
        input_text="correct horse battery\n",
    )
    assert added.stdout.strip() == "Mailbox dana@example.com created."
    again = served.cli(
        "mailbox",
        "add",
        "dana@example.com",
        "--name",
        "Dana Example",
        "--alias",
        "d@example.com",
        "--alternate-email",
        "dana@private.test",
    )
    assert again.stdout.strip() == "Mailbox dana@example.com unchanged."
    [listed] = json.loads(served.cli("mailbox", "list", "--json").stdout)
    assert listed == listed | {
        "address": "dana@example.com",
        "name": "Dana Example",
        "aliases": ["d@example.com"],
        "enabled": True,
        "alternate_email": "dana@private.test",
        "has_password": True,
    }
    assert "password_hash" not in listed
    served.cli("mailbox", "disable", "dana@example.com")
    assert json.loads(served.cli("mailbox", "list", "--json").stdout)[0]["enabled"] is False
    served.cli("mailbox", "enable", "dana@example.com")
    changed = served.cli(
        "mailbox", "passwd", "dana@example.com", "--password-stdin", input_text="another long secret\n"
    )
    assert changed.stdout.strip() == "Password of dana@example.com changed."
    table = served.cli("mailbox", "list").stdout
    assert "dana@example.com" in table and "1 mailboxes." in table


def test_mailbox_errors_are_sentences(served: ServeProcess) -> None:
    outside = served.cli("mailbox", "add", "x@elsewhere.test", "--name", "X", check=False)
    assert outside.returncode == 2
    assert "x@elsewhere.test is not in a protected domain" in outside.stderr
    short = served.cli(
        "mailbox", "add", "e@example.com", "--name", "E", "--password-stdin", input_text="short\n", check=False
    )
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    missing = served.cli("mailbox", "disable", "ghost@example.com", check=False)
    assert missing.returncode == 1 and "there is no mailbox ghost@example.com" in missing.stderr
    served.cli("mailbox", "add", "f@example.com", "--name", "F", "--alias", "shared@example.com")
    clash = served.cli("mailbox", "add", "g@example.com", "--name", "G", "--alias", "shared@example.com", check=False)
    assert clash.returncode == 1 and "alias shared@example.com already belongs to f@example.com" in clash.stderr


CSV = """address,name,aliases,alternate_email,enabled
alice@example.com,Alice Example,a@example.com;alice.e@example.com,alice@home.test,true
bob@example.com,Bob Example,,,
not-an-address,Broken,,,
carol@elsewhere.test,Carol Outside,,,
dave@example.net,Dave Example,,,maybe
erin@example.com,,,,
alice@example.com,Alice Again,,,
frank@example.com,Frank Example,a@example.com,,
"""


def test_mailbox_import_keeps_good_rows_and_reports_bad_lines(served: ServeProcess, tmp_path: Path) -> None:
    path = tmp_path / "mailboxes.csv"
    path.write_text(CSV)
    first = served.cli("mailbox", "import", str(path), check=False)
    assert first.returncode == 1
    assert first.stdout.strip() == "2 mailboxes imported (2 created, 0 updated, 0 unchanged); 6 rows rejected."
    errors = first.stderr.strip().splitlines()
    assert [line.split(":")[1] for line in errors] == ["4", "5", "6", "7", "8", "9"]
    assert "is not an address" in errors[0]
    assert "not in a protected domain" in errors[1]
    assert "enabled must be true or false" in errors[2]
    assert "display name must not be empty" in errors[3]
    assert "already appears on line 2" in errors[4]
    assert "alias a@example.com already belongs to alice@example.com" in errors[5]
    second = served.cli("mailbox", "import", str(path), check=False)
    assert second.stdout.strip() == "2 mailboxes imported (0 created, 0 updated, 2 unchanged); 6 rows rejected."
    listed = {m["address"]: m for m in json.loads(served.cli("mailbox", "list", "--json").stdout)}
    assert set(listed) == {"alice@example.com", "bob@example.com"}
    assert listed["alice@example.com"]["aliases"] == ["a@example.com", "alice.e@example.com"]
    path.write_text("address,name\nbob@example.com,Robert Example\n")
    third = served.cli("mailbox", "import", str(path))
    assert third.stdout.strip() == "1 mailboxes imported (0 created, 1 updated, 0 unchanged)."


def test_mailbox_import_rejects_a_bad_header(served: ServeProcess, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("email,fullname\nx@example.com,X\n")
    result = served.cli("mailbox", "import", str(path), check=False)
    assert result.returncode == 2
    assert "lacks the column(s) address, name" in result.stderr


def test_queue_list_and_show(served: ServeProcess) -> None:
    import smtplib

    from tests.support.messages import make_message

    served.cli("mailbox", "add", "alice@example.com", "--name", "Alice")
    served.start()
    try:
        message = make_message(subject="Quarterly numbers")
        with smtplib.SMTP("127.0.0.1", served.smtp_port, timeout=10) as client:
            client.sendmail("s@outside.test", ["alice@example.com"], message)
        [entry] = json.loads(served.cli("queue", "list", "--json").stdout)
        assert set(entry) >= {"id", "message_id", "sender", "recipients", "size", "state", "received_at"}
        assert entry["sender"] == "s@outside.test" and entry["recipients"] == ["alice@example.com"]
        assert entry["size"] == len(message) and entry["state"] == "queued"
        assert entry["subject"] == "Quarterly numbers"
        shown = served.cli("queue", "show", entry["id"]).stdout
        assert f"id:              {entry['id']}" in shown
        raw = subprocess.run(
            [
                sys.executable,
                "-m",
                "continuity",
                "--config",
                str(served.config_path),
                "queue",
                "show",
                entry["id"],
                "--raw",
            ],
            capture_output=True,
            timeout=60,
            env=clean_env(),
            check=True,
        ).stdout
        assert raw.startswith(b"X-Continuity-Verdict: ") and b"\r\nReceived: from " in raw and raw.endswith(message)
        missing = served.cli("queue", "show", "0000000000000000", check=False)
        assert missing.returncode == 1 and "there is no queued message 0000000000000000" in missing.stderr
        bogus = served.cli("queue", "show", "nope", check=False)
        assert bogus.returncode == 1 and "is not a queue id" in bogus.stderr
    finally:
        assert served.terminate() == 0
