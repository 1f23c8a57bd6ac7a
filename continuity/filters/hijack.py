"""Reply-chain hijack stage: a reply into a known thread that does not fit the thread.

The pattern (Emotet, Qakbot): mail stolen from a compromised mailbox is answered by the
attacker, quoting the real conversation, with a link to a new site or a malicious
attachment, from another server or address. The thread memory (fed by every message
the appliance lets through, inbound and outbound) holds each message's participants,
link domains and its sender's fingerprint (signing domain, sending network, mail
program). A reply is flagged when it brings link domains the thread never used, brings
a risky attachment, comes from a known participant whose fingerprint changed, comes
from someone who was not in the thread, or drops the thread's other participants.
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Protocol

from continuity.core.filter_records import Fingerprint, ThreadHistory, ThreadObservation
from continuity.core.message_view import MessageView
from continuity.core.pipeline import Direction, Envelope, Finding, StageReport
from continuity.filters.domains import registrable
from continuity.filters.filetypes import Kind, kind_by_name, sniff
from continuity.filters.urls import link_domains

_DKIM_DOMAIN = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.IGNORECASE)
_RISKY = frozenset(
    {
        Kind.EXECUTABLE,
        Kind.SCRIPT,
        Kind.SHORTCUT,
        Kind.DISK_IMAGE,
        Kind.ONENOTE,
        Kind.OFFICE_MACRO,
        Kind.HTML,
        Kind.ZIP,
        Kind.GZIP,
        Kind.RAR,
        Kind.SEVEN_ZIP,
        Kind.TAR,
    }
)


class ThreadMemory(Protocol):
    """What the stage needs from the filter memory."""

    async def thread(self, message_ids: tuple[str, ...]) -> ThreadHistory:
        """What is known about these messages."""
        ...

    def remember_thread(self, observation: ThreadObservation) -> None:
        """Buffer one message."""
        ...


def network_of(address: str) -> str:
    """The sending network: the /24 of an IPv4 address, the /48 of an IPv6 address ('' when unknown)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def fingerprint_of(envelope: Envelope, message: MessageView) -> Fingerprint:
    """The sender fingerprint of a message (the claimed DKIM domain, the sending network, the mailer)."""
    signature = message.header("DKIM-Signature") or ""
    match = _DKIM_DOMAIN.search(signature)
    dkim_domain = match.group(1).lower().rstrip(".") if match else ""
    return Fingerprint(dkim_domain, network_of(envelope.client_address), message.mailer.split("/")[0].strip().lower())


def _fingerprint_change(current: Fingerprint, known: frozenset[Fingerprint]) -> list[str]:
    """What differs from every fingerprint seen before ([] when one of them matches)."""
    if not known or current in known:
        return []
    changes = []
    signing = {fingerprint.dkim_domain for fingerprint in known if fingerprint.dkim_domain}
    if signing and current.dkim_domain not in signing:
        changes.append(f"signed by {current.dkim_domain or 'nobody'} instead of {', '.join(sorted(signing))}")
    networks = {fingerprint.network for fingerprint in known if fingerprint.network}
    mailers = {fingerprint.mailer for fingerprint in known if fingerprint.mailer}
    network_changed = bool(networks) and bool(current.network) and current.network not in networks
    mailer_changed = bool(mailers) and current.mailer not in mailers
    if network_changed and mailer_changed:
        changes.append(f"sent from {current.network} with '{current.mailer or 'no mailer'}'")
    return changes


def _risky_attachments(message: MessageView) -> list[str]:
    risky = []
    for attachment in message.attachments:
        kinds = {sniff(attachment.data), kind_by_name(attachment.filename)}
        if kinds & _RISKY:
            risky.append(attachment.filename or attachment.content_type)
    return risky


def hijack_findings(
    envelope: Envelope, message: MessageView, history: ThreadHistory, internal: frozenset[str]
) -> list[Finding]:
    """Findings for a reply, given what is known about its thread."""
    if not history.known or message.sender is None:
        return []
    found: list[Finding] = []
    sender = message.sender.address.lower()
    own = {registrable(message.sender.domain)} | {registrable(domain) for domain in internal}
    new_domains = sorted(link_domains(message) - history.link_domains - own)
    if new_domains:
        found.append(
            Finding(
                "hijack.new_link_domain",
                4.0,
                "replies to an earlier conversation with a link to a site that conversation never used",
                tuple(new_domains[:5]),
            )
        )
    risky = _risky_attachments(message)
    if risky:
        found.append(
            Finding(
                "hijack.risky_attachment",
                3.0,
                "replies to an earlier conversation with a risky attachment",
                tuple(risky[:5]),
            )
        )
    if sender in history.fingerprints:
        changes = _fingerprint_change(fingerprint_of(envelope, message), history.fingerprints[sender])
        if changes:
            found.append(
                Finding(
                    "hijack.fingerprint_changed",
                    4.0,
                    "comes from a conversation partner, but not from the server or program they used before",
                    tuple(changes),
                )
            )
    elif sender not in history.participants:
        found.append(
            Finding(
                "hijack.outsider",
                3.0,
                "replies to a conversation its sender was not part of",
                (sender,),
            )
        )
    others = history.participants - {sender} - set(envelope.recipients)
    others = frozenset(person for person in others if person.rpartition("@")[2] not in internal)
    if len(others) >= 2 and not others & message.participants:
        found.append(
            Finding(
                "hijack.dropped_participants",
                2.0,
                "leaves out everyone else who took part in the conversation",
                tuple(sorted(others)[:5]),
            )
        )
    return found


class HijackStage:
    """Reply-chain hijack detection."""

    name = "hijack"

    def __init__(self, memory: ThreadMemory, internal_domains: frozenset[str]) -> None:
        self._memory = memory
        self._internal = internal_domains

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        if envelope.direction is Direction.OUTBOUND or not message.is_reply:
            return StageReport()
        history = await self._memory.thread(message.thread_ids)
        return StageReport(findings=tuple(hijack_findings(envelope, message, history, self._internal)))

    def learn(self, envelope: Envelope, message: MessageView) -> None:
        """Remember a message the pipeline let through (inbound or outbound)."""
        if not message.message_id or message.sender is None or envelope.direction is Direction.REPLAY:
            return
        self._memory.remember_thread(
            ThreadObservation(
                message_id=message.message_id,
                sender=message.sender.address.lower(),
                participants=message.participants,
                link_domains=link_domains(message),
                fingerprint=fingerprint_of(envelope, message),
                seen_at=time.time(),
                direction=envelope.direction,
            )
        )
