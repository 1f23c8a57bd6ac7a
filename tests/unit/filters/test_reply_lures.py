"""Hijack-shaped replies without thread history, and payment pressure from unknown senders.

The lure findings (archive links, download pages, attachment passwords) fire on the
attack's shapes in several languages and stay silent on their legitimate look-alikes: a
link to the sender's own or a known partner's share, a password in an IT notice. The BEC
wording stage scores a payment request with urgency or secrecy only from free mail or
newly seen domains.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest

from continuity.core.message_view import MessageView, parse_message
from continuity.core.pipeline import Direction, Envelope
from continuity.filters.bec_wording import BecWordingStage, find_phrase, flatten, pressure_wording
from continuity.filters.domains import DomainFeed
from continuity.filters.hijack import lure_findings, password_given, replies_to_thread

OURS = frozenset({"example.com"})


def _message(
    body: str, subject: str = "Re: order 7781", sender: str = "office@vendor.test", reply: bool = True
) -> MessageView:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "bob@example.com"
    message["Subject"] = subject
    message["Message-ID"] = "<m1@vendor.test>"
    if reply:
        message["In-Reply-To"] = "<order7781@example.com>"
    message.set_content(body)
    return parse_message(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))


def _codes(view: MessageView, familiar: frozenset[str] = frozenset({"vendor.test", "example.com"})) -> dict[str, float]:
    return {f.code: f.score for f in lure_findings(view, familiar, replies_to_thread(view))}


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Re: order 7781", "Hello,\nsee https://hotel-garden.test/wp-content/uploads/Order_7781.zip\npassword: 4471"),
        ("AW: Lieferung", "Hallo,\nanbei: https://blumen-shop.test/docs/Lieferschein.pdf.zip\nPasswort: 3318\nMfG"),
        ("RE: devis", "Bonjour,\nle fichier : https://cave-a-vin.test/f/devis.rar\nmot de passe : 2207"),
        ("R: fattura", "Buongiorno,\necco il file https://pizzeria-roma.test/x/Fattura_88.7z\npassword 6610"),
        ("RE: albarán", "Hola,\nel archivo: https://clinica-sol.test/a/Albaran.iso\ncontraseña: 5519"),
        ("Antw: offerte", "Goedemiddag,\nhet bestand: https://bakkerij.test/u/Offerte.img\nwachtwoord: 8812"),
        ("Odp: zamówienie", "Dzień dobry,\nplik: https://pensjonat.test/p/zam.vhd\nhasło: 9034"),
        ("SV: faktura", "Hej,\nfilen: https://fiske.test/f/faktura.one\nlösenord: 7123"),
    ],
)
def test_archive_link_and_password_in_a_reply_quarantine(subject: str, body: str) -> None:
    codes = _codes(_message(body, subject, reply=False))  # the subject alone marks the reply
    assert codes["hijack.archive_link"] == 5.0
    assert codes["hijack.attachment_password"] == 4.0
    assert sum(codes.values()) >= 8.0


def test_download_page_and_password_in_a_reply() -> None:
    body = "Voici le document : https://jardins.test/download.php?doc=devis-2026\nmot de passe : 2207"
    codes = _codes(_message(body, "RE: devis"))
    assert codes == {"hijack.download_link": 4.0, "hijack.attachment_password": 4.0}
    shared = _codes(_message("The invoice: https://we.tl/t-AbCdEf12 , pw 8812"))
    assert shared == {"hijack.download_link": 4.0, "hijack.attachment_password": 4.0}


def test_weighs_less_outside_a_thread() -> None:
    body = "see https://hotel-garden.test/wp-content/uploads/Order_7781.zip password: 4471"
    codes = _codes(_message(body, "Order 7781", reply=False))
    assert codes == {"hijack.archive_link": 3.0, "hijack.attachment_password": 2.0}


def test_silent_on_familiar_shares_and_ordinary_links() -> None:
    # The sender's own share, a known partner's share (familiar), our own server.
    assert _codes(_message("catalogue: https://share.vendor.test/files/Katalog_2027.zip")) == {}
    partner = frozenset({"vendor.test", "example.com", "staffpartners.test"})
    assert _codes(_message("timesheets: https://files.staffpartners.test/share/oct.zip"), partner) == {}
    assert _codes(_message("see https://intranet.example.com/wp-content/uploads/plan.zip")) == {}
    # Ordinary pages, tarballs and images are no lure.
    assert _codes(_message("agenda https://news.test/2026/agenda.html and https://src.test/pkg-1.2.tar.gz")) == {}
    assert _codes(_message("download page: https://www.putty.test/download.html")) == {}


def test_password_needs_a_value_and_something_to_open() -> None:
    it_notice = "Your VPN account is ready. Your temporary password: Winter-2026\nPlease change it at first login."
    assert _codes(_message(it_notice, "Your new VPN account", sender="helpdesk@example.com", reply=False)) == {}
    assert password_given("the password for the attached zip follows in a separate mail") is None
    assert password_given("please reset your password today") is None
    assert password_given("Kennwort lautet 9981.") == "kennwort 9981"
    assert password_given("パスワード\uff1a5521") == "パスワード 5521"  # the full-width colon
    assert password_given("パスワード 5521") == "パスワード 5521"
    assert password_given("mot de passe : A7b2c9") == "mot de passe a7b2c9"
    # With an attachment word the password counts, less than when an archive comes with it.
    codes = _codes(_message("the document is protected, password: 4471"))
    assert codes == {"hijack.attachment_password": 3.0}


def test_reply_prefixes() -> None:
    for subject in ("Re: x", "AW: x", "RE: x", "R: x", "SV: x", "VS: x", "Antw: x", "rif: x"):
        assert replies_to_thread(_message("hi", subject, reply=False))
    for subject in ("Order 7781", "Reminder: x", "Report", "Re"):
        assert not replies_to_thread(_message("hi", subject, reply=False))


def test_phrases_need_word_boundaries() -> None:
    assert find_phrase(flatten("The  WIRE\n transfer"), ("wire transfer",)) == "wire transfer"
    assert find_phrase("prewire transfers", ("wire transfer",)) is None
    assert find_phrase("本日中に振込をお願いします", ("振込",)) == "振込"


class _Known:
    def __init__(self, domains: frozenset[str]) -> None:
        self.domains = domains

    async def known_domains(self) -> frozenset[str]:
        return self.domains


def _wording(body: str, sender: str, known: frozenset[str] = frozenset()) -> dict[str, float]:
    stage = BecWordingStage(
        _Known(known), OURS, DomainFeed([], builtin=frozenset({"gmail.com"})), frozenset({"partner.test"})
    )
    envelope = Envelope(sender, ("bob@example.com",), Direction.INBOUND, "198.51.100.7", "mail.test")
    report = asyncio.run(stage.inspect(envelope, _message(body, "Request", sender=sender, reply=False)))
    return {finding.code: finding.score for finding in report.findings}


@pytest.mark.parametrize(
    "body",
    [
        "Are you at your desk? I need you to process a wire transfer today. Keep this confidential.",
        "Ich brauche heute noch eine Überweisung, bitte streng vertraulich behandeln.",
        "Il faut effectuer un virement immédiatement, c'est confidentiel.",
        "Serve un bonifico entro oggi, la questione è riservata.",
        "Necesito una transferencia bancaria hoy mismo, es confidencial.",
        "Ik heb vandaag nog een overboeking nodig, dit is vertrouwelijk.",
        "Potrzebuję pilnie przelew dzisiaj, to poufne.",
        "至急、本日中に送金をお願いします。内密にお願いします。",
    ],
)
def test_payment_pressure_from_free_mail_quarantines(body: str) -> None:
    assert _wording(body, "ceo.office@gmail.com") == {"bec_wording.payment_pressure": 9.0}
    assert _wording(body, "ceo@brand-new-holding.test") == {"bec_wording.payment_pressure": 8.0}


def test_payment_pressure_needs_an_unknown_sender_and_pressure() -> None:
    urgent = "Please process the payment to our account today, it is urgent."
    assert _wording(urgent, "ap@brand-new.test") == {"bec_wording.payment_pressure": 6.0}
    assert _wording(urgent, "ap@supplier.test", known=frozenset({"supplier.test"})) == {}
    assert _wording(urgent, "ap@partner.test") == {}
    assert _wording(urgent, "colleague@example.com") == {}
    assert _wording("Your bank transfer was received, thank you.", "ap@brand-new.test") == {}
    assert _wording("This is urgent and confidential: lunch moved.", "x@gmail.com") == {}
    assert pressure_wording("", "gift cards, today").urgency == "today"
