"""Fixtures of the Ansible tests: one deployment of the role onto this machine, run twice."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.ansible.deployment import Deployment, PlaybookRun, build_wheel
from tests.support.ports import free_port

MAILBOXES_CSV = """address,name,aliases,alternate_email,enabled
alice@example.com,Alice Example,a.example@example.com,alice@home.example.org,true
bob@example.com,Bob Example,,,
"""


@dataclass(frozen=True)
class Deployed:
    """The deployment after its first and second run."""

    deployment: Deployment
    first: PlaybookRun
    second: PlaybookRun
    wheel: Path
    ca: trustme.CA
    tsig_key: str
    smtp_host: str
    web_port: int


def tsig_key_text() -> str:
    """A BIND key file such as `tsig-keygen` writes."""
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    return f'key "standby-update." {{\n\talgorithm hmac-sha256;\n\tsecret "{secret}";\n}};\n'


def free_loopback_for_port_25() -> str:
    """An address of 127.0.0.0/8 (all of it is loopback on Linux) where port 25 is free."""
    for _ in range(20):
        address = f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(254) + 1}.{secrets.randbelow(254) + 1}"
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, 25))
            except OSError:
                continue
        return address
    raise AssertionError("no loopback address with a free port 25")


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    """The role applied to this machine (paths under a scratch root), then applied again."""
    if os.geteuid() != 0:
        pytest.skip("the deployment test creates a system user and must run as root (as in CI)")
    # Not pytest's tmp_path: its parents are private to root, and the service user must reach its files.
    root = Path(tempfile.mkdtemp(prefix="continuity-ansible-"))
    deployment = Deployment(root)
    try:
        deployment.prepare()
        wheel = build_wheel(root / "dist")
        csv = root / "mailboxes.csv"
        csv.write_text(MAILBOXES_CSV)
        tsig_key = tsig_key_text()
        smtp_host, web_port = free_loopback_for_port_25(), free_port()
        ca = trustme.CA()
        server = ca.issue_cert("mx.example.com", smtp_host)
        deployment.write_inventory(
            continuity_package_file=str(wheel),
            continuity_domains=["example.com", "Example.NET"],
            continuity_smtp_listen=f"{smtp_host}:25",
            continuity_smtp_hostname="mx.example.com",
            continuity_web_listen=f"127.0.0.1:{web_port}",
            continuity_primary_host="exchange.example.com",
            continuity_tls_certificate=b"".join(blob.bytes() for blob in server.cert_chain_pems).decode(),
            continuity_tls_private_key=server.private_key_pem.bytes().decode(),
            continuity_tsig_key=tsig_key,
            continuity_mailboxes_csv=str(csv),
            continuity_settings={
                "smtp": {"max_message_size": 10_485_760, "limit_exempt_networks": ["192.0.2.0/24"]},
                "storage": {"group_commit_max": 128, "blob_dir": None},
            },
        )
        first = deployment.run()
        assert first.returncode == 0, first.output
        second = deployment.run()
        yield Deployed(deployment, first, second, wheel, ca, tsig_key, smtp_host, web_port)
    finally:
        deployment.remove_user()
        shutil.rmtree(root, ignore_errors=True)
