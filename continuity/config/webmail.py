"""Settings of the webmail for affected users (the ``[webmail]`` table)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class WebmailSettings(BaseModel):
    """Sessions, login throttling, activation and limits of the webmail."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Serve the webmail on the web listener.")
    public_url: str = Field(
        default="",
        description=(
            "Base URL users reach the webmail at, e.g. https://standby.example.com; activation links use it "
            "(never the request's Host header). Empty disables activation by e-mail."
        ),
    )
    cookie_secure: bool = Field(
        default=True,
        description="Mark the session cookie Secure (HTTPS only). Turn off only for plain-HTTP test set-ups.",
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=1440, description="A session ends after this many minutes without a request."
    )
    session_max_hours: int = Field(
        default=12, ge=1, le=168, description="A session ends this many hours after login, whatever the activity."
    )
    max_failures_per_account: int = Field(
        default=5,
        ge=1,
        description=(
            "Failed sign-ins (and, separately, failed codes) per account that cost no wait; after that each "
            "further attempt waits a delay that doubles, from 15 seconds up to throttle_minutes."
        ),
    )
    max_failures_per_ip: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins per client network (IPv4 address, IPv6 /64) before its attempts are delayed.",
    )
    throttle_minutes: int = Field(
        default=15, ge=1, le=1440, description="The longest delay the login throttle makes anyone wait."
    )
    failure_memory_hours: int = Field(
        default=24,
        ge=1,
        le=720,
        description="How long a failed sign-in counts towards the throttle (a correct sign-in forgets them sooner).",
    )
    device_cookie_days: int = Field(
        default=90,
        ge=0,
        le=400,
        description=(
            "Days a browser that signed in stays known (a signed cookie); strangers' failures do not delay it. "
            "0 turns device cookies off."
        ),
    )
    key_file: Path | None = Field(
        default=None,
        description=(
            "Key file that encrypts TOTP secrets and signs device cookies, created on first start; keep it out of "
            "database backups. Not set: webmail.key in data_dir."
        ),
    )
    activation_hours: int = Field(
        default=24, ge=1, le=168, description="Hours an activation link sent to the alternate address stays valid."
    )
    page_size: int = Field(default=50, ge=10, le=200, description="Messages per page in message lists.")
    max_upload_size: int = Field(
        default=26_214_400, ge=1024, description="Largest compose form (message plus attachments), in bytes."
    )
    totp_issuer: str = Field(default="Continuity webmail", description="Issuer name shown in authenticator apps.")

    @field_validator("public_url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        text = value.strip().rstrip("/")
        if text and not text.startswith(("https://", "http://")):
            raise ValueError(f"'{value}' is not an http(s) URL such as https://standby.example.com")
        return text
