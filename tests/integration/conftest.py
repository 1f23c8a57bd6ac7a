"""Fixtures shared by the webmail integration tests: a running appliance and a signed-out client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuity.services.app import Running
from tests.support.webmail import WebmailClient, webmail_appliance


@pytest.fixture
async def wm(tmp_path: Path) -> AsyncIterator[Running]:
    """An appliance with the webmail, sign-in limits 3 per account and 6 per address (a module may define its own)."""
    async with webmail_appliance(
        tmp_path / "data", webmail={"max_failures_per_account": 3, "max_failures_per_ip": 6}
    ) as running:
        yield running


@pytest.fixture
async def client(wm: Running) -> AsyncIterator[WebmailClient]:
    """A signed-out webmail client of wm (a module may define its own)."""
    web = WebmailClient(wm)
    yield web
    await web.close()
