"""Text of PDF, DOCX, XLSX and ODT attachments, and the bounds that hold under hostile documents."""

from __future__ import annotations

import time
import zlib

from continuity.core.message_view import Attachment
from continuity.filters.attachment_text import TextLimits, document_texts, extract_text
from tests.support.documents import make_docx, make_odt, make_pdf, make_xlsx, zip_document

IBAN = "DE89 3704 0044 0532 0130 00"


def _read(name: str, data: bytes, limits: TextLimits | None = None) -> tuple[list[tuple[str, str]], str, bool]:
    document = extract_text(Attachment(name, "application/octet-stream", data), limits or TextLimits())
    assert document is not None
    return [(part.location, part.text) for part in document.parts], document.unreadable, document.truncated


def test_pdf_pages_are_read_with_their_numbers() -> None:
    parts, unreadable, truncated = _read("invoice.pdf", make_pdf([["Invoice 42"], ["Pay to", f"IBAN {IBAN}"]]))
    assert not unreadable and not truncated
    assert [location for location, _ in parts] == ["invoice.pdf p.1", "invoice.pdf p.2"]
    assert IBAN in parts[1][1] and "Invoice 42" in parts[0][1]


def test_compressed_pdf_streams_are_decoded() -> None:
    parts, unreadable, _ = _read("c.pdf", make_pdf([["Kontonummer 12345678 (Sparkasse)"]], compress=True))
    assert not unreadable
    assert parts == [("c.pdf p.1", "Kontonummer 12345678 (Sparkasse)\n")]


def test_word_spreadsheet_and_odf_documents() -> None:
    docx, _, _ = _read("terms.docx", make_docx(["Dear customer,", f"our IBAN is {IBAN}"]))
    assert docx == [("terms.docx", f"Dear customer,\nour IBAN is {IBAN}")]
    xlsx, _, _ = _read("prices.xlsx", make_xlsx(["Account number"], [["12345678", "9.50"]]))
    assert xlsx == [("prices.xlsx", "Account number"), ("prices.xlsx sheet1", "12345678 9.50")]
    odt, _, _ = _read("letter.odt", make_odt(["Hello", "numéro de compte 9876543"]))
    assert odt == [("letter.odt", "Hello\nnuméro de compte 9876543")]


def test_other_attachments_are_not_documents() -> None:
    attachments = (
        Attachment("notes.txt", "text/plain", b"IBAN " + IBAN.encode()),
        Attachment("photos.zip", "application/zip", zip_document({"a.jpg": b"\xff\xd8"})),
        Attachment("i.pdf", "application/pdf", make_pdf([["one"]])),
    )
    assert [document.filename for document in document_texts(attachments, TextLimits())] == ["i.pdf"]


def test_thousands_of_pages_stop_at_the_page_bound_quickly() -> None:
    data = make_pdf([[f"page {number}"] for number in range(5000)])
    started = time.monotonic()
    parts, unreadable, truncated = _read("long.pdf", data, TextLimits(max_pages=20))
    assert time.monotonic() - started < 2.0
    assert not unreadable and truncated
    assert len(parts) == 20 and parts[-1][0] == "long.pdf p.20"


def test_characters_kept_are_bounded() -> None:
    data = make_pdf([["word " * 100] for _ in range(30)])
    parts, _, truncated = _read("wordy.pdf", data, TextLimits(max_chars=1500))
    assert truncated
    assert sum(len(text) for _, text in parts) == 1500


def test_a_decompression_bomb_stream_is_refused_within_its_bound() -> None:
    bomb = b" " * (64 * 1024 * 1024)  # a 64 MiB content stream that compresses to 64 KiB
    data = make_pdf([["hello"]], compress=True, content_prefix=bomb)
    assert len(data) < 200_000
    started = time.monotonic()
    parts, unreadable, _ = _read("bomb.pdf", data, TextLimits(max_member_bytes=1024 * 1024))
    assert time.monotonic() - started < 2.0
    assert unreadable and parts == []


def test_deep_object_nesting_is_unreadable_not_a_crash() -> None:
    deep = "/Deep " + "[" * 100_000 + "]" * 100_000 + " "
    started = time.monotonic()
    parts, unreadable, _ = _read("deep.pdf", make_pdf([["hello"]], page_extra=deep))
    assert time.monotonic() - started < 5.0
    assert unreadable.startswith("malformed") and parts == []


def test_a_zip_member_bomb_is_refused_by_size_and_by_ratio() -> None:
    bomb = zip_document({"xl/sharedStrings.xml": "<sst>" + " " * (30 * 1024 * 1024) + "</sst>"})
    assert len(bomb) < 100_000
    _, by_size, _ = _read("b.xlsx", bomb, TextLimits(max_member_bytes=20 * 1024 * 1024))
    assert "unpacks to more than" in by_size
    _, by_ratio, _ = _read("b.xlsx", bomb, TextLimits(max_member_bytes=64 * 1024 * 1024, max_ratio=200))
    assert "compressed more than 200:1" in by_ratio


def test_xml_entity_expansion_is_refused() -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><w:document xmlns:w="urn:w"><w:p><w:t>&c;</w:t></w:p>'
        "</w:document>"
    )
    _, unreadable, _ = _read("laughs.docx", zip_document({"word/document.xml": laughs}))
    assert "malformed" in unreadable and "Entities" in unreadable


def test_an_oversized_attachment_is_not_read() -> None:
    _, unreadable, _ = _read("big.pdf", make_pdf([["x" * 3000]]), TextLimits(max_bytes=2048))
    assert unreadable == "larger than 2048 bytes"


def test_a_broken_pdf_is_reported_unreadable() -> None:
    _, unreadable, _ = _read("broken.pdf", b"%PDF-1.4\n" + zlib.compress(b"garbage") * 10)
    assert unreadable


def test_a_page_of_endless_text_operations_is_stopped_by_the_token_bound() -> None:
    flood = b"BT /F1 11 Tf " + b"(ab) Tj " * 600_000 + b"ET "  # 7 KB compressed; 60 s of pypdf unbounded
    data = make_pdf([["first page"], ["flooded"]], compress=True, content_prefix=flood)
    started = time.monotonic()
    parts, unreadable, _ = _read("flood.pdf", data)
    assert time.monotonic() - started < 3.0
    assert "bound of the PDF reader" in unreadable and parts == []


def test_the_time_budget_is_shared_by_a_messages_documents() -> None:
    slow = make_pdf([["(ab) Tj " * 3000] for _ in range(20)], compress=True)
    attachments = tuple(Attachment(f"d{n}.pdf", "application/pdf", slow) for n in range(10))
    started = time.monotonic()
    documents = document_texts(attachments, TextLimits(seconds=0.5))
    assert time.monotonic() - started < 1.5
    assert len(documents) == 10 and "ran out" in documents[-1].unreadable
