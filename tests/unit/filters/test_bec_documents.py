"""The BEC stage reads bank details in attachments and catches the near-duplicate invoice (real SQLite memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from continuity.core.message_view import parse_message
from continuity.core.pipeline import Direction, Envelope, Finding
from continuity.filters.bec import BecStage, DocumentSettings, Identities
from continuity.filters.domains import DomainFeed
from continuity.filters.near_duplicate import similarity, sketch
from continuity.services.filter_memory import FilterMemory
from continuity.store.sqlite import open_sqlite_store
from tests.support.documents import make_docx, make_pdf

GENUINE = "DE89 3704 0044 0532 0130 00"
FRAUD = "GB82 WEST 1234 5698 7654 32"
ENVELOPE = Envelope("billing@supplier.example", ("alice@example.com",), Direction.INBOUND, "192.0.2.7")


def invoice_lines(iban: str, number: str = "2026-0412") -> list[list[str]]:
    """A two-page invoice whose second page carries the payment details."""
    return [
        [
            f"Supplier Example GmbH - Invoice {number}",
            "Customer: Example Corp, 1 Harbour Road, Springfield",
            "Item 1: Consulting services for the migration project, 12 days at 950.00 EUR",
            "Item 2: Travel expenses as agreed in the framework contract of March",
            "Item 3: Licence renewal for the monitoring platform, annual subscription",
            "Subtotal 13,250.00 EUR, VAT 19 percent 2,517.50 EUR, total 15,767.50 EUR",
        ],
        [
            "Terms of payment: thirty days net from the date of this invoice",
            "Please quote the invoice number with your payment so that we can match it",
            f"Bank: Example Bank, IBAN {iban}",
            "Thank you for your business and kind regards from the accounts team",
        ],
    ]


def mail(message_id: str, attachment: bytes, filename: str = "invoice.pdf", body: str = "See attached.") -> bytes:
    """An inbound message from the supplier with one attachment."""
    message = EmailMessage()
    message["From"] = "Supplier <billing@supplier.example>"
    message["To"] = "alice@example.com"
    message["Subject"] = "Invoice"
    message["Message-ID"] = message_id
    message.set_content(body)
    message.add_attachment(attachment, maintype="application", subtype="pdf", filename=filename)
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[BecStage]:
    """The BEC stage reading attachments, on a real filter memory."""
    store = await open_sqlite_store(tmp_path / "db.sqlite", tmp_path / "blobs")
    memory = FilterMemory(store.filter_memory)
    try:
        yield BecStage(memory, Identities, DomainFeed([]), documents=DocumentSettings())
    finally:
        await store.close()


async def _judge(stage: BecStage, raw: bytes, learn: bool = True) -> tuple[Finding, ...]:
    view = parse_message(raw)
    report = await stage.inspect(ENVELOPE, view)
    if learn:
        stage.learn(ENVELOPE, view)
    return report.findings


def _codes(findings: tuple[Finding, ...]) -> set[str]:
    return {finding.code for finding in findings}


async def test_an_iban_in_a_pdf_counts_with_file_and_page(stage: BecStage) -> None:
    pages = [["Invoice 7"], ["We have changed our bank.", f"Please use our new bank details: IBAN {FRAUD}"]]
    findings = await _judge(stage, mail("<a@supplier.example>", make_pdf(pages)))
    assert {"bec.bank_change", "bec.new_bank_account"} <= _codes(findings)
    new = next(finding for finding in findings if finding.code == "bec.new_bank_account")
    assert new.evidence == ("invoice.pdf p.2: IBAN GB82WEST12345698765432",)
    change = next(finding for finding in findings if finding.code == "bec.bank_change")
    assert change.evidence[0].startswith("invoice.pdf p.2: ")


async def test_accounts_learned_from_attachments_make_a_later_change_visible(stage: BecStage) -> None:
    assert not await _judge(stage, mail("<a@supplier.example>", make_docx([f"IBAN {GENUINE}"]), "terms.docx"))
    later = await _judge(stage, mail("<b@supplier.example>", b"", "empty.bin", body=f"Pay to IBAN {FRAUD}"))
    assert "bec.account_changed" in _codes(later)


async def test_the_near_duplicate_invoice_is_caught(stage: BecStage) -> None:
    assert not _codes(await _judge(stage, mail("<first@supplier.example>", make_pdf(invoice_lines(GENUINE)))))
    second = await _judge(stage, mail("<second@supplier.example>", make_pdf(invoice_lines(FRAUD))))
    duplicate = next(finding for finding in second if finding.code == "bec.invoice_near_duplicate")
    assert "<first@supplier.example>" in duplicate.evidence[0]
    assert duplicate.evidence[1:] == (
        "payment details now: GB82WEST12345698765432",
        "before: DE89370400440532013000",
    )


async def test_a_resent_identical_invoice_and_a_different_invoice_pass(stage: BecStage) -> None:
    await _judge(stage, mail("<first@supplier.example>", make_pdf(invoice_lines(GENUINE))))
    again = await _judge(stage, mail("<again@supplier.example>", make_pdf(invoice_lines(GENUINE))))
    assert not _codes(again)
    other = [["A completely different letter about the annual summer party of our staff and families"] * 3]
    other[0].append(f"Donations welcome: IBAN {FRAUD}")
    different = await _judge(stage, mail("<party@supplier.example>", make_pdf(other)))
    assert "bec.invoice_near_duplicate" not in _codes(different)


async def test_unreadable_attachments_are_named_in_the_evidence(stage: BecStage) -> None:
    findings = await _judge(stage, mail("<x@supplier.example>", b"%PDF-1.4 nothing else"), learn=False)
    unreadable = next(finding for finding in findings if finding.code == "bec.attachment_unreadable")
    assert unreadable.score == 0 and unreadable.evidence[0].startswith("invoice.pdf: unreadable (")


def test_sketch_similarity_estimates_jaccard() -> None:
    genuine = "\n".join(line for page in invoice_lines(GENUINE) for line in page)
    fraud = "\n".join(line for page in invoice_lines(FRAUD) for line in page)
    unrelated = "\n".join(line for page in invoice_lines(GENUINE, "9") for line in page[:2]) + " quite other text"
    assert similarity(sketch(genuine), sketch(genuine)) == 1.0
    assert similarity(sketch(genuine), sketch(fraud)) >= 0.8
    assert similarity(sketch(genuine), sketch(unrelated)) < 0.5
    assert similarity((), sketch(genuine)) == 0.0


async def test_a_near_duplicate_from_another_sender_in_the_same_thread_is_caught(stage: BecStage) -> None:
    await _judge(stage, mail("<first@supplier.example>", make_pdf(invoice_lines(GENUINE))))
    message = EmailMessage()
    message["From"] = "Supplier Accounts <supplier.accounts@gmail.com>"
    message["To"] = "alice@example.com"
    message["Subject"] = "Re: Invoice"
    message["Message-ID"] = "<reply@gmail.com>"
    message["In-Reply-To"] = "<first@supplier.example>"
    message.set_content("Corrected invoice attached.")
    message.add_attachment(make_pdf(invoice_lines(FRAUD)), maintype="application", subtype="pdf", filename="inv.pdf")
    view = parse_message(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
    envelope = Envelope("supplier.accounts@gmail.com", ("alice@example.com",), Direction.INBOUND, "192.0.2.8")
    findings = (await stage.inspect(envelope, view)).findings
    duplicate = next(finding for finding in findings if finding.code == "bec.invoice_near_duplicate")
    assert duplicate.evidence[0].startswith("inv.pdf resembles invoice.pdf of <first@supplier.example>")


async def test_deep_nesting_in_a_pdf_does_not_fail_the_stage(stage: BecStage) -> None:
    deep = "/Deep " + "[" * 100_000 + "]" * 100_000 + " "
    pdf = make_pdf([["Invoice"], [f"IBAN {FRAUD}"]], page_extra=deep)
    findings = await _judge(stage, mail("<deep@supplier.example>", pdf), learn=False)
    assert "bec.attachment_unreadable" in _codes(findings)
