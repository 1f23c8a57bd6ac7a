"""The HTTPS probes of the primary (httpx): Exchange health endpoints must answer 200 with the body "200 OK".

One result per endpoint, so one flaky endpoint weighs little (continuity.core.health).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult


@dataclass(frozen=True, slots=True)
class HttpsProbeTarget:
    """The primary's web front end."""

    host: str
    port: int
    paths: tuple[str, ...]
    tls: ssl.SSLContext
    timeout: float

    @property
    def base_url(self) -> str:
        """https://host:port"""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


async def _check(client: httpx.AsyncClient, path: str) -> ProbeResult:
    started = time.monotonic()
    at = time.time()
    name = f"https:{path}"
    try:
        response = await client.get(path)
    except httpx.HTTPError as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ProbeResult(name, ProbeKind.HTTPS, ProbeOutcome.DOWN, time.monotonic() - started, detail, at)
    latency = time.monotonic() - started
    body = response.text.strip()
    if response.status_code == 200 and body.startswith("200 OK"):
        return ProbeResult(name, ProbeKind.HTTPS, ProbeOutcome.UP, latency, "200 OK", at)
    detail = f"HTTP {response.status_code}, body {body[:60]!r}"
    return ProbeResult(name, ProbeKind.HTTPS, ProbeOutcome.DOWN, latency, detail, at)


async def probe_https(target: HttpsProbeTarget) -> list[ProbeResult]:
    """Check every health endpoint concurrently; never raises."""
    async with httpx.AsyncClient(
        base_url=target.base_url, verify=target.tls, timeout=target.timeout, follow_redirects=False
    ) as client:
        results: Sequence[ProbeResult] = await asyncio.gather(*(_check(client, path) for path in target.paths))
    return list(results)
