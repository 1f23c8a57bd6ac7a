"""The near-duplicate invoice through real SMTP ingest: caught whichever of the two arrives first.

Two PDF invoices from the same supplier, identical but for the IBAN, are sent to the
in-process appliance over SMTP on loopback. The second to arrive is quarantined with
bec.invoice_near_duplicate naming the first one's Message-ID; the first is not changed.
A legitimate invoice sent again with the same payment details is accepted.
"""

from __future__ import annotations

import asyncio
import smtplib
import time

import pytest

from continuity.core.models import MessageState
from continuity.services.app import Running
from tests.support.documents import make_pdf
from tests.unit.filters.test_bec_documents import FRAUD, GENUINE, invoice_lines, mail


def _send(port: int, content: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.sendmail("billing@supplier.example", ["alice@example.com"], content)


async def _learned(appliance: Running, message_id: str) -> None:
    """Wait until the filter memory holds the message's document (the main process writes lessons in batches)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = await appliance.store.filter_memory.documents("supplier.example", (message_id,), 0.0)
        if any(record.message_id == message_id for record in found):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the document of {message_id} was never learned")


async def _states(appliance: Running) -> dict[str, MessageState]:
    entries = await appliance.store.messages.list()
    return {entry.message_id: entry.state for entry in entries}


@pytest.mark.parametrize("first_iban", [GENUINE, FRAUD], ids=["genuine-first", "fraud-first"])
async def test_the_second_of_two_near_identical_invoices_is_quarantined(appliance: Running, first_iban: str) -> None:
    port = appliance.smtp_address.port
    second_iban = FRAUD if first_iban == GENUINE else GENUINE
    await asyncio.to_thread(_send, port, mail("<first@supplier.example>", make_pdf(invoice_lines(first_iban))))
    await _learned(appliance, "<first@supplier.example>")
    await asyncio.to_thread(_send, port, mail("<second@supplier.example>", make_pdf(invoice_lines(second_iban))))

    held = await appliance.store.quarantine.list()
    assert [entry.message_id for entry in held] == ["<second@supplier.example>"]
    verdict = await appliance.store.verdicts.get(held[0].queue_id)
    assert verdict is not None
    finding = next(f for f in verdict.findings if f.code == "bec.invoice_near_duplicate")
    assert "invoice.pdf resembles invoice.pdf of <first@supplier.example>" in finding.evidence[0]
    states = await _states(appliance)
    assert states["<first@supplier.example>"] is not MessageState.HELD


async def test_an_invoice_sent_again_with_the_same_details_is_accepted(appliance: Running) -> None:
    port = appliance.smtp_address.port
    await asyncio.to_thread(_send, port, mail("<first@supplier.example>", make_pdf(invoice_lines(GENUINE))))
    await _learned(appliance, "<first@supplier.example>")
    await asyncio.to_thread(_send, port, mail("<again@supplier.example>", make_pdf(invoice_lines(GENUINE))))
    assert await appliance.store.quarantine.list() == []
    verdicts = [await appliance.store.verdicts.get(entry.queue_id) for entry in await appliance.store.messages.list()]
    assert len(verdicts) == 2
    assert all(v is not None and not any(f.code.startswith("bec.") for f in v.findings) for v in verdicts)
