"""Settings of the health monitor (the ``[monitor]`` table): probes of the primary and the health policy.

The policy defaults are justified in continuity.core.health and docs/failover.md.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from continuity.core.health import DEFAULT_WEIGHTS, HealthPolicy
from continuity.core.probes import ProbeKind

EXCHANGE_HEALTH_PATHS = [
    "/owa/healthcheck.htm",
    "/ews/healthcheck.htm",
    "/Autodiscover/healthcheck.htm",
    "/mapi/healthcheck.htm",
]


class MonitorSettings(BaseModel):
    """How and how often the primary is probed, and when it counts as down or up."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Probe the primary (only when [primary] host is set).")
    interval: float = Field(default=15.0, gt=0, description="Seconds between monitor cycles.")
    probe_timeout: float = Field(
        default=10.0, gt=0, description="Seconds each probe may take before it counts as down."
    )
    failures_to_down: int = Field(default=3, ge=1, description="Consecutive failed cycles before the primary is down.")
    down_after: float = Field(
        default=60.0,
        ge=0,
        description="Seconds the failed cycles must span before the primary is down (counted in intervals: "
        "60 s at 15 s is 5 cycles).",
    )
    successes_to_up: int = Field(default=3, ge=1, description="Consecutive good cycles before the primary is up.")
    hold_down: float = Field(
        default=600.0,
        ge=0,
        description="Seconds the primary must stay healthy before a failback (counted in intervals: 600 s at 15 s "
        "is 41 cycles).",
    )
    suspect_after: int = Field(default=2, ge=1, description="Consecutive failed cycles before the state is SUSPECT.")
    maintenance_limit: float = Field(
        default=1800.0,
        ge=0,
        description="Seconds an SMTP 421 from the primary is believed to be maintenance (not counted as an outage), "
        "from the first 421 until its SMTP probe is up again; after that a 421 counts as down. "
        "Use 'continuity pause' for longer planned work.",
    )
    outage_threshold: float = Field(
        default=1.25, gt=0, description="Summed weight of down probes that makes a cycle failed."
    )
    weights: dict[ProbeKind, float] = Field(
        default_factory=lambda: {kind: weight for kind, weight in DEFAULT_WEIGHTS.items()},
        description="Weight of one probe of each kind (smtp, imap, https per URL, canary).",
    )
    smtp: bool = Field(default=True, description="Probe SMTP: 220 banner, EHLO, STARTTLS and the certificate.")
    smtp_require_starttls: bool = Field(
        default=True, description="Count the SMTP probe down when the primary does not offer STARTTLS."
    )
    smtp_canary_rcpt: str = Field(
        default="", description="An address the SMTP probe tries with RCPT TO (then RSET); empty skips it."
    )
    cert_warning_days: int = Field(
        default=14, ge=0, description="Warn when the primary's certificate expires in fewer days."
    )
    tls_verify: bool = Field(default=True, description="Verify the primary's certificates (SMTP, IMAP, HTTPS).")
    ca_file: Path | None = Field(default=None, description="PEM CA bundle for the primary's certificates.")
    imap: bool = Field(
        default=False, description="Probe IMAP over TLS: greeting, login of the canary account, SELECT INBOX."
    )
    canary_user: str = Field(default="", description="Canary account on the primary (IMAP login and round trip).")
    canary_password: SecretStr | None = Field(default=None, description="Password of the canary account.")
    https: bool = Field(default=True, description="Probe the primary's HTTPS health endpoints.")
    https_port: int = Field(default=443, ge=1, le=65535, description="HTTPS port of the primary.")
    health_paths: list[str] = Field(
        default_factory=lambda: list(EXCHANGE_HEALTH_PATHS),
        description="Health endpoints that must answer 200 with the body '200 OK'.",
    )
    canary_address: str = Field(
        default="", description="Round-trip probe: mail sent here through the primary's SMTP; empty skips it."
    )
    canary_interval: float = Field(default=300.0, gt=0, description="Seconds between canary round trips.")
    canary_deadline: float = Field(
        default=120.0, gt=0, description="Seconds within which the canary message must appear over IMAP."
    )

    @field_validator("health_paths")
    @classmethod
    def _paths_absolute(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"'{path}' must start with /")
        return value

    def policy(self) -> HealthPolicy:
        """The pure health policy these settings describe."""
        return HealthPolicy(
            failures_to_down=self.failures_to_down,
            down_after=self.down_after,
            successes_to_up=self.successes_to_up,
            hold_down=self.hold_down,
            suspect_after=self.suspect_after,
            outage_threshold=self.outage_threshold,
            weights={**DEFAULT_WEIGHTS, **self.weights},
            interval=self.interval,
            maintenance_limit=self.maintenance_limit,
        )
