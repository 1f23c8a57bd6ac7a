"""Filter stages on crafted input: attachments and archives, bank details, lookalikes, links, hijacks."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage

import pytest

from continuity.core.filter_records import Fingerprint, ThreadHistory
from continuity.core.message_view import parse_message
from continuity.core.pipeline import Envelope
from continuity.filters.attachments import ArchiveLimits, scan_attachments
from continuity.filters.bank_details import change_wording, find_account_numbers, find_ibans, iban_is_valid
from continuity.filters.domains import DomainFeed
from continuity.filters.hijack import hijack_findings
from continuity.filters.lookalike import LookalikeIndex
from continuity.filters.urls import scan_links


def _with_attachment(name: str, data: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = "a@outside.test"
    message["Subject"] = "file"
    message.set_content("see attached")
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _zip(entries: dict[str, bytes], encrypted: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    content = bytearray(buffer.getvalue())
    if encrypted:
        # zipfile cannot encrypt; set the "encrypted" flag bit in every local and central header.
        for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            start = content.find(signature)
            while start >= 0:
                content[start + flags_at] |= 0x1
                start = content.find(signature, start + 4)
    return bytes(content)


def _codes(name: str, data: bytes, limits: ArchiveLimits | None = None) -> set[str]:
    findings = scan_attachments(parse_message(_with_attachment(name, data)), limits or ArchiveLimits())
    return {finding.code for finding in findings}


def test_attachments_by_content_and_name() -> None:
    assert "attachments.executable" in _codes("invoice.pdf", b"MZ\x90\x00" + bytes(64))
    assert {"attachments.executable", "attachments.double_extension"} <= _codes("invoice.pdf.exe", b"MZ" + bytes(64))
    assert "attachments.html" in _codes("document.txt", b"<!DOCTYPE html><html><form></form></html>")
    assert _codes("notes.txt", b"just some text\r\n") == set()
    assert "attachments.disk_image" in _codes("a.bin", bytes(0x8001) + b"CD001" + bytes(16))
    assert "attachments.macro" in _codes(
        "report.docx", _zip({"[Content_Types].xml": b"<x/>", "word/vbaProject.bin": b"x"})
    )
    assert _codes("report.docx", _zip({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<x/>"})) == set()


def test_archives_are_opened_with_bounds() -> None:
    inner = _zip({"payload.exe": b"MZ" + bytes(100)})
    assert {"attachments.executable", "attachments.nested_archive"} <= _codes("outer.zip", _zip({"inner.zip": inner}))
    assert "attachments.encrypted_archive" in _codes("secret.zip", _zip({"a.js": b"x"}, encrypted=True))
    assert "attachments.executable" in _codes("secret.zip", _zip({"a.js": b"x"}, encrypted=True))
    bomb = _zip({"zeros.bin": bytes(20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    assert "attachments.archive_bomb" in _codes("bomb.zip", bomb, ArchiveLimits(max_bytes=5 * 1024 * 1024))
    assert "attachments.archive_bomb" in _codes("ratio.zip", bomb, ArchiveLimits(max_ratio=50))
    many = _zip({f"f{i}.txt": b"x" for i in range(50)})
    assert "attachments.archive_bomb" in _codes("many.zip", many, ArchiveLimits(max_entries=20))
    assert "attachments.unscannable_archive" in _codes("a.rar", b"Rar!\x1a\x07\x00" + bytes(50))


def test_iban_validation() -> None:
    assert iban_is_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_is_valid("DE89 3704 0044 0532 0130 01")
    assert not iban_is_valid("DE89 3704 0044 0532 0130")  # too short for DE
    assert find_ibans("pay to GB82 WEST 1234 5698 7654 32 today") == ["GB82WEST12345698765432"]
    assert find_account_numbers("Account number: 1234 5678 90") == ["1234567890"]
    assert find_account_numbers("口座番号 7654321") == ["7654321"]


@pytest.mark.parametrize(
    "text",
    [
        "Please note our new bank details below.",
        "Bitte beachten Sie unsere neue Bankverbindung.",
        "Suite à un changement de coordonnées bancaires, voici notre nouveau RIB.",
        "Vi comunichiamo le nuove coordinate bancarie.",
        "Hemos cambiado de banco; estos son los nuevos datos bancarios.",
        "振込先口座の変更についてのお知らせ",
    ],
)
def test_change_wording_in_six_languages(text: str) -> None:
    assert change_wording(text) is not None


def test_no_change_wording_in_ordinary_mail() -> None:
    assert change_wording("Thanks for the payment of invoice 12, the account manager will call you.") is None


def test_lookalikes() -> None:
    index = LookalikeIndex(["example.com", "nordlicht-supplies.de"])
    assert index.match("examp1e.com") == "example.com"
    assert index.match("xn--exmple-cua.com") == "example.com"
    assert index.match("nordlicht-suppl1es.de") == "nordlicht-supplies.de"
    assert index.match("example.com") is None
    assert index.match("sub.example.com") is None
    assert index.match("unrelated.org") is None


def test_hidden_and_mismatched_links() -> None:
    message = EmailMessage()
    message["From"] = "a@outside.test"
    message.set_content("text")
    message.add_alternative(
        '<a href="http://evil.test/x" style="display:none"></a>'
        '<a href="http://tracker.evil.test/">https://www.mybank.test/login</a>',
        subtype="html",
    )
    view = parse_message(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
    found = {f.code: f for f in scan_links(view.links, DomainFeed([], builtin=["evil.test"]))}
    assert found["urls.blocklisted"].evidence == ("evil.test",)
    assert found["urls.mismatched_text"].evidence == ("mybank.test -> tracker.evil.test",)


def test_hijack_rules() -> None:
    reply = (
        b"From: Marco <marco@partner.test>\r\nTo: alice@example.com\r\nSubject: Re: x\r\n"
        b"Message-ID: <r@partner.test>\r\nIn-Reply-To: <o@example.com>\r\nX-Mailer: PHPMailer\r\n\r\n"
        b"see http://new-site.test/doc\r\n"
    )
    view = parse_message(reply)
    history = ThreadHistory(
        messages=2,
        participants=frozenset(
            {"alice@example.com", "marco@partner.test", "giulia@partner.test", "paolo@partner.test"}
        ),
        link_domains=frozenset({"partner.test"}),
        senders=frozenset({"marco@partner.test"}),
        fingerprints={"marco@partner.test": frozenset({Fingerprint("partner.test", "198.51.100.0/24", "outlook")})},
    )
    envelope = Envelope("marco@partner.test", ("alice@example.com",), client_address="203.0.113.9")
    codes = {f.code for f in hijack_findings(envelope, view, history, frozenset({"example.com"}))}
    assert codes == {"hijack.new_link_domain", "hijack.fingerprint_changed", "hijack.dropped_participants"}
    assert hijack_findings(envelope, view, ThreadHistory(), frozenset()) == []
