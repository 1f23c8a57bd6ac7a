"""Failed SMTP AUTH attempts per client network, counted across sessions, with a lock-out.

A session's own error limit (``[smtp] max_errors``) ends one session; a guesser opens the
next. This counts failures per client network (an IPv4 address, an IPv6 /64, since one
host holds a whole /64) over a sliding window: after ``max_failures`` failures within
``window`` seconds, further attempts from that network are refused without checking the
password until the oldest failure leaves the window. Pure bookkeeping with an injected
clock; the relay listener asks and answers.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable

# Networks remembered at most; past it, the networks whose failures are all old are dropped first.
_MAX_TRACKED = 65536


def client_network(client: str) -> str:
    """The key a client is counted under: its IPv4 address, or its IPv6 /64 (an IPv4-mapped IPv6 as IPv4)."""
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class AuthFailureLimiter:
    """Counts failed authentications per client network; ``blocked`` says when to stop listening."""

    def __init__(self, max_failures: int, window: float, clock: Callable[[], float]) -> None:
        self._max_failures = max_failures
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def blocked(self, client: str) -> bool:
        """True while the client's network has used up its failures within the window."""
        failures = self._recent(client_network(client), self._clock())
        return failures is not None and len(failures) >= self._max_failures

    def retry_after(self, client: str) -> float:
        """Seconds until the client's network may try again (0 when it may now)."""
        now = self._clock()
        failures = self._recent(client_network(client), now)
        if failures is None or len(failures) < self._max_failures:
            return 0.0
        return max(0.0, failures[-self._max_failures] + self._window - now)

    def failed(self, client: str) -> int:
        """Count one failure; returns how many the client's network has within the window."""
        now = self._clock()
        key = client_network(client)
        failures = self._recent(key, now)
        if failures is None:
            if len(self._failures) >= _MAX_TRACKED:
                self.sweep()
            failures = self._failures[key] = deque(maxlen=self._max_failures)
        failures.append(now)
        return len(failures)

    def sweep(self) -> None:
        """Forget networks whose failures have all left the window (bounds memory)."""
        now = self._clock()
        for key in list(self._failures):
            self._recent(key, now)
