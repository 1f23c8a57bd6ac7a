"""Postfix's `smtp-sink` as a receiving SMTP server for tests: each message dumped to a file.

smtp-sink is a real SMTP server from the Postfix package; it can also answer with chosen
soft or hard bounces, which tests use to provoke 4xx and 5xx replies.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import subprocess
import tempfile
import time
from email.message import Message
from pathlib import Path

from tests.support.ports import free_port, wait_for_port


class SmtpSink:
    """smtp-sink on 127.0.0.1:port writing every message it receives to dump_dir."""

    def __init__(self, workdir: Path, *, extra_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        # smtp-sink drops to user nobody, which cannot enter pytest's private tmp dirs:
        # dump into a directory of its own under /tmp (workdir is kept for symmetry).
        self.workdir = workdir
        self.dump_dir = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the sink (as user nobody, as smtp-sink requires when run by root)."""
        self.dump_dir.chmod(0o755)
        shutil.chown(self.dump_dir, user="nobody")
        binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        self.process = subprocess.Popen(
            [
                binary,
                "-u",
                "nobody",
                "-c",
                "-d",
                f"{self.dump_dir}/%M.",
                *self.extra_args,
                f"127.0.0.1:{self.port}",
                "64",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_for_port(self.port)

    def _sizes(self) -> dict[Path, int]:
        return {path: path.stat().st_size for path in self.dump_dir.iterdir() if path.is_file()}

    def messages(self, expected: int = 1, timeout: float = 10.0) -> list[Message]:
        """The messages received so far, waiting until at least expected have arrived complete.

        smtp-sink writes a dump file while the message arrives, so a file counts as complete
        once its size has stayed the same for a moment.
        """
        deadline = time.monotonic() + timeout
        previous: dict[Path, int] = {}
        while True:
            sizes = self._sizes()
            settled = len(sizes) >= expected and sizes == previous
            if settled or time.monotonic() > deadline:
                return [
                    email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in sorted(sizes)
                ]
            previous = sizes
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the sink."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.dump_dir, ignore_errors=True)
