"""Outcomes of an outbound SMTP delivery, per recipient, and how a reply code classifies them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DeliveryStatus(StrEnum):
    """What happened to one recipient."""

    DELIVERED = "delivered"
    # Temporary: try again later (4xx replies, unreachable or timed-out servers, DNS trouble).
    DEFERRED = "deferred"
    # Permanent: do not retry (5xx replies, null MX, no such domain).
    FAILED = "failed"


def status_for_code(code: int) -> DeliveryStatus:
    """Classify an SMTP reply code (RFC 5321 section 4.2.1)."""
    if 200 <= code < 300:
        return DeliveryStatus.DELIVERED
    if 500 <= code < 600:
        return DeliveryStatus.FAILED
    return DeliveryStatus.DEFERRED


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """The outcome for one recipient, with the server's reply (or our reason) and the host tried last."""

    recipient: str
    status: DeliveryStatus
    code: int
    text: str
    host: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """Outcomes of one delivery attempt for every recipient."""

    results: tuple[RecipientResult, ...]

    def with_status(self, status: DeliveryStatus) -> list[RecipientResult]:
        """The recipients that ended in status."""
        return [result for result in self.results if result.status is status]

    @property
    def all_delivered(self) -> bool:
        """True when every recipient was delivered."""
        return all(result.status is DeliveryStatus.DELIVERED for result in self.results)
