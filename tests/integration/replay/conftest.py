"""Fixtures of the replay tests: the primary stand-in (Postfix + Dovecot) with alice and bob."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.primary import PrimaryStandIn
from tests.support.replay import USERS


@pytest.fixture
def primary() -> Iterator[PrimaryStandIn]:
    """A running stand-in for the primary Exchange."""
    stand_in = PrimaryStandIn(["example.com", "example.net"], dict(USERS))
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.close()
