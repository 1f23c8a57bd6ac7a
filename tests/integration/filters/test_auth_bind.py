"""Mail authentication against a real BIND: dkimpy's test data, and SPF/DKIM/DMARC at SMTP ingest."""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest

from continuity.adapters.dns_cache import CachingResolver
from continuity.config.types import HostPort
from continuity.filters.auth import authenticate, check_dkim
from continuity.services.app import Running, start, stop
from tests.conftest import provision_standard_mailboxes
from tests.support.appliance import make_settings
from tests.support.bind import BindServer, zone_text
from tests.support.messages import make_message

DATA = Path(__file__).parents[2] / "data" / "dkim"


def _error(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode() if isinstance(exc.smtp_error, bytes) else exc.smtp_error
    return f"{exc.smtp_code} {text}"


def _txt(value: str) -> str:
    """A TXT record value split into quoted strings of at most 255 bytes."""
    return " ".join(f'"{value[i : i + 200]}"' for i in range(0, len(value), 200))


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindServer]:
    test_key = (DATA / "test.txt").read_text().strip()
    zones = {
        "football.example.com": zone_text(
            "football.example.com",
            [
                f"test._domainkey IN TXT {_txt(test_key)}",
                'brisbane._domainkey IN TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="',
            ],
        ),
        "sender.test": zone_text(
            "sender.test",
            [
                '@ IN TXT "v=spf1 ip4:127.0.0.1 -all"',
                f"test._domainkey IN TXT {_txt(test_key)}",
                '_dmarc IN TXT "v=DMARC1; p=reject"',
            ],
        ),
        "forged.test": zone_text(
            "forged.test", ['@ IN TXT "v=spf1 ip4:192.0.2.1 -all"', '_dmarc IN TXT "v=DMARC1; p=reject"']
        ),
        "soft.test": zone_text("soft.test", ['@ IN TXT "v=spf1 ~all"', '_dmarc IN TXT "v=DMARC1; p=quarantine"']),
    }
    server = BindServer(tmp_path_factory.mktemp("bind"), zones)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def resolver(bind: BindServer) -> CachingResolver:
    return CachingResolver([HostPort("127.0.0.1", bind.port)], timeout=3)


def test_dkimpy_data_signed_and_verified_through_bind(resolver: CachingResolver) -> None:
    message = (DATA / "test.message").read_bytes()
    key = (DATA / "test.private").read_bytes()
    for canonicalize in ((b"simple", b"simple"), (b"relaxed", b"relaxed"), (b"relaxed", b"simple")):
        signature = dkim.sign(message, b"test", b"football.example.com", key, canonicalize=canonicalize)
        [result] = check_dkim(resolver, signature + message)
        assert (result.result, result.domain, result.selector) == ("pass", "football.example.com", "test")
        altered = signature + message.replace(b"a test message", b"a fake message")
        assert altered != signature + message
        assert check_dkim(resolver, altered)[0].result == "fail"
    assert check_dkim(resolver, message) == []


def test_dkimpy_rfc8463_ed25519_and_rsa_signatures(resolver: CachingResolver) -> None:
    results = check_dkim(resolver, (DATA / "rfc6376.signed.msg").read_bytes())
    assert len(results) == 2
    assert [result.result for result in results] == ["pass", "pass"]
    assert {result.domain for result in results} == {"football.example.com"}


def test_caching_resolver_caches_answers(resolver: CachingResolver) -> None:
    first = resolver.txt("_dmarc.sender.test")
    queries = resolver.queries
    assert resolver.txt("_dmarc.sender.test") == first == [b"v=DMARC1; p=reject"]
    assert resolver.queries == queries and resolver.hits >= 1
    assert resolver.lookup("nothing-here.sender.test", "TXT") == ()


def test_dmarc_quarantine_policy(resolver: CachingResolver) -> None:
    content = make_message(sender="someone@soft.test")
    outcome = authenticate(resolver, "mx.example.com", content, "127.0.0.1", "someone@soft.test", "h.soft.test")
    assert outcome.spf is not None and outcome.spf.result == "softfail"
    assert (outcome.dmarc, outcome.dmarc_policy) == ("fail", "quarantine")


def _signed(sender: str, subject: str) -> bytes:
    message = make_message(subject=subject, sender=sender)
    key = (DATA / "test.private").read_bytes()
    domain = sender.rpartition("@")[2].encode()
    signature: bytes = dkim.sign(message, b"test", domain, key, include_headers=[b"from", b"to", b"subject"])
    return signature + message


async def test_authentication_at_smtp_ingest(tmp_path: Path, bind: BindServer) -> None:
    settings = make_settings(
        tmp_path / "data", filters={"resolver": [f"127.0.0.1:{bind.port}"], "auth": {"enabled": True}}
    )
    running: Running = await start(settings)
    await provision_standard_mailboxes(running)
    try:
        good = _signed("news@sender.test", "Signed and aligned")
        forged = make_message(subject="Forged", sender="ceo@forged.test")

        def send() -> tuple[dict[str, tuple[int, bytes]], str]:
            with smtplib.SMTP("127.0.0.1", running.smtp_address.port, timeout=20) as smtp:
                accepted = smtp.sendmail("news@sender.test", ["alice@example.com"], good)
                try:
                    smtp.sendmail("ceo@forged.test", ["alice@example.com"], forged)
                except smtplib.SMTPDataError as exc:
                    return (
                        accepted,
                        _error(exc),
                    )
            return accepted, "accepted"

        accepted, refusal = await asyncio.to_thread(send)
        assert accepted == {}
        assert refusal.startswith("550 5.7.1 Message refused by security policy: forged sender")
        [entry] = await running.store.messages.list()
        block = (await running.store.messages.trace_header(entry.queue_id) or b"").decode()
        assert block.startswith("Authentication-Results: mx.example.com;")
        assert "spf=pass" in block and "dkim=pass" in block and "dmarc=pass" in block
        assert "header.d=sender.test" in block
        assert block.index("Authentication-Results") < block.index("Received: from")
        body = await running.store.blobs.read(entry.sha256)
        assert body == good and entry.sha256 == hashlib.sha256(good).hexdigest()
        verdict = await running.store.verdicts.get(entry.queue_id)
        assert verdict is not None and verdict.verdict.value == "accept"
        assert any(stage.stage == "auth" and stage.status.value == "ok" for stage in verdict.stages)
    finally:
        await stop(running, grace=5)
