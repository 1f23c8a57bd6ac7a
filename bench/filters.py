"""Messages per second through the full filter pipeline, the share of time per stage, and a reference.

The mix: the project's labelled corpus (fraud, hijacks, lookalikes, malware, clean
business mail) plus public ham from the SpamAssassin corpus (fetched with npm and cached,
as the tests do), all stages on, including SPF/DKIM/DMARC against a private BIND that is
authoritative for the root zone (so every name gets a real answer). One warm-up pass
fills the DNS cache and the thread memory; the measured passes run in one process with
the stages one after another (so each stage's time is its own).

The reference, measured in the same run on the same messages: parsing each message
with the standard library's email parser (default policy) and reading every part's
content, the least any content filter has to do.

A second run gives a share of the messages (--pdf-share, 20% by default) a 100 KB PDF
invoice (two pages of text and an image, as a scanned logo makes one larger; a different
invoice number and amount each), so the BEC stage reads its text and compares its
fingerprint with the documents learned in the warm-up. Its rate is printed against the
target of 250 msg/s. The pipeline runs in this one process, as one filter worker would.

Run:  .venv/bin/python -m bench.filters [--ham 1500] [--rounds 3] [--pdf-share 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.parser
import email.policy
import json
import statistics
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from continuity.config.settings import Settings
from continuity.core.pipeline import Envelope
from continuity.services.filter_eval import envelope_from_headers, message_files, read_message
from continuity.services.filter_setup import FilterService
from continuity.store.sqlite import open_sqlite_store
from tests.support.bind import BindServer
from tests.support.documents import make_pdf
from tests.support.spamassassin import ham_corpus

CORPUS = Path(__file__).parents[1] / "tests" / "data" / "corpus"
RESULTS = Path(__file__).parent / "results"

ROOT_ZONE = """$ORIGIN .
$TTL 3600
@ IN SOA ns1.bench. hostmaster.bench. 1 3600 600 86400 3600
@ IN NS ns1.bench.
ns1.bench. IN A 127.0.0.1
nordlicht-supplies.de. IN TXT "v=spf1 ip4:203.0.113.0/24 -all"
_dmarc.nordlicht-supplies.de. IN TXT "v=DMARC1; p=reject"
partner-engineering.it. IN TXT "v=spf1 ip4:198.51.100.0/24 ~all"
_dmarc.partner-engineering.it. IN TXT "v=DMARC1; p=quarantine"
example.com. IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.example.com. IN TXT "v=DMARC1; p=reject"
"""


def _messages(ham: int, work: Path) -> list[tuple[Envelope, bytes]]:
    files = [path for folder in sorted(CORPUS.iterdir()) if folder.is_dir() for path in message_files(folder)]
    if ham:
        files += sorted((ham_corpus(work / "sa") / "ham").iterdir())[:ham]
    loaded = []
    for path in files:
        content = read_message(path)
        loaded.append((envelope_from_headers(content), content))
    return loaded


PDF_TARGET = 250.0
PDF_BYTES = 100 * 1024


def _invoice(number: int) -> bytes:
    """A 100 KB PDF invoice; the number changes its text (and its amounts)."""
    pages = [
        [
            f"Nordlicht Supplies GmbH - Invoice 2026-{number:05d}",
            "Customer: Example Corp, 1 Harbour Road, Springfield",
            f"Item 1: Consulting services, {number % 17 + 1} days at 950.00 EUR",
            f"Item 2: Hardware delivery, order {number * 7 % 10000:04d}",
            f"Total {(number % 17 + 1) * 950 + 312.5:,.2f} EUR including VAT",
        ],
        [
            "Terms of payment: thirty days net from the date of this invoice",
            "Bank: Example Bank, IBAN DE89 3704 0044 0532 0130 00",
            "Thank you for your business",
        ],
    ]
    document = make_pdf(pages, compress=True)
    return make_pdf(pages, compress=True, image_bytes=max(1000, PDF_BYTES - len(document) - 200))


def _with_pdfs(messages: list[tuple[Envelope, bytes]], share: float) -> list[tuple[Envelope, bytes]]:
    """The messages, every (1/share)th one with an invoice PDF attached."""
    every = max(1, round(1 / share))
    parser = email.parser.BytesParser(policy=email.policy.default)
    mixed = []
    for number, (envelope, content) in enumerate(messages):
        if number % every == 0:
            with contextlib.suppress(LookupError, ValueError, TypeError, KeyError, AssertionError):
                message = parser.parsebytes(content)
                if isinstance(message, EmailMessage):
                    message.add_attachment(
                        _invoice(number), maintype="application", subtype="pdf", filename=f"invoice-{number}.pdf"
                    )
                    content = message.as_bytes(policy=email.policy.SMTP)
        mixed.append((envelope, content))
    return mixed


def _reference(messages: list[tuple[Envelope, bytes]]) -> float:
    parser = email.parser.BytesParser(policy=email.policy.default)
    started = time.perf_counter()
    for _, content in messages:
        message = parser.parsebytes(content)
        for part in message.walk():
            if not part.is_multipart():
                with contextlib.suppress(LookupError, ValueError, KeyError, AssertionError):
                    part.get_content()
    return len(messages) / (time.perf_counter() - started)


async def _run(args: argparse.Namespace, work: Path, pdf_share: float = 0.0) -> dict[str, object]:
    messages = _messages(args.ham, work)
    if pdf_share:
        messages = _with_pdfs(messages, pdf_share)
    bind = BindServer(work / "bind", {".": ROOT_ZONE})
    bind.start()
    store = await open_sqlite_store(work / "bench.db", work / "blobs")
    settings = Settings.model_validate(
        {
            "data_dir": work / "data",
            "domains": ["example.com", "example.net"],
            "smtp": {"hostname": "mx.bench.test"},
            "filters": {"resolver": [f"127.0.0.1:{bind.port}"], "dns_timeout": 2.0},
        }
    )
    service = FilterService(settings, store.filter_memory, store.mailboxes, sequential=True)
    await service.start(background=False)
    try:
        for envelope, content in messages:  # warm-up: DNS cache, thread and account memory
            await service.pipeline.evaluate(envelope, content)
        await service.memory.flush()
        rates, references = [], []
        stage_seconds: dict[str, float] = {}
        total_seconds = 0.0
        for _ in range(args.rounds):
            references.append(_reference(messages))
            started = time.perf_counter()
            for envelope, content in messages:
                result = await service.pipeline.evaluate(envelope, content, learn=False)
                for stage in result.results:
                    stage_seconds[stage.stage] = stage_seconds.get(stage.stage, 0.0) + stage.seconds
            elapsed = time.perf_counter() - started
            total_seconds += elapsed
            rates.append(len(messages) / elapsed)
        stage_seconds["parse and merge"] = total_seconds - sum(stage_seconds.values())
        queries, hits = service.resolver.queries, service.resolver.hits
    finally:
        await service.stop()
        await store.close()
        bind.stop()
    rate, reference = statistics.median(rates), statistics.median(references)
    return {
        "messages": len(messages),
        "with_pdf": sum(1 for _, content in messages if b"application/pdf" in content),
        "rounds": args.rounds,
        "pipeline_msg_per_s": round(rate, 1),
        "reference_msg_per_s": round(reference, 1),
        "ratio": round(rate / reference, 3),
        "target_msg_per_s": 300,
        "stage_share": {name: round(seconds / total_seconds, 3) for name, seconds in stage_seconds.items()},
        "dns_queries": queries,
        "dns_cache_hits": hits,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ham", type=int, default=1500, help="SpamAssassin ham messages in the mix (0: corpus only)")
    parser.add_argument("--rounds", type=int, default=3, help="measured passes (the median is kept)")
    parser.add_argument(
        "--pdf-share", type=float, default=0.2, help="share of messages with a 100 KB PDF in the second run (0: none)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-filters-") as scratch:
        result = asyncio.run(_run(args, Path(scratch)))
    pdf_result: dict[str, object] | None = None
    if args.pdf_share > 0:
        with tempfile.TemporaryDirectory(prefix="bench-filters-pdf-") as scratch:
            pdf_result = asyncio.run(_run(args, Path(scratch), args.pdf_share))
    print(f"{result['messages']} messages, {args.rounds} rounds (median), all stages, DNS cached")
    print(f"  pipeline:                    {result['pipeline_msg_per_s']:>8} msg/s (target >= 300)")
    print(f"  reference (stdlib parse):    {result['reference_msg_per_s']:>8} msg/s")
    print(f"  ratio pipeline / reference:  {result['ratio']:>8}")
    print("  share of pipeline time:")
    for name, share in sorted(result["stage_share"].items(), key=lambda item: -item[1]):  # type: ignore[attr-defined]
        print(f"    {name:18} {share:6.1%}")
    print(f"  DNS: {result['dns_queries']} queries, {result['dns_cache_hits']} cache hits")
    if pdf_result is not None:
        rate = float(pdf_result["pipeline_msg_per_s"])  # type: ignore[arg-type]
        pdf_result["target_msg_per_s"] = PDF_TARGET
        pdf_result["ratio_to_target"] = round(rate / PDF_TARGET, 3)
        print(f"{pdf_result['messages']} messages, {pdf_result['with_pdf']} with a 100 KB PDF invoice, one process")
        print(f"  pipeline:                    {rate:>8} msg/s (target >= {PDF_TARGET:g})")
        print(f"  ratio pipeline / target:     {pdf_result['ratio_to_target']:>8}")
        print(f"  ratio pipeline / reference:  {pdf_result['ratio']:>8}")
        bec = pdf_result["stage_share"].get("bec", 0.0)  # type: ignore[attr-defined]
        print(f"  share of pipeline time in bec: {bec:6.1%}")
        result["pdf_run"] = pdf_result
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "filters.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
