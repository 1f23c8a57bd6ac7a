"""The removal guard's limit and verdict."""

from __future__ import annotations

import pytest

from continuity.directory.core.guard import check_removals, removal_limit


@pytest.mark.parametrize(
    ("configured", "enabled", "limit"),
    [(None, 10, 1), (None, 100, 5), (None, 999, 49), (None, 5000, 50), (3, 5000, 3), (0, 100, 0)],
)
def test_the_limit_is_five_percent_or_fifty_at_least_one_unless_configured(
    configured: int | None, enabled: int, limit: int
) -> None:
    assert removal_limit(configured, enabled) == limit


def test_above_the_limit_nothing_is_allowed_without_the_operator() -> None:
    assert check_removals(5, 5, False).allowed
    refused = check_removals(6, 5, False)
    assert not refused.allowed
    assert "would disable 6 mailboxes, more than the limit of 5" in refused.sentence
    assert "--allow-removals" in refused.sentence
    assert check_removals(6, 5, True).allowed
