"""What the web tier's handlers can reach: the settings, the store and the running services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from continuity.config.settings import Settings
from continuity.services.content_reader import ContentReader, LocalContentReader
from continuity.services.failover_wiring import FailoverServices
from continuity.services.signals import SignalService
from continuity.store.protocol import Store
from webmail.mail.services import WebmailServices

# Handler parameter types for the shared objects (Store is a Protocol, so litestar must
# not isinstance-check it).
StoreDep: TypeAlias = NamedDependency[SkipValidation[Store]]
SettingsDep: TypeAlias = NamedDependency[SkipValidation[Settings]]
ReaderDep: TypeAlias = NamedDependency[SkipValidation[ContentReader]]


@dataclass(frozen=True)
class WebContext:
    """Shared by every handler; the application keeps it in ``app.state.context``."""

    settings: Settings
    store: Store
    # The failover services of the running appliance; None in tools that only read.
    failover: FailoverServices | None = None
    # The webmail's services (webmail.mail.services.WebmailServices); None serves no webmail.
    webmail: WebmailServices | None = None
    # The compromise signals of the running appliance; None when off or in tools.
    signals: SignalService | None = None
    # Parses stored messages for display: the worker processes under serve; None in tools
    # (which then parse in a thread of their own process).
    reader: ContentReader | None = None

    def dependencies(self) -> dict[str, Provide]:
        """Litestar dependencies: handlers ask for ``store`` or ``settings`` by parameter name."""
        store, settings = self.store, self.settings
        reader = self.reader if self.reader is not None else LocalContentReader(store.blobs)

        def provide_store() -> Store:
            return store

        def provide_settings() -> Settings:
            return settings

        def provide_reader() -> ContentReader:
            return reader

        return {
            "store": Provide(provide_store, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "reader": Provide(provide_reader, sync_to_thread=False),
        }
