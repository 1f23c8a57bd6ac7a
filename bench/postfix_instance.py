"""A private Postfix instance for benchmarks: own config and queue, loopback only.

Postfix is the reference: a mature C MTA that fsyncs each queue file before it says
250. It is installed from Debian when missing (needs root, as Postfix itself does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path


def ensure_postfix() -> None:
    """Install Postfix from Debian when it is missing."""
    if shutil.which("postfix"):
        return
    subprocess.run(
        ["debconf-set-selections"], input=b"postfix postfix/main_mailer_type select No configuration\n", check=True
    )
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postfix"], check=True, env=env)


class PostfixInstance:
    """Postfix listening on 127.0.0.1:port with its own configuration and queue under root_dir."""

    def __init__(self, root_dir: Path, port: int, main_cf: dict[str, str]) -> None:
        self.root = root_dir
        self.port = port
        self.config_dir = root_dir / "etc"
        self.settings = main_cf

    def start(self) -> None:
        """Write the configuration and start the master process."""
        self.config_dir.mkdir(parents=True)
        (self.root / "spool").mkdir()
        (self.root / "data").mkdir()
        shutil.chown(self.root / "data", user="postfix")
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.root / "spool"),
            "data_directory": str(self.root / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "reference.bench.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "maillog_file": str(self.root / "maillog"),
            "maillog_file_prefixes": str(self.root),
            "smtpd_peername_lookup": "no",
            # No local delivery here: without this every smtpd looks for /etc/aliases.db and NIS and logs an error.
            "alias_maps": "",
            "alias_database": "",
            "smtpd_client_connection_count_limit": "0",
            **self.settings,
        }
        (self.config_dir / "main.cf").write_text("".join(f"{key} = {value}\n" for key, value in main.items()))
        master = Path("/etc/postfix/master.cf").read_text()
        master = re.sub(
            r"^smtp\s+inet\s+.*$", f"127.0.0.1:{self.port} inet n - n - - smtpd", master, count=1, flags=re.M
        )
        (self.config_dir / "master.cf").write_text(master)
        subprocess.run(["postfix", "-c", str(self.config_dir), "start"], check=True, capture_output=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if subprocess.run(["postfix", "-c", str(self.config_dir), "status"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postfix did not start; see {self.root / 'maillog'}")

    def stop(self) -> None:
        """Stop the master process and its children."""
        subprocess.run(["postfix", "-c", str(self.config_dir), "stop"], capture_output=True)
        time.sleep(0.5)
