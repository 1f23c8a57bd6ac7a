"""Reply-chain hijack stage: a reply into a known thread that does not fit the thread.

The pattern (Emotet, Qakbot): mail stolen from a compromised mailbox is answered by the
attacker, quoting the real conversation, with a link to a new site or a malicious
attachment, from another server or address. The thread memory (fed by every message
the appliance lets through, inbound and outbound) holds each message's participants,
link domains and its sender's fingerprint (signing domain, sending network, mail
program). A reply is flagged when it brings link domains the thread never used, brings
a risky attachment, comes from a known participant whose fingerprint changed, comes
from someone who was not in the thread, or drops the thread's other participants.

Without the thread's history (its earlier messages fell outside the standby's mailbox
window) the reply still shows the lure's shape (Qakbot, SquirrelWaffle): a link to an
archive or disk image, or to a document-download page, on a domain the thread, the
sender's organisation and the frequent correspondents never used; or a password for an
attachment. These findings stand on their own and weigh more in a reply to an existing
thread (In-Reply-To/References, or a reply prefix in the subject). They use no regular
expression: URLs are split with urllib, phrases found with string scans.
"""

from __future__ import annotations

import ipaddress
import re
import time
import urllib.parse
from typing import Protocol

from continuity.core.filter_records import Fingerprint, ThreadHistory, ThreadObservation
from continuity.core.message_view import LinkSource, MessageView
from continuity.core.pipeline import Direction, Envelope, Finding, StageReport
from continuity.filters.bec_wording import find_phrase, flatten
from continuity.filters.domains import registrable, url_host
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

    async def known_domains(self) -> frozenset[str]:
        """Frequent correspondents' domains."""
        ...


# Lure shapes, kept as data. Archive and disk-image names (a double extension such as
# "invoice.pdf.zip" ends in one of these too).
ARCHIVE_EXTENSIONS = (".zip", ".rar", ".7z", ".iso", ".img", ".vhd", ".vhdx", ".one", ".cab", ".ace", ".arj", ".r00")
# Hosts that serve files for anyone (a link there names no organisation), and path or
# query marks of document-download pages (including the upload folders of hacked
# WordPress sites that Qakbot and SquirrelWaffle served from).
FILE_SHARING_HOSTS = frozenset(
    {
        "wetransfer.com", "we.tl", "mediafire.com", "mega.nz", "sendspace.com", "dropboxusercontent.com",
        "1drv.ms", "onedrive.live.com", "drive.google.com", "docs.google.com", "storage.googleapis.com",
        "firebasestorage.googleapis.com", "transfernow.net", "filetransfer.io", "gofile.io", "anonfiles.com",
        "ipfs.io", "workupload.com", "4shared.com", "zippyshare.com", "sharefile.com", "smash.gg", "files.fm",
    }
)  # fmt: skip
DOWNLOAD_MARKS = (
    "download.php", "/dl/", "/file/d/", "/wp-content/uploads/", "/wp-includes/", "export=download",
    "/view-document", "/viewdoc", "/getfile", "/get-file", "/docs/invoice", "/sharedfile", "/shared-file",
)  # fmt: skip
# "Password" in the bank-change stage's languages and a few more; the value must follow.
PASSWORD_WORDS = (
    "password", "passwort", "kennwort", "pw", "pwd", "passcode", "mot de passe", "mdp", "contraseña", "clave",
    "parola d'ordine", "wachtwoord", "hasło", "haslo", "senha", "lösenord", "salasana", "パスワード", "暗証番号",
)  # fmt: skip
_PASSWORD_LEADS = (
    ":", "\uff1a", "=", "-", "\u2013", "is", "ist", "est", "es", "è", "lautet", "ist:", "est :", "is:", "は",
)  # fmt: skip
_ATTACHMENT_WORDS = (
    "attached", "attachment", "archive", "document", "file", "anhang", "angehängt", "datei", "dokument",
    "pièce jointe", "fichier", "allegato", "allegata", "adjunto", "archivo", "documento", "bijlage", "bestand",
    "załącznik", "plik", "添付", "ファイル",
)  # fmt: skip
_REPLY_PREFIXES = frozenset({"re", "aw", "r", "sv", "vs", "antw", "rif", "res", "odp", "wg", "tr", "rv", "fw", "fwd"})
_ARCHIVE_KINDS = frozenset({Kind.ZIP, Kind.RAR, Kind.SEVEN_ZIP, Kind.DISK_IMAGE, Kind.ONENOTE, Kind.GZIP, Kind.TAR})
_MAX_LINKS = 50


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


def replies_to_thread(message: MessageView) -> bool:
    """True for a reply: In-Reply-To or References, or a reply or forward prefix in the subject."""
    if message.is_reply:
        return True
    head, colon, _ = message.subject.lstrip().partition(":")
    return bool(colon) and head.strip().casefold() in _REPLY_PREFIXES


def _lure_kind(url: str) -> str | None:
    """'archive' for a link to an archive or disk image, 'document' for a download page, else None."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return None
    path = urllib.parse.unquote(parts.path).casefold().rstrip("/")
    query = urllib.parse.unquote(parts.query).casefold()
    if path.endswith(ARCHIVE_EXTENSIONS) or any(
        value.endswith(ARCHIVE_EXTENSIONS) for value in query.replace("&", "=").split("=")
    ):
        return "archive"
    host = (parts.hostname or "").casefold()
    if host in FILE_SHARING_HOSTS or registrable(host) in FILE_SHARING_HOSTS:
        return "document"
    where = f"{path}/?{query}"
    return "document" if any(mark in where for mark in DOWNLOAD_MARKS) else None


def lure_links(message: MessageView, familiar: frozenset[str]) -> dict[str, list[str]]:
    """Links to archives ('archive') and download pages ('document') on unfamiliar domains."""
    found: dict[str, list[str]] = {}
    for link in message.links[:_MAX_LINKS]:
        if link.source is LinkSource.IMAGE:
            continue
        host = url_host(link.url)
        if not host or registrable(host) in familiar or host in familiar:
            continue
        kind = _lure_kind(link.url)
        if kind is not None and link.url not in found.get(kind, []):
            found.setdefault(kind, []).append(link.url[:200])
    return found


def password_given(text: str) -> str | None:
    """'<word> <value>' when the text gives a password (a value of 3 to 32 characters with a digit), else None."""
    flat = flatten(text)
    for word in PASSWORD_WORDS:
        at = find_phrase_at(flat, word)
        while at >= 0:
            value = _value_after(flat[at + len(word) : at + len(word) + 48])
            if value is not None:
                return f"{word} {value}"
            at = find_phrase_at(flat, word, at + 1)
    return None


def find_phrase_at(flat: str, word: str, start: int = 0) -> int:
    """Where word occurs in flat at word boundaries from start (-1 when nowhere); Japanese words need none."""
    at = flat.find(word, start)
    while at >= 0:
        end = at + len(word)
        if not word.isascii() and not any(ch.isascii() for ch in word):
            return at
        if (at == 0 or not flat[at - 1].isalnum()) and (end == len(flat) or not flat[end].isalnum()):
            return at
        at = flat.find(word, at + 1)
    return -1


def _value_after(following: str) -> str | None:
    rest = following.lstrip(" (")
    for lead in _PASSWORD_LEADS:
        if rest.startswith(lead) and (not lead[-1].isalpha() or rest[len(lead) : len(lead) + 1] in (" ", "")):
            rest = rest[len(lead) :].lstrip(" :\uff1a")
            break
    tokens = rest.split(" ", 1)
    value = tokens[0].rstrip(".,;)!\"'」。")
    if 3 <= len(value) <= 32 and any(ch.isdigit() for ch in value):
        return value
    return None


def lure_findings(message: MessageView, familiar: frozenset[str], in_thread: bool) -> list[Finding]:
    """Archive links, download pages and attachment passwords, weighed more in a reply to a thread."""
    found: list[Finding] = []
    lures = lure_links(message, familiar)
    where = "in a reply to an earlier conversation" if in_thread else "in a message"
    if "archive" in lures:
        found.append(
            Finding(
                "hijack.archive_link",
                5.0 if in_thread else 3.0,
                f"links {where} to an archive or disk image on a site never seen from this correspondent",
                tuple(lures["archive"][:5]),
            )
        )
    if "document" in lures:
        found.append(
            Finding(
                "hijack.download_link",
                4.0 if in_thread else 2.0,
                f"links {where} to a file-download page on a site never seen from this correspondent",
                tuple(lures["document"][:5]),
            )
        )
    password = password_given(f"{message.subject}\n{message.text[:16_384]}")
    if password is not None:
        archives = [
            a.filename or a.content_type
            for a in message.attachments
            if {sniff(a.data), kind_by_name(a.filename)} & _ARCHIVE_KINDS
        ]
        carried = bool(lures) or bool(archives)
        if carried or find_phrase(flatten(message.text[:16_384]), _ATTACHMENT_WORDS) is not None:
            score = (4.0 if carried else 3.0) if in_thread else 2.0
            found.append(
                Finding(
                    "hijack.attachment_password",
                    score,
                    f"gives a password for an attachment or download {where}",
                    (password, *archives[:3]),
                )
            )
    return found


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
        if envelope.direction is Direction.OUTBOUND:
            return StageReport()
        history = await self._memory.thread(message.thread_ids) if message.is_reply else ThreadHistory()
        found = hijack_findings(envelope, message, history, self._internal)
        if message.links or message.text:
            familiar = await self._familiar(message, history)
            found.extend(lure_findings(message, familiar, replies_to_thread(message)))
        return StageReport(findings=tuple(found))

    async def _familiar(self, message: MessageView, history: ThreadHistory) -> frozenset[str]:
        """Domains a link may point to without being new: the thread's, the sender's, ours, frequent senders'."""
        own = {registrable(domain) for domain in self._internal}
        if message.sender is not None and message.sender.domain:
            own.add(registrable(message.sender.domain))
        if not any(link.source is not LinkSource.IMAGE for link in message.links):
            return frozenset(own)
        return frozenset(own) | history.link_domains | await self._memory.known_domains()

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
