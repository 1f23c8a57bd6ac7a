"""Fixtures shared by the whole suite: an in-process appliance with provisioned mailboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

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
