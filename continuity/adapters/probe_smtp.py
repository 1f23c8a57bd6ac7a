"""The SMTP probe of the primary (aiosmtplib): 220 banner, EHLO, STARTTLS, certificate expiry, optional canary RCPT.

A ``421`` at any step means the primary announces maintenance. It comes in plaintext,
before any certificate is seen, so the health policy (continuity.core.health) believes it
only for ``[monitor] maintenance_limit`` and never against the other probes.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosmtplib
from cryptography import x509

from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult

_MAINTENANCE = 421


@dataclass(frozen=True, slots=True)
class SmtpProbeTarget:
    """Where and how to probe."""

    host: str
    port: int
    helo: str
    tls: ssl.SSLContext
    require_starttls: bool
    canary_rcpt: str
    cert_warning_days: int
    timeout: float


def certificate_days_left(ssl_object: object, now: datetime | None = None) -> float | None:
    """Days until the peer certificate of a TLS connection expires, or None without one."""
    getpeercert = getattr(ssl_object, "getpeercert", None)
    if getpeercert is None:
        return None
    der = getpeercert(binary_form=True)
    if not der:
        return None
    expires = x509.load_der_x509_certificate(der).not_valid_after_utc
    return (expires - (now or datetime.now(tz=UTC))).total_seconds() / 86400


class _MaintenanceError(Exception):
    pass


async def probe_smtp(target: SmtpProbeTarget) -> ProbeResult:
    """Run the SMTP probe once; never raises."""
    started = time.monotonic()
    at = time.time()
    warnings: list[str] = []

    def result(outcome: ProbeOutcome, detail: str) -> ProbeResult:
        return ProbeResult("smtp", ProbeKind.SMTP, outcome, time.monotonic() - started, detail, at, tuple(warnings))

    client = aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        local_hostname=target.helo,
        timeout=target.timeout,
        start_tls=False,
        tls_context=target.tls,
    )
    try:
        try:
            await client.connect()
        except aiosmtplib.SMTPConnectResponseError as exc:
            if exc.code == _MAINTENANCE:
                raise _MaintenanceError(f"banner {exc.code} {exc.message}") from exc
            return result(ProbeOutcome.DOWN, f"banner {exc.code} {exc.message}")
        try:
            ehlo = await client.ehlo()
            if ehlo.code == _MAINTENANCE:
                raise _MaintenanceError(f"EHLO {ehlo.code} {ehlo.message}")
            tls_detail = "no STARTTLS"
            if client.supports_extension("starttls"):
                await client.starttls()
                days = certificate_days_left(client.get_transport_info("ssl_object"))
                tls_detail = "STARTTLS" if days is None else f"STARTTLS, certificate valid {days:.0f} more days"
                if days is not None and days < target.cert_warning_days:
                    warnings.append(f"the SMTP certificate expires in {days:.1f} days")
            elif target.require_starttls:
                return result(ProbeOutcome.DOWN, "STARTTLS is not offered")
            if target.canary_rcpt:
                mail = await client.mail("")
                if mail.code == _MAINTENANCE:
                    raise _MaintenanceError(f"MAIL {mail.code} {mail.message}")
                rcpt = await client.rcpt(target.canary_rcpt)
                await client.rset()
                tls_detail += f", RCPT <{target.canary_rcpt}> {rcpt.code}"
            await client.quit()
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == _MAINTENANCE:
                raise _MaintenanceError(f"{exc.code} {exc.message}") from exc
            return result(ProbeOutcome.DOWN, f"{exc.code} {exc.message}")
        return result(ProbeOutcome.UP, f"220 banner, EHLO, {tls_detail}")
    except _MaintenanceError as exc:
        return result(ProbeOutcome.MAINTENANCE, f"maintenance: {exc}")
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
        return result(ProbeOutcome.DOWN, f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
