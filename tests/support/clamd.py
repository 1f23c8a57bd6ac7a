"""A private clamd for tests: its own configuration, a signature database built here (EICAR), a free port.

No freshclam and no network: the database holds an MD5 signature of the EICAR test
file and a body signature of its text, written in ClamAV's .hdb and .ndb formats.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.ports import free_port

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class ClamdServer:
    """`clamd --foreground` on 127.0.0.1:port with the EICAR-only database."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "clamd.log"

    @property
    def address(self) -> str:
        """HOST:PORT for [filters.clamd] address."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Write the database and configuration, start clamd and wait until it answers PING."""
        database = self.workdir / "db"
        database.mkdir(parents=True, exist_ok=True)
        (database / "eicar.hdb").write_text(f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:Eicar-Test-Signature\n")
        (database / "eicar.ndb").write_text(f"Eicar-Test-Signature-Text:0:*:{EICAR.hex()}\n")
        config = self.workdir / "clamd.conf"
        config.write_text(
            f"Foreground yes\nDatabaseDirectory {database}\nTCPSocket {self.port}\nTCPAddr 127.0.0.1\n"
            f"LogFile {self.log_path}\nPidFile {self.workdir / 'clamd.pid'}\nTemporaryDirectory {self.workdir}\n"
            "StreamMaxLength 50M\nMaxThreads 4\n"
        )
        clamd = shutil.which("clamd") or "/usr/sbin/clamd"
        self.process = subprocess.Popen(
            [clamd, "--foreground", "--config-file", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"clamd exited with {self.process.returncode}: {error}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                    connection.sendall(b"zPING\0")
                    if connection.recv(16).startswith(b"PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"clamd did not answer in {timeout}s")

    def stop(self) -> None:
        """Stop clamd."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
