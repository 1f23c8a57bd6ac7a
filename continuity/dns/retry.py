"""Retries of a cloud DNS API's requests: backoff between attempts, a 429's Retry-After honoured.

Shared by the providers that speak to an HTTP API through httpx (cloudflare, azure).
Only :class:`RetryableError` is retried: no answer, a 5xx, a 429; a refusal or a
compare-and-swap failure is raised at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from continuity.dns.errors import DnsUpdateError

log = logging.getLogger("continuity.dns")

T = TypeVar("T")

# The longest Retry-After honoured within one switch; a longer one fails it (the controller retries later).
MAX_RETRY_AFTER = 60.0


class RetryableError(DnsUpdateError):
    """No answer, a 5xx or a 429: the same request may succeed later (not before ``wait`` seconds)."""

    def __init__(self, message: str, wait: float = 0.0) -> None:
        super().__init__(message)
        self.wait = wait


def retry_after(response: httpx.Response) -> float:
    """A 429's Retry-After in seconds (1 when absent or not a number of seconds)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


async def with_retries(attempts: int, operation: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """attempt() up to attempts times while it raises RetryableError, waiting 1, 2, 4 s or its Retry-After."""
    delay = 1.0
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except RetryableError as exc:
            if exc.wait > MAX_RETRY_AFTER:
                raise DnsUpdateError(
                    f"gave up {operation}: {exc}, longer than the {MAX_RETRY_AFTER:g}s a switch waits"
                ) from exc
            if number == attempts:
                raise DnsUpdateError(f"could not complete {operation} after {attempts} attempts: {exc}") from exc
            log.warning("%s, attempt %d of %d: %s", operation, number, attempts, exc)
            await asyncio.sleep(max(delay, exc.wait))
            delay *= 2
    raise AssertionError("unreachable: the last attempt returns or raises")
