"""Configuration: the settings model, its loader, the redacted view and the reference docs."""

from continuity.config.loader import load_settings
from continuity.config.settings import Settings
from continuity.config.types import HostPort

__all__ = ["HostPort", "Settings", "load_settings"]
