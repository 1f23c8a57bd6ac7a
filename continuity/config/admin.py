"""Settings of the admin HTTP API (the ``[admin]`` table)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

_MIN_TOKEN = 32


class AdminSettings(BaseModel):
    """Who may use the admin API (``/api/v1``)."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token for the admin API, at least 32 characters (e.g. `openssl rand -hex 32`); "
            "unset disables the admin API (it answers 503)."
        ),
    )

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < _MIN_TOKEN:
            raise ValueError(f"the admin token must have at least {_MIN_TOKEN} characters")
        return value
