"""A Samba domain controller per test (copied from one provisioning per session) and a store to sync into."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from continuity.config.directory import ActiveDirectorySettings
from continuity.store.sqlite import SqliteStore, open_sqlite_store
from tests.support.samba import ADMIN_DN, ADMIN_PASSWORD, SambaDc, provision, start_dc


@pytest.fixture(scope="session")
def samba_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test domain, provisioned once per session."""
    return provision(tmp_path_factory.mktemp("samba") / "template")


@pytest.fixture
def samba(samba_template: Path, tmp_path: Path) -> Iterator[SambaDc]:
    """A running DC of its own for this test."""
    dc = start_dc(samba_template, tmp_path / "dc")
    yield dc
    dc.stop()


@pytest.fixture
def ad_settings(samba: SambaDc) -> ActiveDirectorySettings:
    """[directory.ad] pointing at the test DC over LDAPS, bound as the domain administrator."""
    return ActiveDirectorySettings(
        url=samba.url,
        ca_file=samba.ca_file,
        bind_dn=ADMIN_DN,
        bind_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
        base_dn=samba.base_dn,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An empty store."""
    opened = await open_sqlite_store(tmp_path / "data" / "continuity.db", tmp_path / "data" / "blobs")
    yield opened
    await opened.close()
