"""Start the appliance for tests: in-process (fast) or as a `continuity serve` subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w

from continuity.config.settings import Settings
from tests.support.ports import free_port, wait_for_port

TEST_DOMAINS = ["example.com", "example.net"]
READY = " ready: SMTP on "


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def settings_data(data_dir: Path, **overrides: Any) -> dict[str, Any]:
    """Configuration for a test appliance on loopback with ephemeral ports."""
    base: dict[str, Any] = {
        "data_dir": str(data_dir),
        "domains": TEST_DOMAINS,
        "smtp": {"listen": "127.0.0.1:0", "hostname": "mx.example.com"},
        "web": {"listen": "127.0.0.1:0"},
        # No DNS outside loopback in tests: the authentication stage is enabled (with a
        # private BIND) only by the tests that need it.
        "filters": {"auth": {"enabled": False}, "processes": 1},
    }
    return _merge(base, overrides)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for an in-process test appliance."""
    return Settings(**settings_data(data_dir, **overrides))


class ServeProcess:
    """`continuity serve` in a subprocess with a TOML file written for it."""

    def __init__(self, workdir: Path, **overrides: Any) -> None:
        self.workdir = workdir
        self.smtp_port = free_port()
        self.web_port = free_port()
        data = settings_data(
            workdir / "data",
            smtp={"listen": f"127.0.0.1:{self.smtp_port}", **overrides.pop("smtp", {})},
            web={"listen": f"127.0.0.1:{self.web_port}"},
            **overrides,
        )
        self.config_path = workdir / "continuity.toml"
        self.config_path.write_text(tomli_w.dumps(data))
        self.log_path = workdir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a `continuity` command against this configuration."""
        result = subprocess.run(
            [sys.executable, "-m", "continuity", "--config", str(self.config_path), *args],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
        if check and result.returncode != 0:
            raise AssertionError(f"continuity {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def start(self, timeout: float = 20.0, preexec: Callable[[], None] | None = None) -> None:
        """Start serving and wait until it logs that it is ready (preexec runs in the child first)."""
        ready_before = self.log().count(READY)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "continuity", "--config", str(self.config_path), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(),
                preexec_fn=preexec,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.log()}")
            if self.log().count(READY) > ready_before:
                wait_for_port(self.smtp_port)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"serve did not become ready in {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9, as a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        """Everything the server logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def clean_env() -> dict[str, str]:
    """The environment without CONTINUITY_* variables that would override the test's file."""
    return {key: value for key, value in os.environ.items() if not key.startswith("CONTINUITY_")}
