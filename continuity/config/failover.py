"""Settings of failover switching (the ``[failover]`` table): how mail is moved between primary and standby."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class SwitchMode(StrEnum):
    """How mail is switched between the primary and the standby."""

    # RFC 2136 updates of the protected domains' MX records ([dns] table).
    DNS = "dns"
    # The MX always points at the appliance; it relays to the primary in NORMAL.
    GATEWAY = "gateway"


class FailoverSettings(BaseModel):
    """Switching mode and retry behaviour."""

    model_config = ConfigDict(extra="forbid")

    mode: SwitchMode = Field(default=SwitchMode.DNS, description="Switching mode: dns or gateway.")
    retry_initial: float = Field(
        default=5.0, gt=0, description="Seconds before retrying a failed switch; doubled after each failure."
    )
    retry_max: float = Field(default=300.0, gt=0, description="Longest wait between switch retries, in seconds.")
    command_poll: float = Field(
        default=0.5, gt=0, description="Seconds between checks for operator commands given to a running server."
    )
    command_timeout: float = Field(
        default=180.0, gt=0, description="Seconds a CLI command waits for the running server to carry it out."
    )
    relay_interval: float = Field(
        default=2.0, gt=0, description="Gateway mode: seconds between relay passes when nothing is waiting."
    )
    relay_retry: float = Field(
        default=60.0, gt=0, description="Gateway mode: seconds before retrying a message the primary deferred."
    )
