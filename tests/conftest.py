"""Fixtures shared by the whole suite: an in-process appliance with provisioned mailboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from continuity.core.mailbox_rows import build_mailbox
from continuity.services.app import Running, start, stop
from tests.support.appliance import TEST_DOMAINS, make_settings


async def provision_standard_mailboxes(running: Running) -> None:
    """alice (with an alias), bob, and carol (disabled)."""
    mailboxes = [
        build_mailbox("alice@example.com", "Alice Example", domains=TEST_DOMAINS, aliases=["a.example@example.com"]),
        build_mailbox("bob@example.com", "Bob Example", domains=TEST_DOMAINS),
        build_mailbox("carol@example.net", "Carol Example", domains=TEST_DOMAINS, enabled=False),
    ]
    for mailbox in mailboxes:
        await running.store.mailboxes.upsert(mailbox)
    await running.directory.refresh()


@pytest.fixture
async def appliance(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    """A running appliance on loopback; parametrize indirectly with a dict of setting overrides."""
    overrides = getattr(request, "param", {}) or {}
    running = await start(make_settings(tmp_path / "data", **overrides))
    await provision_standard_mailboxes(running)
    try:
        yield running
    finally:
        await stop(running, grace=5)


@pytest.fixture
async def tls_appliance(tmp_path: Path) -> AsyncIterator[tuple[Running, trustme.CA]]:
    """A running appliance offering STARTTLS with a certificate for mx.example.com and 127.0.0.1, and its CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("mx.example.com", "127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    running = await start(make_settings(tmp_path / "data", smtp={"tls_cert": str(cert_path), "tls_key": str(key_path)}))
    await provision_standard_mailboxes(running)
    try:
        yield running, ca
    finally:
        await stop(running, grace=5)
