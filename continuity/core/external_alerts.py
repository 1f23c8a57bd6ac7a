"""External alerts posted by a SIEM or Microsoft Defender to ``POST /api/v1/signals`` (pure: no I/O).

Two shapes are understood:

* the appliance's own: ``{"mailbox": "alice@example.com", "title": "...", "severity": "high",
  "source": "siem", "description": "...", "scope": "mailbox" | "primary", "evidence": ["..."]}``;
* a Microsoft Graph security alert (``alerts_v2``, as Defender XDR streams it): ``title``,
  ``severity``, ``serviceSource``, ``description`` and ``evidence`` entries of type
  ``mailboxEvidence`` (``primaryAddress``), ``userEvidence`` (``userAccount.userPrincipalName``)
  and ``deviceEvidence`` (``deviceDnsName``; naming the primary server makes the alert about
  the primary itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from continuity.core.addresses import normalize_address
from continuity.core.signals import Severity
from continuity.errors import InvalidInputError

_MAX_TEXT = 500
_MAX_EVIDENCE = 20
_SEVERITIES = {
    "informational": Severity.LOW,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


class AlertScope(StrEnum):
    """What an alert is about."""

    MAILBOX = "mailbox"
    PRIMARY = "primary"


@dataclass(frozen=True, slots=True)
class ExternalAlert:
    """An alert from outside, reduced to what the appliance acts on."""

    source: str
    title: str
    scope: AlertScope
    mailboxes: tuple[str, ...]
    severity: Severity | None
    description: str
    evidence: tuple[str, ...]
    reference: str


def _text(value: object, limit: int = _MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        raise InvalidInputError("text fields must be strings")
    cleaned = "".join(char if char.isprintable() else " " for char in str(value))
    return " ".join(cleaned.split())[:limit]


def _severity(value: object) -> Severity | None:
    text = _text(value).lower()
    if not text or text == "unknown":
        return None
    if text not in _SEVERITIES:
        raise InvalidInputError(f"severity '{text}' is not one of low, medium, high, critical")
    return _SEVERITIES[text]


def _mailbox(value: object) -> str:
    try:
        return normalize_address(_text(value, 320))
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None


def _evidence_lines(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (_text(value),)
    if isinstance(value, Sequence):
        return tuple(_text(item) if not isinstance(item, Mapping) else _describe(item) for item in value)[
            :_MAX_EVIDENCE
        ]
    if isinstance(value, Mapping):
        return tuple(f"{_text(key, 60)}: {_text(item)}" for key, item in value.items())[:_MAX_EVIDENCE]
    raise InvalidInputError("evidence must be a string, a list or an object")


def _describe(item: Mapping[str, object]) -> str:
    return "; ".join(
        f"{_text(key, 60)}={_text(value, 200)}" for key, value in item.items() if isinstance(value, str | int | float)
    )[:_MAX_TEXT]


def _graph_alert(payload: Mapping[str, object], primary_hosts: frozenset[str]) -> ExternalAlert:
    mailboxes: list[str] = []
    scope = AlertScope.MAILBOX
    evidence_items = payload.get("evidence") or []
    if not isinstance(evidence_items, Sequence) or isinstance(evidence_items, str):
        raise InvalidInputError("evidence must be a list")
    lines: list[str] = []
    for item in evidence_items:
        if not isinstance(item, Mapping):
            continue
        kind = _text(item.get("@odata.type")).rpartition(".")[2]
        if kind == "mailboxEvidence" and item.get("primaryAddress"):
            mailboxes.append(_mailbox(item.get("primaryAddress")))
        elif kind == "userEvidence" and isinstance(item.get("userAccount"), Mapping):
            account = item["userAccount"]
            assert isinstance(account, Mapping)
            principal = _text(account.get("userPrincipalName"))
            if "@" in principal:
                mailboxes.append(_mailbox(principal))
        elif kind == "deviceEvidence":
            host = _text(item.get("deviceDnsName")).lower().rstrip(".")
            if host and (host in primary_hosts or host.split(".")[0] in primary_hosts):
                scope = AlertScope.PRIMARY
        lines.append(_describe(item))
    if not mailboxes and scope is AlertScope.MAILBOX:
        raise InvalidInputError("the alert names no mailbox (mailboxEvidence or userEvidence) and not the primary")
    return ExternalAlert(
        source=_text(payload.get("serviceSource"), 80) or "microsoft-graph",
        title=_text(payload.get("title")) or "alert",
        scope=scope,
        mailboxes=tuple(dict.fromkeys(mailboxes)),
        severity=_severity(payload.get("severity")),
        description=_text(payload.get("description")),
        evidence=tuple(line for line in lines if line)[:_MAX_EVIDENCE],
        reference=_text(payload.get("id"), 200),
    )


def parse_alert(payload: object, primary_hosts: frozenset[str] = frozenset()) -> ExternalAlert:
    """The alert in a decoded JSON body; InvalidInputError (with a sentence) when it cannot be used."""
    if not isinstance(payload, Mapping):
        raise InvalidInputError("the body must be a JSON object")
    if "mailbox" not in payload and "scope" not in payload and "evidence" in payload and "title" in payload:
        return _graph_alert(payload, primary_hosts)
    scope_text = _text(payload.get("scope")).lower() or AlertScope.MAILBOX.value
    try:
        scope = AlertScope(scope_text)
    except ValueError:
        raise InvalidInputError(f"scope '{scope_text}' is not 'mailbox' or 'primary'") from None
    mailboxes: tuple[str, ...] = ()
    if payload.get("mailbox"):
        mailboxes = (_mailbox(payload.get("mailbox")),)
    elif scope is AlertScope.MAILBOX:
        raise InvalidInputError("'mailbox' is required unless scope is 'primary'")
    title = _text(payload.get("title"))
    if not title:
        raise InvalidInputError("'title' is required")
    return ExternalAlert(
        source=_text(payload.get("source"), 80) or "external",
        title=title,
        scope=scope,
        mailboxes=mailboxes,
        severity=_severity(payload.get("severity")),
        description=_text(payload.get("description")),
        evidence=_evidence_lines(payload.get("evidence")),
        reference=_text(payload.get("id"), 200),
    )
