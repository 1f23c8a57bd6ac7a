"""Per-client-IP limits: concurrent sessions and messages per minute.

Pure bookkeeping with an injected clock; the SMTP adapter asks and answers 421/451.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ClientLimitPolicy:
    """The limits; 0 messages per minute means no rate limit."""

    max_sessions: int
    max_messages_per_minute: int
    exempt_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def build(cls, max_sessions: int, max_messages_per_minute: int, exempt: Iterable[str]) -> ClientLimitPolicy:
        """Build a policy from configuration values."""
        networks = tuple(ipaddress.ip_network(item, strict=False) for item in exempt)
        return cls(max_sessions, max_messages_per_minute, networks)


class ClientLimiter:
    """Counts sessions and recent messages per client address."""

    def __init__(self, policy: ClientLimitPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._sessions: dict[str, int] = defaultdict(int)
        self._messages: dict[str, deque[float]] = {}
        self._exempt_cache: dict[str, bool] = {}

    def _exempt(self, client: str) -> bool:
        cached = self._exempt_cache.get(client)
        if cached is None:
            try:
                ip = ipaddress.ip_address(client)
            except ValueError:
                cached = False
            else:
                cached = any(ip in network for network in self._policy.exempt_networks)
            if len(self._exempt_cache) > 65536:
                self._exempt_cache.clear()
            self._exempt_cache[client] = cached
        return cached

    def open_session(self, client: str) -> bool:
        """Count a new session; False (and nothing counted) when the client has too many."""
        if not self._exempt(client) and self._sessions[client] >= self._policy.max_sessions:
            return False
        self._sessions[client] += 1
        return True

    def close_session(self, client: str) -> None:
        """Forget one session of client."""
        remaining = self._sessions.get(client, 0) - 1
        if remaining > 0:
            self._sessions[client] = remaining
        else:
            self._sessions.pop(client, None)

    def allow_message(self, client: str) -> bool:
        """Count one message; False (and nothing counted) when the client is over its rate."""
        limit = self._policy.max_messages_per_minute
        if limit == 0 or self._exempt(client):
            return True
        now = self._clock()
        window = self._messages.get(client)
        if window is None:
            window = self._messages[client] = deque()
        while window and window[0] <= now - _WINDOW_SECONDS:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(now)
        return True

    def sweep(self) -> None:
        """Drop rate windows that have fully expired (call now and then to bound memory)."""
        horizon = self._clock() - _WINDOW_SECONDS
        for client in [key for key, window in self._messages.items() if not window or window[-1] <= horizon]:
            del self._messages[client]
