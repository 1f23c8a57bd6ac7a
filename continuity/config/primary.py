"""Settings describing the primary Exchange server (the ``[primary]`` table).

With no ``host`` the appliance runs standalone: accepted mail is delivered to the
standby mailbox and queued for replay.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PrimarySettings(BaseModel):
    """The primary mail server the appliance stands in for."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        default="",
        description="Host name or address of the primary Exchange; empty runs the appliance standalone.",
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port of the primary's receive connector.")
    imap_port: int = Field(default=993, ge=1, le=65535, description="IMAPS port of the primary.")

    @property
    def configured(self) -> bool:
        """True when a primary server is configured."""
        return bool(self.host)
