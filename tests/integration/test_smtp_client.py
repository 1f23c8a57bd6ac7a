"""Outbound delivery against real servers: Postfix's smtp-sink, the appliance itself, BIND for MX."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from continuity.adapters.smtp_client import SmtpDelivery
from continuity.config.outbound import OutboundSettings
from continuity.core.delivery import DeliveryStatus
from continuity.services.app import Running
from tests.support.bind import BindServer, zone_text
from tests.support.messages import make_message
from tests.support.ports import free_port
from tests.support.smtp_sink import SmtpSink


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink(tmp_path)
    server.start()
    yield server
    server.stop()


def _delivery(**settings: Any) -> SmtpDelivery:
    return SmtpDelivery(OutboundSettings(**settings), helo_name="standby.example.com")


async def test_smart_host_delivery(sink: SmtpSink) -> None:
    message = make_message(subject="via smart host")
    report = await _delivery(smart_host=f"127.0.0.1:{sink.port}").deliver(
        "alice@example.com", ["x@remote.test", "y@other.test"], message
    )
    assert report.all_delivered
    [received] = sink.messages()
    assert received["Subject"] == "via smart host"
    assert received.get_all("X-Rcpt-Args") == ["<x@remote.test>", "<y@other.test>"]
    assert received["X-Helo-Args"] == "standby.example.com"


@pytest.fixture
def dns(tmp_path: Path) -> Iterator[BindServer]:
    zones = {
        "remote.test": zone_text(
            "remote.test", ["@ IN MX 10 dead", "@ IN MX 20 mx1", "dead IN A 127.0.0.2", "mx1 IN A 127.0.0.1"]
        ),
        "nomail.test": zone_text("nomail.test", ["@ IN MX 0 ."]),
        "implicit.test": zone_text("implicit.test", ["@ IN A 127.0.0.1"]),
    }
    server = BindServer(tmp_path / "bind", zones)
    server.start()
    yield server
    server.stop()


async def test_direct_mx_delivery_falls_back_by_preference(sink: SmtpSink, dns: BindServer) -> None:
    delivery = _delivery(resolver=[f"127.0.0.1:{dns.port}"], mx_port=sink.port)
    report = await delivery.deliver("alice@example.com", ["a@remote.test", "b@implicit.test"], make_message())
    assert report.all_delivered, report
    assert {result.host for result in report.results} == {
        f"mx1.remote.test[127.0.0.1]:{sink.port}",
        f"implicit.test[127.0.0.1]:{sink.port}",
    }
    assert len(sink.messages(2)) == 2


async def test_dns_outcomes(dns: BindServer) -> None:
    delivery = _delivery(resolver=[f"127.0.0.1:{dns.port}"], mx_port=free_port())
    report = await delivery.deliver("alice@example.com", ["n@nomail.test", "z@absent.remote.test"], make_message())
    by_recipient = {result.recipient: result for result in report.results}
    assert by_recipient["n@nomail.test"].status is DeliveryStatus.FAILED
    assert "null MX" in by_recipient["n@nomail.test"].text
    assert by_recipient["z@absent.remote.test"].status is DeliveryStatus.FAILED
    unreachable = await delivery.deliver("alice@example.com", ["a@remote.test"], make_message())
    assert unreachable.results[0].status is DeliveryStatus.DEFERRED
    assert "cannot connect" in unreachable.results[0].text
    silent = _delivery(resolver=[f"127.0.0.1:{free_port()}"], timeout=1)
    no_dns = await silent.deliver("alice@example.com", ["a@remote.test"], make_message())
    assert no_dns.results[0].status is DeliveryStatus.DEFERRED


async def test_soft_rejections_defer(tmp_path: Path) -> None:
    server = SmtpSink(tmp_path, extra_args=("-r", "RCPT"))
    server.start()
    try:
        report = await _delivery(smart_host=f"127.0.0.1:{server.port}").deliver(
            "a@example.com", ["x@r.test"], make_message()
        )
    finally:
        server.stop()
    [result] = report.results
    assert result.status is DeliveryStatus.DEFERRED and result.code // 100 == 4


async def test_per_recipient_outcomes_against_the_appliance(appliance: Running) -> None:
    delivery = _delivery(smart_host=f"127.0.0.1:{appliance.smtp_address.port}")
    report = await delivery.deliver(
        "s@outside.test", ["alice@example.com", "nobody@example.com", "x@gmail.test"], make_message()
    )
    outcome = {result.recipient: (result.status, result.code) for result in report.results}
    assert outcome == {
        "alice@example.com": (DeliveryStatus.DELIVERED, 250),
        "nobody@example.com": (DeliveryStatus.FAILED, 550),
        "x@gmail.test": (DeliveryStatus.FAILED, 554),
    }
    assert await appliance.store.messages.count() == 1


async def test_tls_policies(tls_appliance: tuple[Running, trustme.CA], tmp_path: Path) -> None:
    running, ca = tls_appliance
    smart_host = f"127.0.0.1:{running.smtp_address.port}"
    opportunistic = await _delivery(smart_host=smart_host).deliver(
        "s@outside.test", ["alice@example.com"], make_message()
    )
    assert opportunistic.all_delivered
    untrusted = await _delivery(smart_host=smart_host, tls="required").deliver(
        "s@o.test", ["alice@example.com"], make_message()
    )
    assert untrusted.results[0].status is DeliveryStatus.DEFERRED
    assert "certificate" in untrusted.results[0].text.lower()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    trusted = await _delivery(smart_host=smart_host, tls="required", ca_file=str(tmp_path / "ca.pem")).deliver(
        "s@outside.test", ["bob@example.com"], make_message()
    )
    assert trusted.all_delivered
    for entry in await running.store.messages.list():
        trace = await running.store.messages.trace_header(entry.queue_id)
        assert trace is not None and b"with ESMTPS id" in trace
