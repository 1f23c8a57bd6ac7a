"""Every verdict and finding of the filter pipeline over fixed mail, for proving that speed-ups change nothing.

The run (:func:`run_outcomes`), always the same steps on the same messages:

1. the corpus's ``_history`` is learned (inbound, in file order), the memory flushed and
   its cached frequent-sender domains dropped;
2. every labelled corpus message is evaluated inbound, outbound (sent by its From address)
   and as a replay, the dkimpy test messages inbound, and the 2,750 SpamAssassin ham
   messages inbound, without learning;
3. the ham is learned (inbound, in order), the memory flushed and dumped (threads and
   accounts, without their timestamps);
4. the labelled corpus is evaluated inbound again (now with what the ham taught).

All stages run, mail authentication included, against a private BIND that is
authoritative for the root zone (every name gets a real answer) and for the dkimpy test
domain; a URL blocklist file names a few domains that occur in the mail.

The outcome of each evaluation is kept in a canonical form (verdict, score, reasons, and
per stage its status, findings with evidence, header fields and error), so two runs
compare exactly. ``tests/data/filter_golden.json.gz`` holds the outcomes of the
pipeline as it was before its speed-ups; regenerate it only for a deliberate change of
what the filters find:

    .venv/bin/python -m tests.support.filter_golden --write
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from continuity.config.settings import Settings
from continuity.core.mailbox_rows import build_mailbox
from continuity.core.pipeline import Direction, Envelope
from continuity.services.filter_eval import envelope_from_headers, label_dirs, message_files, read_message
from continuity.services.filter_setup import FilterService
from continuity.services.filtering import PipelineResult
from continuity.store.sqlite import SqliteStore, open_sqlite_store
from tests.support.bind import BindServer, zone_text
from tests.support.spamassassin import ham_corpus

DATA = Path(__file__).parents[1] / "data"
CORPUS = DATA / "corpus"
DKIM = DATA / "dkim"
GOLDEN = DATA / "filter_golden.json.gz"
DOMAINS = ["example.com", "example.net"]
BLOCKED = ["sourceforge.net", "spamassassin.taint.org", "example-payments.test"]

ROOT_ZONE = """$ORIGIN .
$TTL 3600
@ IN SOA ns1.golden. hostmaster.golden. 1 3600 600 86400 3600
@ IN NS ns1.golden.
ns1.golden. IN A 127.0.0.1
nordlicht-supplies.de. IN TXT "v=spf1 ip4:203.0.113.0/24 -all"
_dmarc.nordlicht-supplies.de. IN TXT "v=DMARC1; p=reject"
partner-engineering.it. IN TXT "v=spf1 ip4:198.51.100.0/24 ~all"
_dmarc.partner-engineering.it. IN TXT "v=DMARC1; p=quarantine"
example.com. IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.example.com. IN TXT "v=DMARC1; p=reject"
"""

Evaluate = Callable[[Envelope, bytes], Awaitable[PipelineResult]]
Close = Callable[[], Awaitable[None]]


def _txt(value: str) -> str:
    return " ".join(f'"{value[i : i + 200]}"' for i in range(0, len(value), 200))


def start_bind(workdir: Path) -> BindServer:
    """BIND authoritative for the root zone and for the dkimpy test domain (football.example.com)."""
    key = (DKIM / "test.txt").read_text().strip()
    football = zone_text(
        "football.example.com",
        [
            f"test._domainkey IN TXT {_txt(key)}",
            'brisbane._domainkey IN TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="',
            '@ IN TXT "v=spf1 ip4:192.0.2.0/24 -all"',
            '_dmarc IN TXT "v=DMARC1; p=quarantine"',
        ],
    )
    server = BindServer(workdir, {".": ROOT_ZONE, "football.example.com": football})
    server.start()
    return server


def golden_settings(work: Path, dns_port: int) -> Settings:
    """Every default stage on, DNS from the private BIND, a blocklist file."""
    blocklist = work / "blocklist.txt"
    blocklist.write_text("".join(f"{domain}\n" for domain in BLOCKED))
    return Settings.model_validate(
        {
            "data_dir": work / "data",
            "domains": DOMAINS,
            "smtp": {"hostname": "mx.example.com"},
            "filters": {
                "resolver": [f"127.0.0.1:{dns_port}"],
                "dns_timeout": 5.0,
                "auth": {"enabled": True},
                "urls": {"blocklists": [str(blocklist)]},
            },
        }
    )


async def provision(store: SqliteStore) -> None:
    """The mailboxes the tests use: alice (with an alias), bob, carol (disabled)."""
    for mailbox in (
        build_mailbox("alice@example.com", "Alice Example", domains=DOMAINS, aliases=["a.example@example.com"]),
        build_mailbox("bob@example.com", "Bob Example", domains=DOMAINS),
        build_mailbox("carol@example.net", "Carol Example", domains=DOMAINS, enabled=False),
    ):
        await store.mailboxes.upsert(mailbox)


def canonical(result: PipelineResult) -> list[object]:
    """The outcome in a form that compares exactly (no timings)."""
    decision = result.decision
    return [
        result.verdict.value,
        decision.score,
        [[reason.verdict.value, reason.cause, reason.message] for reason in decision.reasons],
        [
            [
                stage.stage,
                stage.status.value,
                [[f.code, f.score, f.message, list(f.evidence)] for f in stage.findings],
                [list(header) for header in stage.headers],
                stage.error,
                stage.fail_open,
            ]
            for stage in result.results
        ],
    ]


@dataclass(frozen=True)
class Mail:
    """One message of the run: a key, its envelope and its bytes."""

    key: str
    envelope: Envelope
    content: bytes


def _outbound(envelope: Envelope) -> Envelope:
    return Envelope(envelope.sender, envelope.recipients, Direction.OUTBOUND, authenticated_user=envelope.sender)


def _replay(envelope: Envelope) -> Envelope:
    return Envelope(
        envelope.sender, envelope.recipients, Direction.REPLAY, envelope.client_address, envelope.client_helo
    )


def _mail(label: str, path: Path) -> Mail:
    content = read_message(path)
    return Mail(f"{label}/{path.name}", envelope_from_headers(content), content)


def history() -> list[Mail]:
    """The corpus's earlier mail, to learn from."""
    return [_mail("_history", path) for path in message_files(CORPUS / "_history")]


def labelled() -> list[Mail]:
    """The labelled corpus messages."""
    return [_mail(folder.name, path) for folder in label_dirs(CORPUS) for path in message_files(folder)]


def every_direction(mails: list[Mail]) -> Iterator[Mail]:
    """Each message inbound, outbound and replayed."""
    for mail in mails:
        yield Mail(f"{mail.key}:inbound", mail.envelope, mail.content)
        yield Mail(f"{mail.key}:outbound", _outbound(mail.envelope), mail.content)
        yield Mail(f"{mail.key}:replay", _replay(mail.envelope), mail.content)


def dkim_messages() -> list[Mail]:
    """dkimpy's test messages (two signatures, unsigned)."""
    return [_mail("dkim", DKIM / name) for name in ("rfc6376.signed.msg", "rfc6376.msg", "test.message")]


def ham(work: Path) -> list[Mail]:
    """The SpamAssassin ham (easy-ham-1 and hard-ham-1), by file name."""
    folder = ham_corpus(work / "sa") / "ham"
    return [_mail("ham", path) for path in sorted(folder.iterdir())]


def memory_dump(database: Path) -> dict[str, list[list[object]]]:
    """The learned threads and accounts, without timestamps, sorted."""
    connection = sqlite3.connect(database)
    try:
        threads = connection.execute(
            "SELECT message_id, sender, sender_domain, participants, link_domains, dkim_domain, network, mailer,"
            " direction FROM filter_thread_messages ORDER BY message_id"
        ).fetchall()
        accounts = connection.execute(
            "SELECT correspondent, account FROM filter_accounts ORDER BY correspondent, account"
        ).fetchall()
    finally:
        connection.close()
    return {"threads": [list(row) for row in threads], "accounts": [list(row) for row in accounts]}


async def _evaluate_all(evaluate: Evaluate, mails: Iterator[Mail] | list[Mail], prefix: str) -> dict[str, object]:
    return {f"{prefix}:{mail.key}": canonical(await evaluate(mail.envelope, mail.content)) for mail in mails}


async def run_outcomes(
    work: Path,
    dns_port: int,
    *,
    evaluator: Callable[[FilterService, Settings, SqliteStore], Awaitable[tuple[Evaluate, Close]]] | None = None,
) -> dict[str, object]:
    """The whole run (see the module docstring); evaluator optionally supplies how steps 2 and 4 evaluate.

    evaluator(service, settings, store) returns (evaluate, close); it is called after step 1
    and again (after closing the first) after step 3.
    """
    settings = golden_settings(work, dns_port)
    store = await open_sqlite_store(settings.database_path, settings.blob_path)
    await provision(store)
    service = FilterService(settings, store.filter_memory, store.mailboxes)
    await service.start(background=False)
    outcomes: dict[str, object] = {}
    ham_mails = ham(work)

    async def evaluator_now() -> tuple[Evaluate, Close]:
        if evaluator is not None:
            return await evaluator(service, settings, store)

        async def evaluate(envelope: Envelope, content: bytes) -> PipelineResult:
            return await service.pipeline.evaluate(envelope, content, learn=False)

        async def nothing() -> None:
            return None

        return evaluate, nothing

    try:
        for mail in history():
            await service.pipeline.evaluate(mail.envelope, mail.content, learn=True)
        await service.memory.flush()
        service.memory.forget_cached()
        evaluate, close = await evaluator_now()
        try:
            outcomes |= await _evaluate_all(evaluate, every_direction(labelled()), "corpus")
            outcomes |= await _evaluate_all(evaluate, dkim_messages(), "dkim")
            outcomes |= await _evaluate_all(evaluate, ham_mails, "ham")
        finally:
            await close()
        for mail in ham_mails:
            await service.pipeline.evaluate(mail.envelope, mail.content, learn=True)
        await service.memory.flush()
        service.memory.forget_cached()
        evaluate, close = await evaluator_now()
        try:
            outcomes |= await _evaluate_all(evaluate, labelled(), "after-ham")
        finally:
            await close()
    finally:
        await service.stop()
        await store.close()
    return {"outcomes": outcomes, "memory": memory_dump(settings.database_path)}


def read_golden() -> dict[str, object]:
    """The stored outcomes."""
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as handle:
        data: dict[str, object] = json.load(handle)
    return data


def differences(expected: dict[str, object], actual: dict[str, object], limit: int = 10) -> list[str]:
    """Keys whose outcomes differ, with both sides (at most limit)."""
    found: list[str] = []
    want = expected["outcomes"]
    got = actual["outcomes"]
    assert isinstance(want, dict) and isinstance(got, dict)
    for key in sorted(set(want) | set(got)):
        if want.get(key) != got.get(key):
            found.append(f"{key}:\n  expected {want.get(key)}\n  actual   {got.get(key)}")
    if expected["memory"] != actual["memory"]:
        found.append("the learned memory differs")
    return found[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {GOLDEN.relative_to(DATA.parents[1])}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="filter-golden-") as scratch:
        work = Path(scratch)
        bind = start_bind(work / "bind")
        try:
            data = asyncio.run(run_outcomes(work, bind.port))
        finally:
            bind.stop()
    outcomes = data["outcomes"]
    assert isinstance(outcomes, dict)
    print(f"{len(outcomes)} evaluations")
    if args.write:
        with gzip.open(GOLDEN, "wt", encoding="utf-8", compresslevel=9) as handle:
            json.dump(data, handle, sort_keys=True, separators=(",", ":"))
        print(f"written {GOLDEN}")
    else:
        print("\n".join(differences(read_golden(), data)) or "same as the stored outcomes")


if __name__ == "__main__":
    main()
