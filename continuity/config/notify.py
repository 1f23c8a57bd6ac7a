"""Settings of state-change notifications (the ``[notify]`` table): admin mail and an optional webhook."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class NotifySettings(BaseModel):
    """Who hears about every failover state change."""

    model_config = ConfigDict(extra="forbid")

    admin_emails: list[str] = Field(
        default_factory=list, description="Addresses mailed on every state change (through the outbound path)."
    )
    from_address: str = Field(default="", description="Sender of notification mail (default: continuity@HOSTNAME).")
    webhook_url: SecretStr | None = Field(
        default=None,
        description=(
            "URL that receives a JSON POST on every state change (a secret: Slack and Teams URLs carry their "
            "credential; never logged or shown); not set disables it."
        ),
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Sent as 'Authorization: Bearer SECRET' with each webhook call."
    )
    timeout: float = Field(default=10.0, gt=0, description="Seconds a webhook call or a notification mail may take.")

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value
