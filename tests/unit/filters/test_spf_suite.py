"""The RFC 7208 SPF test suite (as shipped with pyspf) through the appliance's SPF check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from continuity.filters.auth import check_spf
from tests.support.zone_resolver import ZoneResolver

SUITE = Path(__file__).parents[2] / "data" / "spf" / "rfc7208-tests.yml"


def _cases() -> list[Any]:
    cases = []
    for scenario in yaml.safe_load_all(SUITE.read_text(encoding="utf-8")):
        resolver = ZoneResolver(scenario["zonedata"])
        for name, test in scenario["tests"].items():
            cases.append(pytest.param(resolver, test, id=name))
    return cases


CASES = _cases()


def test_the_whole_suite_is_loaded() -> None:
    assert len(CASES) > 150


@pytest.mark.parametrize(("resolver", "test"), CASES)
def test_rfc7208(resolver: ZoneResolver, test: dict[str, Any]) -> None:
    expected = test["result"]
    allowed = set(expected) if isinstance(expected, list) else {expected}
    result = check_spf(resolver, test["host"], test["mailfrom"], test["helo"])
    assert result.result in allowed, f"{test.get('description')}: got {result.result}, want {allowed}"
    # "DEFAULT" stands for the receiver's own default text.
    if test.get("explanation") not in (None, "DEFAULT") and result.result == "fail":
        assert result.explanation == test["explanation"]
