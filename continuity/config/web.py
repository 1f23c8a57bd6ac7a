"""Settings of the HTTP listener serving webmail and the admin API (the ``[web]`` table)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from continuity.config.types import HostPort, ListenAddress, parse_host_port

_MIN_TOKEN = 16


class WebSettings(BaseModel):
    """Where the web interface listens."""

    model_config = ConfigDict(extra="forbid")

    listen: ListenAddress = Field(
        default="127.0.0.1:8080",
        description="Address and port of the HTTP listener (webmail, admin API, health).",
    )

    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token a scrape of /metrics must send ('Authorization: Bearer TOKEN'), at least 16 characters. "
            "Not set: /metrics is open to anyone who reaches the web listener."
        ),
    )

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < _MIN_TOKEN:
            raise ValueError(f"must be at least {_MIN_TOKEN} characters")
        return value

    @property
    def listen_address(self) -> HostPort:
        """The parsed listen address."""
        return parse_host_port(self.listen)
