"""BEC wording stage: payment requests under pressure from free mail or newly seen domains.

CEO and supplier fraud often names nobody in the directory (so display-name
impersonation does not fire) and gives no bank details yet: "are you at your desk? I
need you to process a wire transfer today, keep this between us", from a webmail
address or a domain registered last week. This stage scores that wording on its own:
a payment request together with urgency or secrecy, in English, German, French,
Italian, Spanish or Japanese (the bank-change stage's languages) and Dutch and Polish,
when the sender is at a free-mail provider or at a domain the filter memory has not
seen mail from (and that is neither protected nor a configured partner).

The phrases are found with plain string scans over the case-folded text with its
whitespace collapsed (linear, no regular expression); a phrase must start and end at a
word boundary (except Japanese phrases, which have no spaces to bound them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from continuity.core.message_view import MessageView
from continuity.core.pipeline import Direction, Envelope, Finding, StageReport
from continuity.filters.domains import DomainFeed, registrable

MAX_SCANNED = 64 * 1024  # the wording is in the first lines; a longer text is cut before the scan

PAYMENT_PHRASES = (
    # English
    "wire transfer", "bank transfer", "process a payment", "process the payment", "make a payment",
    "urgent payment", "outstanding payment", "settle the invoice", "pay the invoice", "payment to",
    "transfer the funds", "transfer of funds", "send the funds", "gift card", "gift cards", "itunes card",
    # German
    "überweisung", "zahlung veranlassen", "zahlung anweisen", "rechnung begleichen", "geld überweisen",
    "gutscheinkarte", "zahlung durchführen",
    # French
    "virement", "effectuer un paiement", "régler la facture", "paiement urgent", "cartes cadeaux", "carte cadeau",
    # Italian
    "bonifico", "effettuare un pagamento", "saldare la fattura", "pagamento urgente", "carte regalo",
    # Spanish
    "transferencia bancaria", "realizar un pago", "realizar una transferencia", "pagar la factura", "pago urgente",
    "tarjetas de regalo",
    # Dutch, Polish
    "overboeking", "betaling uitvoeren", "factuur betalen", "przelew", "pilna płatność", "zapłacić fakturę",
    # Japanese
    "振込", "振り込み", "送金", "お支払い",
)  # fmt: skip

URGENCY_PHRASES = (
    "urgent", "urgently", "asap", "immediately", "right away", "today", "by end of day", "within the hour",
    "are you at your desk", "are you available",
    "dringend", "sofort", "heute noch", "umgehend", "eilt",
    "urgence", "immédiatement", "aujourd'hui même", "au plus vite",
    "urgente", "subito", "entro oggi", "immediatamente",
    "inmediatamente", "hoy mismo", "lo antes posible",
    "dringend", "vandaag nog", "onmiddellijk", "pilne", "natychmiast", "dzisiaj",
    "至急", "緊急", "本日中", "大至急",
)  # fmt: skip

SECRECY_PHRASES = (
    "confidential", "keep this between us", "between us", "do not discuss", "don't discuss", "do not tell",
    "don't tell", "do not call", "discreet", "discretion", "strictly private",
    "vertraulich", "unter uns", "diskret", "niemandem",
    "confidentiel", "confidentielle", "entre nous", "discrétion",
    "riservato", "riservata", "tra di noi", "massima discrezione",
    "confidencial", "entre nosotros", "discreción",
    "vertrouwelijk", "tussen ons", "poufne", "dyskrecja", "między nami",
    "内密", "極秘", "他言無用",
)  # fmt: skip


def flatten(text: str) -> str:
    """Case-folded text with every run of whitespace made one space."""
    return " ".join(text.casefold().split())


def _bounded(flat: str, start: int, end: int) -> bool:
    before = flat[start - 1] if start > 0 else " "
    after = flat[end] if end < len(flat) else " "
    return not before.isalnum() and not after.isalnum()


def find_phrase(flat: str, phrases: Iterable[str]) -> str | None:
    """The first of phrases (in their order) that occurs in flat at word boundaries, or None.

    Each phrase is found with ``str.find`` from the end of its last unbounded occurrence,
    so each phrase costs one pass over the text.
    """
    for phrase in phrases:
        spaced = not any("\u3000" <= ch <= "\u9fff" for ch in phrase)  # Japanese has no word spaces
        at = flat.find(phrase)
        while at >= 0:
            if not spaced or _bounded(flat, at, at + len(phrase)):
                return phrase
            at = flat.find(phrase, at + 1)
    return None


@dataclass(frozen=True, slots=True)
class PressureWording:
    """The phrases found: a payment request and the urgency and secrecy around it."""

    payment: str | None
    urgency: str | None
    secrecy: str | None


def pressure_wording(subject: str, text: str) -> PressureWording:
    """The payment, urgency and secrecy phrases of a message (urgency/secrecy only with a payment)."""
    flat = flatten(f"{subject}\n{text[:MAX_SCANNED]}")
    payment = find_phrase(flat, PAYMENT_PHRASES)
    if payment is None:
        return PressureWording(None, None, None)
    return PressureWording(payment, find_phrase(flat, URGENCY_PHRASES), find_phrase(flat, SECRECY_PHRASES))


class KnownDomains(Protocol):
    """What the stage needs from the filter memory."""

    async def known_domains(self) -> frozenset[str]:
        """Frequent correspondents' domains."""
        ...


def wording_finding(wording: PressureWording, freemail: bool, sender_domain: str) -> Finding | None:
    """The finding for a payment request under pressure from an unknown or free-mail sender (None without one)."""
    if wording.payment is None or (wording.urgency is None and wording.secrecy is None):
        return None
    score = 4.0 + (2.0 if wording.urgency else 0.0) + (2.0 if wording.secrecy else 0.0) + (1.0 if freemail else 0.0)
    origin = "a free webmail address" if freemail else "a domain not seen before"
    evidence = tuple(
        f"{kind}: {phrase}"
        for kind, phrase in (("payment", wording.payment), ("urgency", wording.urgency), ("secrecy", wording.secrecy))
        if phrase
    )
    return Finding(
        "bec_wording.payment_pressure",
        score,
        f"asks for a payment with urgency or secrecy, from {origin}",
        (*evidence, f"sender domain: {sender_domain}"),
    )


class BecWordingStage:
    """Payment requests under pressure from senders without history."""

    name = "bec_wording"

    def __init__(
        self,
        memory: KnownDomains,
        protected_domains: frozenset[str],
        freemail: DomainFeed,
        partner_domains: frozenset[str] = frozenset(),
    ) -> None:
        self._memory = memory
        self._trusted = frozenset(registrable(domain) for domain in protected_domains | partner_domains)
        self._freemail = freemail

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        sender = message.sender
        if envelope.direction is Direction.OUTBOUND or sender is None or not sender.domain:
            return StageReport()
        domain = sender.domain
        freemail = domain in self._freemail.domains
        if not freemail:
            organisation = registrable(domain)
            if organisation in self._trusted:
                return StageReport()
            known = await self._memory.known_domains()
            if organisation in known or domain in known:
                return StageReport()
        finding = wording_finding(pressure_wording(message.subject, message.text), freemail, domain)
        return StageReport(findings=(finding,) if finding is not None else ())
