"""Webmail server time on a mailbox of 100,000 messages, against the same queries made on the store.

The mailbox is filled directly (bodies written into the content-addressed store, rows
inserted in one transaction, then the webmail's own indexer parses every message into
the header summary and the FTS5 index). Requests then go through the whole web
application (litestar routing, session and CSRF checks, templates, the failover banner,
folder counts) over an in-process ASGI transport, so what is timed is server time, not
the loopback network. The reference is the same data fetched straight from the store
(the list page query, reading and parsing a message, the FTS5 query); the ratio shows
the framework's overhead.

Run:  .venv/bin/python -m bench.webmail [--messages 100000] [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from continuity.config.settings import Settings
from continuity.config.webmail import WebmailSettings
from continuity.core.mailbox_rows import build_mailbox
from continuity.core.mime_view import view
from continuity.core.search_query import fts_query
from continuity.passwords import hash_password
from continuity.services.content_reader import WorkerContentReader
from continuity.services.filter_processes import ProcessPipeline
from continuity.store.sqlite import SqliteStore, open_sqlite_store
from webmail.app import create_app
from webmail.context import WebContext
from webmail.mail.wiring import build_webmail_services

RESULTS = Path(__file__).parent / "results"
MAILBOX = "bench@example.com"
PASSWORD = "benchmark password"
TARGETS_MS = {"first_page": 50.0, "deep_page": 50.0, "open_message": 50.0, "search": 200.0}
_WORDS = [
    "".join(random.Random(seed).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3 + seed % 7))
    for seed in range(4000)
]


def _message(number: int, rng: random.Random) -> bytes:
    words = rng.choices(_WORDS, k=rng.randint(40, 400))
    if number % 100 == 0:
        words.insert(rng.randrange(len(words)), "invoice")
    subject = " ".join(rng.choices(_WORDS, k=rng.randint(2, 7))).capitalize()
    body = "\n".join(" ".join(words[i : i + 12]) for i in range(0, len(words), 12))
    return (
        f"From: Sender {number % 977} <sender{number % 977}@partner{number % 31}.test>\r\n"
        f"To: Bench <{MAILBOX}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{number}.bench@partner.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n"
    ).encode()


def _fill(store: SqliteStore, count: int) -> None:
    """Bodies as files and rows in one transaction (setup only: no fsync per body)."""
    rng = random.Random(42)
    rows = []
    start = time.time() - count
    for number in range(count):
        content = _message(number, rng)
        digest = hashlib.sha256(content).hexdigest()
        store.blob_store.path_for(digest).write_bytes(content)
        queue_id = f"{number:016d}"
        rows.append((queue_id, start + number, digest, len(content)))

    def work(connection: sqlite3.Connection) -> None:
        connection.executemany(
            "INSERT INTO messages (queue_id, received_at, sender, size, sha256, message_id, subject, client_address,"
            " client_helo, trace_header, state)"
            " VALUES (?, ?, 'x@partner.test', ?, ?, '', '', '127.0.0.1', 'b', x'', 'queued')",
            [(q, at, size, digest) for q, at, digest, size in rows],
        )
        connection.executemany(
            "INSERT INTO mailbox_messages (mailbox, queue_id, folder, flags, delivered_at)"
            " VALUES (?, ?, 'INBOX', '', ?)",
            [(MAILBOX, q, at) for q, at, _digest, _size in rows],
        )

    store.database.transact_sync(work)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
    }


async def _time(samples: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    timings = []
    for index in range(samples):
        started = time.perf_counter()
        await call(index)
        timings.append(time.perf_counter() - started)
    return timings


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        return await _run(Path(args.keep), args)
    with tempfile.TemporaryDirectory(prefix="bench-webmail-", dir=args.workdir) as tmp:
        return await _run(Path(tmp), args)


async def _run(work: Path, args: argparse.Namespace) -> dict[str, object]:
    settings = Settings(data_dir=work, domains=["example.com"], webmail=WebmailSettings(cookie_secure=False))
    store = await open_sqlite_store(settings.database_path, settings.blob_path, key_path=settings.webmail_key_path)
    workers = ProcessPipeline(settings, settings.filters.worker_count, idle_stop=False)  # as serve runs them
    workers.start()
    try:
        if await store.mailboxes.get(MAILBOX) is None:
            await store.mailboxes.upsert(build_mailbox(MAILBOX, "Bench", domains=["example.com"]))
            await store.mailboxes.set_password_hash(MAILBOX, hash_password(PASSWORD))
            started = time.perf_counter()
            await asyncio.to_thread(_fill, store, args.messages)
            print(f"stored {args.messages} messages in {time.perf_counter() - started:.1f}s")
        services = build_webmail_services(settings, store, WorkerContentReader(workers), verdicts=store.verdicts)
        started = time.perf_counter()
        await services.indexer.catch_up(budget=1 << 62)
        print(f"indexed them (summaries and FTS5) in {time.perf_counter() - started:.1f}s")
        app = create_app(WebContext(settings=settings, store=store, webmail=services))
        return await _measure(app, store, services.settings.webmail.page_size, args)
    finally:
        await workers.close()
        await store.close()


async def _measure(app: object, store: SqliteStore, page_size: int, args: argparse.Namespace) -> dict[str, object]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://standby.test") as client:
        login = await client.get("/login")
        token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed_in = await client.post("/login", data={"csrf_token": token, "address": MAILBOX, "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text
        _rows, total = await store.webmail.page(MAILBOX, "INBOX", 0, 1)
        deep_page = int(total / page_size * 0.75)
        rng = random.Random(7)
        ids = [rng.randrange(1, total + 1) for _ in range(args.samples)]
        expression = fts_query("invoice", MAILBOX)
        assert expression is not None

        async def web(path: str) -> None:
            response = await client.get(path)
            assert response.status_code == 200, (path, response.status_code)

        async def store_message(message_id: int) -> None:
            stored = await store.webmail.get(MAILBOX, message_id)
            assert stored is not None
            content = await store.blobs.read(stored.sha256)
            await asyncio.to_thread(view, content)

        cases: dict[str, tuple[Callable[[int], Awaitable[object]], Callable[[int], Awaitable[object]]]] = {
            "first_page": (
                lambda _i: web("/mail"),
                lambda _i: store.webmail.page(MAILBOX, "INBOX", 0, page_size),
            ),
            "deep_page": (
                lambda _i: web(f"/mail?page={deep_page}"),
                lambda _i: store.webmail.page(MAILBOX, "INBOX", (deep_page - 1) * page_size, page_size),
            ),
            "open_message": (lambda i: web(f"/mail/message/{ids[i]}"), lambda i: store_message(ids[-1 - i])),
            "search": (
                lambda _i: web("/mail/search?q=invoice"),
                lambda _i: store.webmail.search(MAILBOX, expression, 0, page_size + 1),
            ),
        }
        report: dict[str, object] = {
            "messages": total,
            "samples": args.samples,
            "deep_page": deep_page,
            "cpus": os.cpu_count(),
        }
        for name, (through_web, direct) in cases.items():
            await _time(5, through_web)  # warm-up
            await _time(5, direct)
            web_times = await _time(args.samples, through_web)
            store_times = await _time(args.samples, direct)
            through, straight = _percentiles(web_times), _percentiles(store_times)
            ratio = round(through["p50_ms"] / max(straight["p50_ms"], 0.001), 2)
            met = through["p95_ms"] < TARGETS_MS[name]
            report[name] = {
                "webmail": through,
                "store": straight,
                "overhead_ratio_p50": ratio,
                "target_p95_ms": TARGETS_MS[name],
                "meets_target": met,
            }
            print(
                f"{name:13} webmail p50 {through['p50_ms']:7.2f} ms  p95 {through['p95_ms']:7.2f} ms"
                f"   store p50 {straight['p50_ms']:7.2f} ms  p95 {straight['p95_ms']:7.2f} ms"
                f"   webmail/store {ratio:5.2f}   target p95 < {TARGETS_MS[name]:.0f} ms: {'met' if met else 'MISSED'}"
            )
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200, help="requests per measured case")
    parser.add_argument("--workdir", default=None, help="where the temporary store lives")
    parser.add_argument("--keep", default=None, help="a directory to keep the filled store in and reuse next time")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "webmail.json").write_text(json.dumps(report | {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2))


if __name__ == "__main__":
    main()
