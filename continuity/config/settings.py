"""The root settings model: a TOML file overridden by ``CONTINUITY_*`` environment variables."""

from __future__ import annotations

import contextvars
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from continuity.config.admin import AdminSettings
from continuity.config.directory import DirectorySettings
from continuity.config.dkim import DkimSettings
from continuity.config.dns import DnsSettings
from continuity.config.failover import FailoverSettings
from continuity.config.feeds import FeedSettings
from continuity.config.filters import FilterSettings
from continuity.config.monitor import MonitorSettings
from continuity.config.notify import NotifySettings
from continuity.config.outbound import OutboundSettings
from continuity.config.primary import PrimarySettings
from continuity.config.replay import ReplaySettings
from continuity.config.signals import SignalSettings
from continuity.config.smtp import SmtpSettings
from continuity.config.storage import StorageSettings
from continuity.config.web import WebSettings
from continuity.config.webmail import WebmailSettings
from continuity.core.addresses import normalize_domain

# The TOML file the next Settings() reads; set by continuity.config.loader.
CONFIG_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("CONFIG_FILE", default=None)


class LogLevel(StrEnum):
    """Logging verbosity."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Settings(BaseSettings):
    """Everything the appliance can be told. See docs/configuration.md for every key."""

    model_config = SettingsConfigDict(
        env_prefix="CONTINUITY_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(
        default=Path("./data"),
        description="Directory of the database, message bodies and state; must be on a local disk.",
    )
    domains: list[str] = Field(
        default_factory=list,
        description="Protected mail domains; mail for any other domain is refused (never an open relay).",
    )
    log_level: LogLevel = Field(default=LogLevel.INFO, description="Logging verbosity.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="Inbound SMTP listener.")
    web: WebSettings = Field(default_factory=WebSettings, description="Web listener.")
    primary: PrimarySettings = Field(default_factory=PrimarySettings, description="The primary Exchange.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="Message store.")
    admin: AdminSettings = Field(default_factory=AdminSettings, description="Admin HTTP API.")
    monitor: MonitorSettings = Field(default_factory=MonitorSettings, description="Health monitor of the primary.")
    failover: FailoverSettings = Field(default_factory=FailoverSettings, description="Failover switching.")
    dns: DnsSettings = Field(default_factory=DnsSettings, description="DNS switching (RFC 2136 with TSIG).")
    notify: NotifySettings = Field(default_factory=NotifySettings, description="State-change notifications.")
    filters: FilterSettings = Field(default_factory=FilterSettings, description="Security filter pipeline.")
    webmail: WebmailSettings = Field(default_factory=WebmailSettings, description="Webmail for affected users.")
    dkim: DkimSettings = Field(default_factory=DkimSettings, description="DKIM signing of outbound mail.")
    outbound: OutboundSettings = Field(default_factory=OutboundSettings, description="Outbound delivery.")
    replay: ReplaySettings = Field(default_factory=ReplaySettings, description="Replay into the primary.")
    feeds: FeedSettings = Field(default_factory=FeedSettings, description="Feeds of the primary's mail.")
    signals: SignalSettings = Field(default_factory=SignalSettings, description="Compromise signals and responses.")
    directory: DirectorySettings = Field(default_factory=DirectorySettings, description="Directory sync (AD, Entra).")

    @field_validator("domains")
    @classmethod
    def _domains_normalized(cls, value: list[str]) -> list[str]:
        seen: list[str] = []
        for item in value:
            domain = normalize_domain(item)
            if domain not in seen:
                seen.append(domain)
        return seen

    @property
    def database_path(self) -> Path:
        """The SQLite database file."""
        return self.storage.sqlite_path or self.data_dir / "continuity.db"

    @property
    def blob_path(self) -> Path:
        """The directory of message bodies."""
        return self.storage.blob_dir or self.data_dir / "blobs"

    @property
    def webmail_key_path(self) -> Path:
        """The webmail's key file (encrypts TOTP secrets, signs device cookies)."""
        return self.webmail.key_file or self.data_dir / "webmail.key"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = CONFIG_FILE.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)
