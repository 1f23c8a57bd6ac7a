"""Switching mail between the primary and the standby: by DNS (a provider of continuity.dns) or by gateway routing.

Both switchers are idempotent: a switch to the side mail already goes to only
verifies it. A switch either succeeds for every protected domain or raises
:class:`SwitchError` saying, domain by domain, what was done and what was not (for a
DNS switch: the MX on the update server before and after, which authoritative servers
serve it and what each of the others serves); the failover state then stays in its
switching state and the monitor retries, so the state never claims more than what is
true.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from continuity.config.dns import DnsSettings
from continuity.core.failover import Routing
from continuity.dns.errors import DnsUpdateError, DnsVerifyError
from continuity.dns.provider import DomainSwitch, MxUpdater
from continuity.errors import ContinuityError

log = logging.getLogger("continuity.switch")


class SwitchError(ContinuityError):
    """A switch did not complete; evidence says what was done per domain."""

    def __init__(self, message: str, evidence: dict[str, object]) -> None:
        super().__init__(message)
        self.evidence = evidence


@dataclass(frozen=True, slots=True)
class SwitchOutcome:
    """A completed switch: where mail goes now, what was changed, how long it took."""

    to: Routing
    summary: str
    evidence: dict[str, object] = field(default_factory=dict)
    duration: float = 0.0


class Switcher(Protocol):
    """Moves mail to one side."""

    async def switch(self, to: Routing) -> SwitchOutcome:
        """Make mail go to `to` and verify it; SwitchError when it could not."""
        ...


class DnsSwitcher:
    """Replaces the MX RRset of every protected domain, then verifies it on every authoritative server."""

    def __init__(self, settings: DnsSettings, domains: Sequence[str], updater: MxUpdater) -> None:
        if not settings.primary_mx or not settings.standby_mx:
            raise SwitchError("dns: set primary_mx and standby_mx to switch by DNS", {})
        self._settings = settings
        self._domains = list(domains)
        self._updater = updater

    async def switch(self, to: Routing) -> SwitchOutcome:
        started = time.monotonic()
        if to is Routing.STANDBY:
            expected, target = self._settings.primary_mx, self._settings.standby_mx
        else:
            expected, target = self._settings.standby_mx, self._settings.primary_mx
        done: list[DomainSwitch] = []
        # Changed on the update server, but not served by every authoritative server.
        unverified: list[dict[str, object]] = []
        failed: dict[str, str] = {}
        for domain in self._domains:
            try:
                change = await self._updater.replace_mx(domain, expected, target)
                servers = await self._updater.verify(domain, target)
            except DnsVerifyError as exc:
                what = "updated" if change.updated else "already changed by an earlier attempt"
                failed[domain] = f"{exc} (MX {what})"
                unverified.append(
                    {**change.evidence(), "verified_on": list(exc.serving), "not_serving": exc.not_serving}
                )
                log.error("DNS switch of %s to the %s is partial: %s", domain, to.value, failed[domain])
                continue
            except DnsUpdateError as exc:
                failed[domain] = str(exc)
                log.error("DNS switch of %s to the %s failed: %s", domain, to.value, exc)
                continue
            done.append(DomainSwitch(change.domain, change.before, change.after, change.updated, servers))
        evidence: dict[str, object] = {
            "mode": "dns",
            "to": to.value,
            "domains": [item.evidence() for item in done],
            "unverified": unverified,
            "failed": failed,
            # Servers that would not answer queries signed with the TSIG key: their answers were not authenticated.
            "read_unsigned": list(self._updater.unsigned_servers),
        }
        if failed:
            switched = ", ".join(item.domain for item in done) or "none"
            raise SwitchError(
                f"DNS switch to the {to.value} incomplete: switched and verified: {switched}; "
                + "; ".join(f"{domain}: {why}" for domain, why in failed.items()),
                evidence,
            )
        changed = [item.domain for item in done if item.updated]
        summary = (
            f"MX of {', '.join(self._domains)} now {' '.join(target)} "
            f"(updated {len(changed)}, already so {len(done) - len(changed)}), verified on every authoritative server"
        )
        return SwitchOutcome(to, summary, evidence, time.monotonic() - started)
