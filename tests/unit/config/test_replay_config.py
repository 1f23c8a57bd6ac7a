"""The [replay] section: defaults and the sentences invalid values produce."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from continuity.config.replay import ReplayMethod, ReplaySettings

DAY = 86400.0


def test_defaults_are_safe_for_exchange() -> None:
    settings = ReplaySettings()
    assert settings.method is ReplayMethod.IMAP and not settings.imap_configured
    assert settings.give_up_after == 5 * DAY and settings.warn_before < settings.give_up_after
    assert settings.rate == 50 and settings.concurrency == 4
    assert (settings.folders.sent, settings.folders.trash, settings.folders.junk) == (
        "Sent Items",
        "Deleted Items",
        "Junk Email",
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"master_user": "replay"}, "master_user and master_password must be set together"),
        ({"warn_before": 6 * DAY}, "warn_before must be shorter than give_up_after"),
        ({"retry_initial": 100, "retry_max": 10}, "retry_max must not be shorter"),
        ({"login_format": "{mailbox}*{admin}"}, "unknown placeholder"),
        ({"primary_networks": ["10.0.0.0/33"]}, "does not appear to be an IPv4 or IPv6 network"),
        ({"folders": {"sent": "Sent\nItems"}}, "control characters"),
    ],
)
def test_invalid_values_are_explained(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ReplaySettings.model_validate(values)


def test_networks_are_normalised() -> None:
    assert ReplaySettings(primary_networks=["192.0.2.7/24"]).primary_networks == ["192.0.2.0/24"]
