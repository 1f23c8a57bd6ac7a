"""Failed AUTH attempts per client network across sessions: the lock-out and its window."""

from __future__ import annotations

from continuity.core.auth_failures import AuthFailureLimiter, client_network


def test_failures_lock_out_the_network_until_the_oldest_leaves_the_window() -> None:
    now = [1000.0]
    limiter = AuthFailureLimiter(3, 900, lambda: now[0])
    for expected in (1, 2, 3):
        assert not limiter.blocked("192.0.2.7")
        assert limiter.failed("192.0.2.7") == expected
        now[0] += 10
    assert limiter.blocked("192.0.2.7") and limiter.retry_after("192.0.2.7") == 900 - 30
    assert not limiter.blocked("192.0.2.8")
    now[0] = 1000.0 + 900
    assert not limiter.blocked("192.0.2.7") and limiter.retry_after("192.0.2.7") == 0


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() -> None:
    now = [0.0]
    limiter = AuthFailureLimiter(2, 60, lambda: now[0])
    limiter.failed("2001:db8:1:2::1")
    limiter.failed("2001:db8:1:2:ffff::9")
    assert limiter.blocked("2001:db8:1:2::abcd") and not limiter.blocked("2001:db8:1:3::1")
    assert client_network("::ffff:192.0.2.1") == "192.0.2.1"
    limiter.failed("::ffff:192.0.2.1")
    limiter.failed("192.0.2.1")
    assert limiter.blocked("192.0.2.1")
    now[0] = 61
    limiter.sweep()
    assert not limiter.blocked("2001:db8:1:2::1") and not limiter._failures
