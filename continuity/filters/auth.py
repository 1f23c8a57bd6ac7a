"""Mail authentication stage: SPF (pyspf), DKIM and ARC (dkimpy), DMARC (authheaders).

Every lookup goes through the appliance's resolver (dnspython with a cache and a
timeout). The stage writes one Authentication-Results field (RFC 8601) and reports
failures as findings; the verdict policy decides what they mean (by default a DMARC
failure under ``p=reject`` rejects, under ``p=quarantine`` quarantines).

Outbound mail (from the appliance's own authenticated users) is not checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.resources
import ipaddress
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

import authheaders
import authheaders.dmarc_lookup
import dkim
import dns.exception
import spf
from authheaders import check_arc, check_dmarc
from authres import AuthenticationResultsHeader, DKIMAuthenticationResult, SPFAuthenticationResult
from publicsuffix2 import PublicSuffixList

from continuity.core.message_view import MessageView
from continuity.core.pipeline import Direction, Envelope, Finding, StageReport


def _parse_public_suffix_list_once() -> None:
    """Make authheaders parse the Public Suffix List once instead of on every DMARC lookup.

    authheaders.dmarc_lookup.get_org_domain reads and parses the whole list (about 0.3 s
    of CPU) each time it is called, several times per message; this replaces it, in both
    modules that hold a reference, with the same computation over a list parsed once.
    """
    try:
        from authheaders.findpsl import location as psl_location
    except ModuleNotFoundError:
        psl_location = None
    if psl_location is not None:
        with open(psl_location, encoding="utf-8") as handle:  # noqa: PTH123 - a str path from authheaders
            psl = PublicSuffixList(handle)
    else:
        reference = importlib.resources.files("authheaders") / "public_suffix_list.txt"
        with importlib.resources.as_file(reference) as path, path.open(encoding="utf-8") as handle:
            psl = PublicSuffixList(handle)
    cached = functools.lru_cache(maxsize=50_000)(psl.get_public_suffix)
    authheaders.dmarc_lookup.get_org_domain = cached
    authheaders.get_org_domain = cached


_parse_public_suffix_list_once()


class Lookup(Protocol):
    """What the stage needs from DNS (continuity.adapters.dns_cache.CachingResolver)."""

    def lookup(self, name: str, rtype: str) -> tuple[object, ...]:
        """Answer records (with .name, .rtype, .value); raises a DNSException subclass on temporary failure."""
        ...


class _DnsFailure(dns.exception.DNSException):
    """A temporary DNS failure, in the exception type dkimpy and authheaders expect."""

    def __init__(self, message: str) -> None:
        super().__init__(message)  # type: ignore[no-untyped-call]


def _records(resolver: Lookup, name: str, rtype: str) -> tuple[object, ...]:
    try:
        return resolver.lookup(name, rtype)
    except dns.exception.DNSException:
        raise
    except Exception as exc:  # the resolver's own temporary-failure type
        raise _DnsFailure(str(exc)) from exc


def spf_lookup_function(resolver: Lookup) -> Callable[..., Iterable[tuple[tuple[str, str], object]]]:
    """A lookup function in pyspf's DNSLookup format backed by resolver."""

    def lookup(name: str, qtype: str, strict: bool = True, timeout: float = 20) -> list[tuple[tuple[str, str], object]]:
        try:
            records = _records(resolver, name, qtype)
        except dns.exception.DNSException as exc:
            raise spf.TempError(f"DNS {exc}") from exc
        found: list[tuple[tuple[str, str], object]] = []
        for record in records:
            rtype = str(record.rtype)  # type: ignore[attr-defined]
            if rtype == qtype:
                found.append(((name, qtype), record.value))  # type: ignore[attr-defined]
        return found

    return lookup


# pyspf looks names up through its module-level DNSLookup function. It is replaced once
# by a dispatcher to the lookup function of the calling thread, so concurrent checks in
# worker threads each use their own resolver.
_THREAD = threading.local()


def _dispatch(name: str, qtype: str, strict: bool = True, timeout: float = 20) -> object:
    lookup = getattr(_THREAD, "lookup", None)
    if lookup is None:
        raise spf.TempError("DNS no resolver for this check")
    return lookup(name, qtype, strict, timeout)


@dataclass(frozen=True, slots=True)
class SpfResult:
    """An SPF result (RFC 7208 2.6) and pyspf's explanation."""

    result: str
    explanation: str


def check_spf(resolver: Lookup, ip: str, sender: str, helo: str) -> SpfResult:
    """Evaluate SPF for the MAIL FROM identity (the HELO identity for the null sender)."""
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return SpfResult("none", f"no valid client address ({ip!r})")
    mail_from = sender or f"postmaster@{helo}"
    spf.DNSLookup = _dispatch
    _THREAD.lookup = spf_lookup_function(resolver)
    try:
        query = spf.query(i=ip, s=mail_from, h=helo, receiver="", timeout=20, querytime=0)
        result, _code, explanation = query.check()
    finally:
        _THREAD.lookup = None
    return SpfResult(str(result), str(explanation))


def _dkim_dnsfunc(resolver: Lookup) -> Callable[..., bytes | str | None]:
    """One lookup function for dkimpy (bytes name, bytes TXT) and authheaders' DMARC (str name, str record)."""

    def lookup(name: bytes | str, timeout: float = 5) -> bytes | str | None:
        text_name = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        texts = [
            b"".join(record.value)  # type: ignore[attr-defined]
            for record in _records(resolver, text_name.rstrip("."), "TXT")
            if record.rtype == "TXT"  # type: ignore[attr-defined]
        ]
        if isinstance(name, bytes):
            return texts[0] if texts else None
        dmarc_records = [text for text in texts if text.startswith(b"v=DMARC1")]
        # RFC 7489 6.6.3: more than one DMARC record counts as none.
        return dmarc_records[0].decode("utf-8", "replace") if len(dmarc_records) == 1 else None

    return lookup


@dataclass(frozen=True, slots=True)
class DkimResult:
    """One DKIM signature's result."""

    result: str
    domain: str
    selector: str


_MAX_SIGNATURES = 5


def check_dkim(resolver: Lookup, raw: bytes) -> list[DkimResult]:
    """Verify each DKIM-Signature (the first five); [] when there is none."""
    dnsfunc = _dkim_dnsfunc(resolver)
    verifier = dkim.DKIM(raw)
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    results = []
    for index in range(min(count, _MAX_SIGNATURES)):
        try:
            outcome = "pass" if verifier.verify(idx=index, dnsfunc=dnsfunc) else "fail"
        except dns.exception.DNSException:
            outcome = "temperror"
        except dkim.DKIMException:
            outcome = "permerror" if not verifier.signature_fields else "fail"
        except Exception:  # dkimpy raises assorted errors on malformed signatures
            outcome = "permerror"
        fields = verifier.signature_fields or {}
        results.append(
            DkimResult(
                outcome,
                fields.get(b"d", b"").decode("ascii", "replace").lower(),
                fields.get(b"s", b"").decode("ascii", "replace"),
            )
        )
    return results


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """Everything the stage determined about one message."""

    spf: SpfResult | None
    dkim: tuple[DkimResult, ...]
    arc: str
    dmarc: str
    dmarc_policy: str
    from_domain: str
    header_value: str


def authenticate(
    resolver: Lookup, authserv_id: str, raw: bytes, ip: str, sender: str, helo: str, *, with_spf: bool = True
) -> AuthOutcome:
    """SPF, DKIM, ARC and DMARC for one message; blocking (DNS), run it in a thread."""
    spf_result = check_spf(resolver, ip, sender, helo) if with_spf else None
    dkim_results = check_dkim(resolver, raw)
    dnsfunc = _dkim_dnsfunc(resolver)
    arc = check_arc(raw, None, dnsfunc=dnsfunc)
    mail_from = sender or f"postmaster@{helo}"
    spf_res = SPFAuthenticationResult(
        result=spf_result.result if spf_result else "none", smtp_mailfrom=mail_from, smtp_helo=helo or None
    )
    passing = [result for result in dkim_results if result.result == "pass"]
    chosen = passing[0] if passing else (dkim_results[0] if dkim_results else None)
    dkim_for_dmarc = (
        DKIMAuthenticationResult(result=chosen.result, header_d=chosen.domain) if chosen is not None else None
    )
    try:
        dmarc = check_dmarc(raw, spf_res, dkim_for_dmarc, dnsfunc=dnsfunc)
        dmarc_result = str(dmarc.result or "none")
        dmarc_policy = str(getattr(dmarc, "policy", "") or "")
        from_domain = str(getattr(dmarc, "header_from", "") or "")
    except dns.exception.DNSException:
        dmarc, dmarc_result, dmarc_policy, from_domain = None, "temperror", "", ""
    spf_header = SPFAuthenticationResult(
        result=spf_result.result if spf_result else "none", smtp_mailfrom=mail_from, smtp_helo=helo or None
    )
    parts: list[object] = [spf_header] if spf_result else []
    parts.extend(
        DKIMAuthenticationResult(result=result.result, header_d=result.domain or None, header_s=result.selector or None)
        for result in dkim_results
    )
    if not dkim_results:
        parts.append(DKIMAuthenticationResult(result="none"))
    parts.append(arc)
    if dmarc is not None:
        parts.append(dmarc)
    header = AuthenticationResultsHeader(authserv_id=authserv_id, results=parts)
    return AuthOutcome(
        spf=spf_result,
        dkim=tuple(dkim_results),
        arc=str(arc.result or "none"),
        dmarc=dmarc_result,
        dmarc_policy=dmarc_policy.lower(),
        from_domain=from_domain.lower(),
        header_value=header.header_value(),
    )


def findings_of(outcome: AuthOutcome, protected_domains: frozenset[str]) -> list[Finding]:
    """Turn authentication results into findings."""
    found: list[Finding] = []
    spf_result = outcome.spf.result if outcome.spf else "none"
    if spf_result == "fail":
        found.append(Finding("auth.spf_fail", 2.0, "the sending server is not allowed to send for this sender (SPF)"))
    elif spf_result == "softfail":
        found.append(Finding("auth.spf_softfail", 1.0, "the sender's domain does not vouch for this server (SPF)"))
    elif spf_result == "permerror":
        found.append(Finding("auth.spf_permerror", 0.5, "the sender's SPF record is broken"))
    broken = [result for result in outcome.dkim if result.result in ("fail", "permerror")]
    if broken and not any(result.result == "pass" for result in outcome.dkim):
        found.append(
            Finding(
                "auth.dkim_fail",
                1.5,
                "a DKIM signature does not verify (the message was altered or forged)",
                tuple(result.domain for result in broken),
            )
        )
    if outcome.dmarc == "fail":
        evidence = (outcome.from_domain, f"p={outcome.dmarc_policy or 'none'}", f"arc={outcome.arc}")
        if outcome.arc == "pass":
            found.append(
                Finding("auth.dmarc_fail_arc", 1.0, "fails DMARC, but a forwarder vouches for it (ARC)", evidence)
            )
        elif outcome.dmarc_policy == "reject":
            found.append(
                Finding("auth.dmarc_reject", 5.0, "forged sender: fails DMARC and the domain says reject", evidence)
            )
        elif outcome.dmarc_policy == "quarantine":
            found.append(
                Finding(
                    "auth.dmarc_quarantine", 4.0, "likely forged sender: fails DMARC (domain says quarantine)", evidence
                )
            )
        else:
            found.append(
                Finding("auth.dmarc_fail", 2.0, "the sender's domain does not vouch for this message (DMARC)", evidence)
            )
    if outcome.from_domain in protected_domains and outcome.dmarc != "pass":
        aligned = any(result.result == "pass" and result.domain == outcome.from_domain for result in outcome.dkim)
        if not aligned:
            found.append(
                Finding(
                    "auth.internal_spoof",
                    3.0,
                    "claims to come from your own domain but arrived from outside unauthenticated",
                    (outcome.from_domain,),
                )
            )
    return found


class AuthStage:
    """SPF/DKIM/ARC/DMARC with Authentication-Results."""

    name = "auth"

    def __init__(
        self, resolver: Lookup, authserv_id: str, protected_domains: frozenset[str], executor: Executor | None = None
    ) -> None:
        self._resolver = resolver
        self._authserv_id = authserv_id
        self._protected = protected_domains
        self._executor = executor

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        if envelope.direction is Direction.OUTBOUND:
            return StageReport()
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(
            self._executor,
            lambda: authenticate(
                self._resolver,
                self._authserv_id,
                message.raw,
                envelope.client_address,
                envelope.sender,
                envelope.client_helo,
                with_spf=bool(envelope.client_address),
            ),
        )
        from_domain = message.sender.domain if message.sender else ""
        if not outcome.from_domain and from_domain:
            with contextlib.suppress(Exception):
                outcome = _with_from_domain(outcome, from_domain)
        return StageReport(
            findings=tuple(findings_of(outcome, self._protected)),
            headers=(("Authentication-Results", outcome.header_value),),
        )


def _with_from_domain(outcome: AuthOutcome, domain: str) -> AuthOutcome:
    return AuthOutcome(
        outcome.spf, outcome.dkim, outcome.arc, outcome.dmarc, outcome.dmarc_policy, domain, outcome.header_value
    )
