"""Login throttling policy: how many recent failures per account and per client IP are allowed.

The store counts failures inside the window; this module decides. An account or an IP
over its limit is refused without checking the password, until its oldest counted
failure leaves the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ThrottleScope(StrEnum):
    """What a throttle applies to."""

    ACCOUNT = "account"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Limits inside one sliding window."""

    max_per_account: int
    max_per_ip: int
    window_seconds: float


@dataclass(frozen=True, slots=True)
class FailureCounts:
    """Recent failures and the time of the oldest counted one, per key."""

    account: int
    account_oldest: float
    ip: int
    ip_oldest: float


@dataclass(frozen=True, slots=True)
class Throttled:
    """Attempts are refused until retry_after seconds have passed."""

    scope: ThrottleScope
    retry_after: float

    @property
    def message(self) -> str:
        """A sentence for the user."""
        minutes = max(1, round(self.retry_after / 60))
        who = "this account" if self.scope is ThrottleScope.ACCOUNT else "your network address"
        return f"Too many failed sign-in attempts for {who}. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def account_key(address: str) -> str:
    """The failure-counter key of an account."""
    return f"account:{address.lower()}"


def ip_key(address: str) -> str:
    """The failure-counter key of a client address."""
    return f"ip:{address}"


def decide(policy: ThrottlePolicy, counts: FailureCounts, now: float) -> Throttled | None:
    """Throttled when either counter reached its limit, else None."""
    if counts.ip >= policy.max_per_ip:
        return Throttled(ThrottleScope.IP, max(1.0, counts.ip_oldest + policy.window_seconds - now))
    if counts.account >= policy.max_per_account:
        return Throttled(ThrottleScope.ACCOUNT, max(1.0, counts.account_oldest + policy.window_seconds - now))
    return None
