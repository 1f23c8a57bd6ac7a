"""Login throttling policy: progressive delays per account, per second factor, per device and per network.

Every attempt is counted before its password or code is checked (the store counts and
records in one transaction, see ``WebmailAuthRepository.begin_attempt``), so concurrent
attempts cannot get past a limit. A key's first ``free`` failures within the memory
window cost nothing; after that, each further attempt waits a delay that doubles with
every failure, from ``first_delay`` up to ``longest_delay``, counted from the newest
failure. Nothing ever locks an account for good, and a browser that signed in to the
account before is counted under its own device key, so strangers' failures do not slow
its owner down. IPv6 clients are counted per /64 (one customer's network), IPv4 clients
per address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class ThrottleScope(StrEnum):
    """What a throttle applies to."""

    ACCOUNT = "account"
    SECOND_FACTOR = "second_factor"
    DEVICE = "device"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Free failures per key, how long failures are remembered, and the delays after that."""

    max_per_account: int
    max_per_ip: int
    memory_seconds: float
    longest_delay: float
    first_delay: float = 15.0


@dataclass(frozen=True, slots=True)
class FailureCounts:
    """Recent failures and the time of the oldest counted one, per key (for inspection)."""

    account: int
    account_oldest: float
    ip: int
    ip_oldest: float


@dataclass(frozen=True, slots=True)
class KeyFailures:
    """The failures of one key inside the memory window, and the time of the newest (0 when none)."""

    count: int
    newest: float


@dataclass(frozen=True, slots=True)
class Limit:
    """One counter an attempt is checked against: its key and how many failures are free."""

    scope: ThrottleScope
    key: str
    free: int


@dataclass(frozen=True, slots=True)
class Throttled:
    """Attempts are refused until retry_after seconds have passed."""

    scope: ThrottleScope
    retry_after: float

    @property
    def message(self) -> str:
        """A sentence for the user."""
        seconds = max(1, round(self.retry_after))
        if seconds < 90:
            wait = f"{seconds} second{'s' if seconds > 1 else ''}"
        else:
            minutes = round(seconds / 60)
            wait = f"{minutes} minutes"
        who = {
            ThrottleScope.IP: "your network address",
            ThrottleScope.SECOND_FACTOR: "the code of this account",
        }.get(self.scope, "this account")
        return f"Too many failed sign-in attempts for {who}. Try again in {wait}."


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of asking to try: refused (throttled) or admitted, with the ids of its recorded rows."""

    throttled: Throttled | None
    recorded: tuple[int, ...]


def account_key(address: str) -> str:
    """The password-failure counter key of an account."""
    return f"account:{address.lower()}"


def second_factor_key(address: str) -> str:
    """The second-factor failure counter key of an account (a right password never clears it)."""
    return f"totp:{address.lower()}"


def reauth_key(address: str) -> str:
    """The failure counter key of the password a signed-in user types again (settings)."""
    return f"reauth:{address.lower()}"


def device_key(device_id: str) -> str:
    """The failure counter key of a browser that signed in before."""
    return f"device:{device_id}"


def ip_key(address: str) -> str:
    """The failure counter key of a client: its IPv4 address, or the /64 network of an IPv6 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"ip:{address[:64]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"ip:{ip.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"ip:{ip}"


def delay_after(policy: ThrottlePolicy, failures: int, free: int) -> float:
    """Seconds to wait after the newest of failures counted failures; 0 while they are free."""
    if failures < free:
        return 0.0
    return float(min(policy.longest_delay, policy.first_delay * 2.0 ** min(failures - free, 40)))


def decide(
    policy: ThrottlePolicy, limits: Sequence[Limit], failures: Sequence[KeyFailures], now: float
) -> Throttled | None:
    """Throttled by the limit that asks for the longest wait (the network's on a tie), else None."""
    worst: Throttled | None = None
    for limit, counted in zip(limits, failures, strict=True):
        wait = counted.newest + delay_after(policy, counted.count, limit.free) - now
        if counted.count < limit.free or wait <= 0:
            continue
        if worst is None or wait > worst.retry_after or (wait == worst.retry_after and limit.scope is ThrottleScope.IP):
            worst = Throttled(limit.scope, wait)
    return worst
