"""Build the configured directory source and the sync service (CLI and serve share this)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from continuity.adapters.smtp_client import SmtpDelivery
from continuity.config.settings import Settings
from continuity.directory.core.records import SourceKind
from continuity.directory.service import DirectorySource, DirectorySync
from continuity.errors import ConfigError
from continuity.services.notifier import Notifier
from continuity.store.protocol import Store


def build_source(settings: Settings) -> DirectorySource:
    """The source [directory] source names; ConfigError when it is none."""
    kind = settings.directory.source
    if kind is SourceKind.AD:
        from continuity.directory.ad import ActiveDirectorySource

        return ActiveDirectorySource(settings.directory.ad)
    if kind is SourceKind.ENTRA:
        from continuity.directory.entra import EntraSource

        return EntraSource(settings.directory.entra)
    raise ConfigError('[directory] source is none: set source = "ad" or "entra" to sync mailboxes from a directory')


def build_notifier(settings: Settings) -> Notifier:
    """The admins' notification path ([notify]), as failover uses it."""
    mail = SmtpDelivery(settings.outbound, settings.smtp.hostname) if settings.notify.admin_emails else None
    return Notifier(settings.notify, mail, settings.smtp.hostname)


def build_sync(
    settings: Settings,
    store: Store,
    notifier: Notifier | None,
    after_apply: Callable[[], Awaitable[object]] | None = None,
) -> DirectorySync:
    """The sync service from the settings."""
    return DirectorySync(
        store,
        build_source(settings),
        settings.domains,
        settings.directory.max_removals,
        alert=notifier.announce if notifier is not None else None,
        appliance=settings.smtp.hostname,
        after_apply=after_apply,
    )
