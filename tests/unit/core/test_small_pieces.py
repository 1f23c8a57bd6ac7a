"""Queue ids, the Received header, summary headers and per-IP limits."""

from __future__ import annotations

from continuity.core.client_limits import ClientLimiter, ClientLimitPolicy
from continuity.core.headers import TraceInfo, build_received_header, read_summary_headers
from continuity.core.queue_ids import is_queue_id, new_queue_id


def test_queue_ids_are_unique_and_sort_by_time() -> None:
    ids = [new_queue_id(1_800_000_000 + n) for n in range(1000)]
    assert len(set(ids)) == 1000
    assert ids == sorted(ids)
    assert all(is_queue_id(queue_id) for queue_id in ids)
    assert not is_queue_id("01M82C0Z6TNJKMTI")  # I is not in the alphabet


def test_queue_ids_made_in_one_millisecond_never_collide() -> None:
    # 100,000 ids in one millisecond: with 30 random bits alone, a collision is nearly certain.
    ids = [new_queue_id(1_800_000_000.0) for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert {queue_id[:10] for queue_id in ids} == {ids[0][:10]}


def test_received_header_is_clean_and_versionless() -> None:
    header = build_received_header(
        TraceInfo(
            client_helo="evil\r\nBcc: x@y.z (comment)",
            client_address="192.0.2.1",
            server_hostname="mx.example.com",
            protocol="ESMTPS",
            queue_id="01M82C0Z6TNJKMTX",
            recipient="alice@example.com",
            timestamp=1_800_000_000,
        )
    )
    text = header.decode()
    assert text.startswith("Received: from evil??Bcc: x@y.z ?comment? ([192.0.2.1])\r\n")
    assert "\tby mx.example.com with ESMTPS id 01M82C0Z6TNJKMTX\r\n\tfor <alice@example.com>;\r\n" in text
    assert text.endswith("+0000\r\n")
    assert text.count("\r\n") == 4 and "\n" not in text.replace("\r\n", "")


def test_summary_headers() -> None:
    summary = read_summary_headers(
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n folded\r\nMessage-ID: <a@b>\r\n\r\nSubject: no\r\n"
    )
    assert summary.subject == "=?utf-8?q?Gr=C3=BC=C3=9Fe?= folded"
    assert summary.message_id == "<a@b>"
    assert read_summary_headers(b"\r\nbody").message_id == ""


def test_session_and_rate_limits() -> None:
    now = [0.0]
    limiter = ClientLimiter(ClientLimitPolicy.build(2, 3, ["10.0.0.0/8"]), lambda: now[0])
    assert limiter.open_session("192.0.2.1") and limiter.open_session("192.0.2.1")
    assert not limiter.open_session("192.0.2.1")
    limiter.close_session("192.0.2.1")
    assert limiter.open_session("192.0.2.1")
    assert all(limiter.open_session("10.1.2.3") for _ in range(5))
    assert [limiter.allow_message("192.0.2.1") for _ in range(4)] == [True, True, True, False]
    now[0] = 61.0
    assert limiter.allow_message("192.0.2.1")
    now[0] = 200.0
    limiter.sweep()
    assert limiter._messages == {}
