"""Why `continuity serve` refuses to start (docs/troubleshooting.md): one sentence, an exit code, no traceback.

Each case runs the real command in a subprocess: a data directory another server holds,
the SMTP or the HTTP port taken by another process, a TLS file that is not there.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from tests.support.appliance import ServeProcess, clean_env, settings_data
from tests.support.ports import free_port


def _serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "continuity", "--config", str(config), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )


def _config(tmp_path: Path, **overrides: object) -> Path:
    path = tmp_path / "continuity.toml"
    path.write_text(tomli_w.dumps(settings_data(tmp_path / "data", **overrides)))
    return path


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another process listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    first = ServeProcess(tmp_path)
    first.start()
    try:
        assert first.process is not None
        result = _serve(first.config_path)
        assert result.returncode == 2
        line = _last_line(result)
        assert line == (
            f"continuity: Another continuity server (pid {first.process.pid}) is already using data_dir "
            f"{tmp_path / 'data'}."
        )
    finally:
        assert first.terminate() == 0


def test_the_web_port_in_use_is_one_sentence(tmp_path: Path, taken_port: int) -> None:
    config = _config(tmp_path, smtp={"listen": f"127.0.0.1:{free_port()}"}, web={"listen": f"127.0.0.1:{taken_port}"})
    result = _serve(config)
    assert result.returncode == 1
    assert _last_line(result) == (
        f"continuity: cannot start: cannot listen for HTTP on 127.0.0.1:{taken_port}: [Errno 98] Address already in use"
    )
    # Nothing is left behind: a server on the same data directory starts and stops cleanly.
    server = ServeProcess(tmp_path)
    server.start()
    assert server.terminate() == 0


def test_the_smtp_port_in_use_is_one_sentence(tmp_path: Path, taken_port: int) -> None:
    config = _config(tmp_path, smtp={"listen": f"127.0.0.1:{taken_port}"})
    result = _serve(config)
    assert result.returncode == 1
    line = _last_line(result)
    assert line.startswith("continuity: cannot start: ") and "address already in use" in line.lower(), line
    assert str(taken_port) in line


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    certificate = tmp_path / "cert.pem"
    certificate.write_text("not a certificate\n")
    missing = tmp_path / "absent-key.pem"
    config = _config(tmp_path, smtp={"tls_cert": str(certificate), "tls_key": str(missing)})
    result = _serve(config)
    assert result.returncode == 2
    assert _last_line(result) == f"continuity: Invalid configuration: smtp.tls_cert/tls_key: {missing} does not exist."
    missing.write_text("not a key either\n")
    unusable = _serve(config)
    assert unusable.returncode == 2
    assert _last_line(unusable).startswith(
        f"continuity: Invalid configuration: smtp.tls_cert/tls_key: cannot load {certificate} with {missing}: "
    )
