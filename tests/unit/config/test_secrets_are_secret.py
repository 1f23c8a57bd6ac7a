"""Every secret in the settings is a SecretStr, so `continuity config show` and error messages never print it.

docs/security-model.md promises that the effective configuration can be shown (and
pasted into a ticket) without its passwords, tokens and keys. A key whose name says it
holds a secret must therefore be typed SecretStr; the test walks the whole settings model.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path

from pydantic import BaseModel, SecretStr

from continuity.config.settings import Settings
from continuity.config.show import render_effective

SECRET_WORDS = ("password", "secret", "token")


def _models(annotation: object) -> list[type[BaseModel]]:
    """The BaseModel classes inside an annotation (X, X | None, list[X] ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        found += _models(argument)
    return found


def _is_secret(annotation: object) -> bool:
    if annotation is SecretStr:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return SecretStr in typing.get_args(annotation)
    return False


def _is_path(annotation: object) -> bool:
    return annotation is Path or Path in typing.get_args(annotation)


def _secret_keys(model: type[BaseModel], prefix: str = "") -> dict[str, bool]:
    keys: dict[str, bool] = {}
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if name.endswith("_file"):
            # A path to a file that holds the secret: the path is no secret, the file's mode guards it.
            keys[key] = _is_path(field.annotation)
        elif any(word in name for word in SECRET_WORDS):
            keys[key] = _is_secret(field.annotation)
        for inner in _models(field.annotation):
            keys |= _secret_keys(inner, key + ".")
    return keys


def test_every_secret_key_is_a_secret_str() -> None:
    keys = _secret_keys(Settings)
    # A control: the walk reaches nested tables (an empty walk would pass).
    assert {"admin.token", "replay.master_password", "filters.rspamd.password", "dns.tsig_secret"} <= set(keys)
    assert [key for key, secret in keys.items() if not secret] == []


def test_config_show_prints_none_of_them() -> None:
    settings = Settings.model_validate(
        {
            "domains": ["example.com"],
            "admin": {"token": "admin-token-" + "x" * 32},
            "filters": {"rspamd": {"url": "http://127.0.0.1:11333", "password": "rspamd-password-value"}},
            "replay": {"master_user": "replay", "master_password": "master-password-value"},
            "dns": {"tsig_key_name": "k.", "tsig_secret": "dHNpZy1zZWNyZXQtdmFsdWU="},
        }
    )
    shown = render_effective(settings)
    for value in ("admin-token-", "rspamd-password-value", "master-password-value", "dHNpZy1zZWNyZXQtdmFsdWU="):
        assert value not in shown
    assert shown.count('"**********"') >= 4
