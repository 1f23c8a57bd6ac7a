"""BEC and invoice-fraud stage: changed bank details, lookalike domains, impersonated names, freemail replies.

- Bank details: IBANs (mod-97 checked) and labelled account numbers that are new for the
  correspondent (the sender's organisation, or the address for freemail senders), with
  change-of-bank wording in English, German, French, Italian, Spanish or Japanese, and
  urgency or secrecy wording as an aggravating sign.
- Lookalike domains of the protected domains, configured partner domains and known
  correspondents (edit distance, IDN homoglyphs), in From and Reply-To.
- Display-name impersonation of internal users by outside addresses.
- Reply-To or Return-Path at a freemail provider while From is not.

- Bank details and change wording inside PDF, OOXML and ODF attachments count as in the
  body; the evidence names the attachment and page (attachment_text.py reads them, bounded).
- The near-duplicate invoice: a document nearly the same (MinHash estimate) as one the same
  correspondent sent recently, or one of the same thread, but with different payment
  details. The later of the two is flagged; the evidence names the earlier message.

The stage learns the accounts and document fingerprints of every message the pipeline
lets through.
"""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from importlib import resources
from typing import Protocol

from continuity.core.filter_records import AccountObservation, DocumentObservation
from continuity.core.message_view import MessageView
from continuity.core.pipeline import Direction, Envelope, Finding, StageReport
from continuity.filters.attachment_text import TextLimits, document_texts
from continuity.filters.bank_details import change_wording, find_account_numbers, find_ibans, urgency_wording
from continuity.filters.domains import DomainFeed, registrable
from continuity.filters.lookalike import LookalikeIndex
from continuity.filters.near_duplicate import similarity, sketch


class AccountMemory(Protocol):
    """What the stage needs from the filter memory."""

    async def accounts(self, correspondent: str) -> frozenset[str]:
        """Accounts the correspondent used before."""
        ...

    async def known_domains(self) -> frozenset[str]:
        """Frequent correspondents' domains."""
        ...

    def remember_accounts(self, observation: AccountObservation) -> None:
        """Buffer accounts a correspondent used."""
        ...

    async def documents(
        self, correspondent: str, message_ids: tuple[str, ...], since: float
    ) -> tuple[DocumentObservation, ...]:
        """Recent document fingerprints from the correspondent or in these messages."""
        ...

    def remember_document(self, observation: DocumentObservation) -> None:
        """Buffer a document's fingerprint."""
        ...


@dataclass(frozen=True, slots=True)
class DocumentSettings:
    """How the stage reads attachments and compares documents."""

    limits: TextLimits = field(default_factory=TextLimits)
    max_documents: int = 10
    similarity: float = 0.8
    window_days: int = 60


@dataclass(frozen=True, slots=True)
class Identities:
    """The protected organisation: its domains and its people's names and addresses."""

    domains: frozenset[str] = frozenset()
    names: Mapping[str, str] = field(default_factory=dict)  # normalised display name -> address
    addresses: frozenset[str] = frozenset()


def builtin_freemail() -> frozenset[str]:
    """The freemail provider domains shipped with the appliance."""
    text = resources.files("continuity.filters").joinpath("freemail.txt").read_text(encoding="utf-8")
    return frozenset(
        line.split("#", 1)[0].strip().lower() for line in text.splitlines() if line.split("#", 1)[0].strip()
    )


_NAME_NOISE = re.compile(r"[\"'`,.()\[\]<>|_-]+")
# A run of local-part characters, then an address's "@domain" when one follows the run. The
# run is taken whole (possessive) and matched once: "[\w.+-]+@..." alone was tried from every
# character of a long run without "@", scanning to its end each time (quadratic on "aaaa...").
# A match that starts inside a run cannot end differently than one from the run's start, so
# the addresses found are the same (tests/unit/test_linear_patterns_filters.py checks).
_RUN_OR_ADDRESS = re.compile(r"[\w.+-]++(@[\w-]+(?:\.[\w-]+)+)?")


def normalize_name(name: str) -> str:
    """A display name reduced for comparison: NFKC, case-folded, punctuation and extra spaces removed."""
    text = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(_NAME_NOISE.sub(" ", text).split())


def addresses_in_name(display: str) -> list[str]:
    """Addresses written inside a display name ("Jane Doe jane@example.com"), in order."""
    return [match.group(0) for match in _RUN_OR_ADDRESS.finditer(display) if match.group(1) is not None]


def _correspondent(address: str, freemail: frozenset[str]) -> str:
    domain = address.rpartition("@")[2].lower()
    return address.lower() if domain in freemail or not domain else registrable(domain)


# A document with fewer distinct word shingles is too short to compare by similarity.
_MIN_SHINGLES = 20


@dataclass(frozen=True, slots=True)
class _Document:
    filename: str
    sketch: tuple[int, ...]
    accounts: frozenset[str]


@dataclass(frozen=True, slots=True)
class _TextSigns:
    ibans: tuple[str, ...]
    accounts: tuple[str, ...]
    change: str | None
    urgency: str | None
    where: Mapping[str, str] = field(default_factory=dict)  # account -> "invoice.pdf p.2: IBAN ..."
    documents: tuple[_Document, ...] = ()
    unreadable: tuple[str, ...] = ()


def _text_signs(message: MessageView, documents: DocumentSettings | None = None) -> _TextSigns:
    text = f"{message.subject}\n{message.text}"
    ibans = find_ibans(text)
    accounts = find_account_numbers(text)
    change = change_wording(text)
    urgency_text = text
    where: dict[str, str] = {}
    read: list[_Document] = []
    unreadable: list[str] = []
    if documents is not None and message.attachments:
        for document in document_texts(message.attachments, documents.limits, documents.max_documents):
            if document.unreadable:
                unreadable.append(f"{document.filename}: unreadable ({document.unreadable})")
            found: list[str] = []
            for part in document.parts:
                for iban in find_ibans(part.text):
                    where.setdefault(iban, f"{part.location}: IBAN {iban}")
                    found.append(iban)
                for number in find_account_numbers(part.text):
                    where.setdefault(number, f"{part.location}: account {number}")
                    found.append(number)
                if change is None:
                    phrase = change_wording(part.text)
                    if phrase is not None:
                        change, urgency_text = f"{part.location}: {phrase}", f"{text}\n{part.text}"
            ibans.extend(a for a in dict.fromkeys(found) if a not in ibans and a[:2].isalpha())
            accounts.extend(a for a in dict.fromkeys(found) if a not in accounts and a.isdigit())
            fingerprint = sketch(document.text)
            if len(fingerprint) >= _MIN_SHINGLES:
                read.append(_Document(document.filename, fingerprint, frozenset(found)))
    return _TextSigns(
        tuple(ibans),
        tuple(accounts),
        change,
        urgency_wording(urgency_text) if change else None,  # only weighed together with a change request
        where,
        tuple(read),
        tuple(unreadable),
    )


class BecStage:
    """Invoice fraud and impersonation."""

    name = "bec"

    def __init__(
        self,
        memory: AccountMemory,
        identities: Callable[[], Identities],
        freemail: DomainFeed,
        partner_domains: frozenset[str] = frozenset(),
        executor: Executor | None = None,
        documents: DocumentSettings | None = None,
    ) -> None:
        self._memory = memory
        self._identities = identities
        self._freemail = freemail
        self._partners = partner_domains
        self._executor = executor
        self._documents = documents  # None: attachments are not read
        # The signs of the message judged last: learn() is called with the same message after inspect().
        self._last: tuple[MessageView, _TextSigns] | None = None
        # The index and the (identity-compared) sets it was built from.
        self._index: tuple[tuple[frozenset[str], ...], LookalikeIndex] | None = None

    async def _lookalikes(self, identities: Identities) -> LookalikeIndex:
        known = await self._memory.known_domains()
        freemail = self._freemail.domains
        sources = (identities.domains, known, freemail)
        if self._index is None or any(a is not b for a, b in zip(self._index[0], sources, strict=True)):
            targets = identities.domains | self._partners | known
            index = LookalikeIndex(target for target in targets if target not in freemail)
            self._index = (sources, index)
        return self._index[1]

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        if envelope.direction is Direction.OUTBOUND:
            return StageReport()
        identities = self._identities()
        freemail = self._freemail.domains
        found: list[Finding] = []
        sender = message.sender
        from_address = sender.address.lower() if sender else ""
        from_domain = sender.domain if sender else ""
        internal_sender = registrable(from_domain) in {registrable(d) for d in identities.domains}
        reads_documents = self._documents is not None and bool(message.attachments)
        if message.text or message.subject or reads_documents:
            if len(message.text) > 20_000 or reads_documents:
                signs = await asyncio.get_running_loop().run_in_executor(
                    self._executor, _text_signs, message, self._documents
                )
            else:
                signs = _text_signs(message)
            self._last = (message, signs)
            correspondent = _correspondent(from_address, freemail) if from_address else ""
            found.extend(await self._bank_findings(signs, correspondent))
            found.extend(await self._near_duplicates(signs, correspondent, message))
            if signs.unreadable:
                found.append(
                    Finding(
                        "bec.attachment_unreadable",
                        0.0,
                        "an attachment's text could not be read for bank details",
                        signs.unreadable[:3],
                    )
                )
        index = await self._lookalikes(identities)
        for label, address in [("From", sender)] + [("Reply-To", reply) for reply in message.reply_to]:
            if address is None or not address.domain:
                continue
            imitated = index.match(address.domain)
            if imitated is not None:
                own = imitated in {registrable(domain) for domain in identities.domains}
                found.append(
                    Finding(
                        "bec.lookalike_domain",
                        8.0 if own else 6.0,
                        f"the sender's address imitates {imitated}",
                        (f"{label}: {address.domain} resembles {imitated}",),
                    )
                )
                break
        if sender is not None and not internal_sender:
            name = normalize_name(sender.display)
            impersonated = identities.names.get(name) if name else None
            embedded = addresses_in_name(sender.display)
            if impersonated is None:
                impersonated = next((a.lower() for a in embedded if a.lower() in identities.addresses), None)
            if impersonated is not None:
                found.append(
                    Finding(
                        "bec.display_name_impersonation",
                        8.0 if from_domain in freemail else 5.0,
                        "uses the name of someone in your organisation but comes from outside",
                        (f"{sender.display} <{sender.address}> imitates {impersonated}",),
                    )
                )
            elif any(a.lower() != from_address for a in embedded):
                found.append(
                    Finding(
                        "bec.display_name_address",
                        2.0,
                        "shows a different address in the sender's name than it really comes from",
                        (f"{sender.display} <{sender.address}>",),
                    )
                )
        if from_domain and from_domain not in freemail:
            for reply in message.reply_to:
                if reply.domain in freemail and registrable(reply.domain) != registrable(from_domain):
                    found.append(
                        Finding(
                            "bec.reply_to_freemail",
                            3.0,
                            "replies would go to a free webmail address, not to the sender's company",
                            (f"Reply-To: {reply.address}",),
                        )
                    )
                    break
            envelope_domain = envelope.sender.rpartition("@")[2].lower()
            if envelope_domain in freemail and envelope_domain != from_domain:
                found.append(
                    Finding(
                        "bec.return_path_freemail",
                        2.0,
                        "was sent through a free webmail account while claiming a company sender",
                        (f"Return-Path: {envelope.sender}",),
                    )
                )
        return StageReport(findings=tuple(found))

    async def _near_duplicates(self, signs: _TextSigns, correspondent: str, message: MessageView) -> list[Finding]:
        settings = self._documents
        if settings is None or not correspondent or not any(document.accounts for document in signs.documents):
            return []
        thread = (*message.in_reply_to, *message.references)
        since = time.time() - settings.window_days * 86400
        earlier = await self._memory.documents(correspondent, thread, since)
        for document in signs.documents:
            if not document.accounts:
                continue
            for record in earlier:
                if record.message_id == message.message_id or not record.accounts:
                    continue
                if record.accounts == document.accounts:
                    continue
                alike = similarity(document.sketch, record.sketch)
                if alike < settings.similarity:
                    continue
                seen = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.seen_at))
                return [
                    Finding(
                        "bec.invoice_near_duplicate",
                        8.0,
                        "carries a document nearly identical to one received before, but with other payment details",
                        (
                            f"{document.filename} resembles {record.filename} of {record.message_id or 'a message'}"
                            f" seen {seen} (similarity {alike:.2f})",
                            "payment details now: " + ", ".join(sorted(document.accounts)[:3]),
                            "before: " + ", ".join(sorted(record.accounts)[:3]),
                        ),
                    )
                ]
        return []

    async def _bank_findings(self, signs: _TextSigns, correspondent: str) -> list[Finding]:
        found: list[Finding] = []
        accounts = (*signs.ibans, *signs.accounts)
        known = await self._memory.accounts(correspondent) if correspondent and accounts else frozenset()
        new = tuple(signs.where.get(account, account) for account in accounts if account not in known)
        if signs.change:
            found.append(Finding("bec.bank_change", 3.0, "asks to change bank details", (signs.change,)))
            if new and known:
                found.append(
                    Finding(
                        "bec.account_changed",
                        4.0,
                        "names a bank account this sender has not used before",
                        (*new[:3], f"known: {len(known)} account(s)"),
                    )
                )
            elif new:
                found.append(Finding("bec.new_bank_account", 3.0, "gives bank account details to pay to", new[:3]))
            if signs.urgency:
                found.append(Finding("bec.urgency", 2.0, "presses for urgency or secrecy", (signs.urgency,)))
        elif new and known:
            found.append(
                Finding("bec.account_changed", 2.0, "names a bank account this sender has not used before", new[:3])
            )
        return found

    def learn(self, envelope: Envelope, message: MessageView) -> None:
        """Remember the accounts and document fingerprints of a message the pipeline let through."""
        if envelope.direction is not Direction.INBOUND or message.sender is None:
            return
        last = self._last
        signs = last[1] if last is not None and last[0] is message else _text_signs(message, self._documents)
        self._last = None
        accounts = frozenset((*signs.ibans, *signs.accounts))
        correspondent = _correspondent(message.sender.address, self._freemail.domains)
        now = time.time()
        if accounts:
            self._memory.remember_accounts(AccountObservation(correspondent, accounts, now))
        for document in signs.documents:
            if not document.accounts:  # without payment details it can never be the other half of a pair
                continue
            self._memory.remember_document(
                DocumentObservation(
                    correspondent, message.message_id, document.filename, document.sketch, document.accounts, now
                )
            )
