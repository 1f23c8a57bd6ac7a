"""Probe results: what one check of the primary found, as typed values the health policy can weigh.

The adapters (continuity.adapters.probe_*) run the checks against the network and
return these; the policy (continuity.core.health) and the audit log consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ProbeKind(StrEnum):
    """Which service of the primary a probe checks."""

    SMTP = "smtp"
    IMAP = "imap"
    HTTPS = "https"
    CANARY = "canary"


class ProbeOutcome(StrEnum):
    """What a probe concluded."""

    # The service answered as a healthy Exchange does.
    UP = "up"
    # The service is unreachable or answered wrongly.
    DOWN = "down"
    # The service said it is deliberately unavailable (SMTP 421): planned work, not an outage.
    MAINTENANCE = "maintenance"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One run of one probe.

    ``name`` identifies the probe (e.g. ``smtp``, ``https:/owa/healthcheck.htm``); ``detail``
    is one human sentence; ``warnings`` are problems that do not make the service down
    (a certificate expiring soon).
    """

    name: str
    kind: ProbeKind
    outcome: ProbeOutcome
    latency: float
    detail: str
    at: float
    warnings: tuple[str, ...] = field(default=())

    @property
    def up(self) -> bool:
        """True when the probe found the service healthy."""
        return self.outcome is ProbeOutcome.UP

    def evidence(self) -> dict[str, object]:
        """A JSON-serialisable summary for the audit log and the status output."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "outcome": self.outcome.value,
            "latency_ms": round(self.latency * 1000, 1),
            "detail": self.detail,
            "at": self.at,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_evidence(cls, data: dict[str, object]) -> ProbeResult:
        """Rebuild a result stored with :meth:`evidence`."""
        warnings = data.get("warnings") or []
        return cls(
            name=str(data["name"]),
            kind=ProbeKind(str(data["kind"])),
            outcome=ProbeOutcome(str(data["outcome"])),
            latency=float(data["latency_ms"]) / 1000,  # type: ignore[arg-type]
            detail=str(data["detail"]),
            at=float(data["at"]),  # type: ignore[arg-type]
            warnings=tuple(str(item) for item in warnings) if isinstance(warnings, list) else (),
        )
