"""Render the effective configuration as TOML with secrets redacted."""

from __future__ import annotations

from typing import Any

import tomli_w
from pydantic import BaseModel


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def render_effective(settings: BaseModel) -> str:
    """TOML of the effective settings; SecretStr values print as '**********', unset keys are omitted."""
    return tomli_w.dumps(_without_nulls(settings.model_dump(mode="json")))
