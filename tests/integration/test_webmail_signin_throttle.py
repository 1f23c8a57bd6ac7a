"""The login throttle over a real socket: concurrent attempts, second-factor counting, progressive delays,
device cookies, IPv6 networks and what the log says about typed addresses."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from pathlib import Path

import pyotp
import pytest

from continuity.services.app import Running
from continuity.store.sqlite import SqliteStore
from tests.support.webmail import PASSWORD, WebmailClient, webmail_appliance


async def _age_failures(running: Running, seconds: float) -> None:
    """Move every counted failure seconds into the past (as if the client had waited)."""
    assert isinstance(running.store, SqliteStore)
    await running.store.database.write(lambda c: c.execute("UPDATE webmail_auth_failures SET at = at - ?", (seconds,)))


def _wait_of(page: str) -> int:
    """The seconds a refusal page asks to wait."""
    found = re.search(r"Try again in (\d+) seconds?\.", page)
    assert found, page[:300]
    return int(found.group(1))


async def _enable_totp(running: Running) -> pyotp.TOTP:
    secret = pyotp.random_base32()
    await running.store.webmail_auth.start_totp("alice@example.com", secret)
    await running.store.webmail_auth.use_totp_step("alice@example.com", 1, enable=True)
    return pyotp.TOTP(secret)


async def test_concurrent_wrong_passwords_cannot_pass_the_limits(tmp_path: Path) -> None:
    # The defaults: 5 free failures per account, 20 per network.
    async with webmail_appliance(tmp_path / "data") as running:
        web = WebmailClient(running)
        try:
            await web.get("/login")
            form: dict[str, object] = {"address": "alice@example.com", "password": "wrong password!"}
            answers = await asyncio.gather(*(web.post("/login", form) for _ in range(40)))
            statuses = Counter(answer.status_code for answer in answers)
            assert statuses == {401: 5, 429: 35}
            failures = await running.store.webmail_auth.failure_counts("account:alice@example.com", "ip:127.0.0.1", 0)
            assert failures.account == 5 and failures.ip == 5
            # The network's limit holds the same way across many accounts.
            others = [f"user{i}@example.com" for i in range(40)]
            spread = await asyncio.gather(*(web.post("/login", {**form, "address": who}) for who in others))
            assert Counter(answer.status_code for answer in spread) == {401: 15, 429: 25}
        finally:
            await web.close()


async def test_concurrent_wrong_codes_cannot_pass_the_limit(client: WebmailClient, wm: Running) -> None:
    await _enable_totp(wm)
    assert (await client.login()).headers["location"] == "/login/totp"
    answers = await asyncio.gather(*(client.post("/login/totp", {"code": "000000"}) for _ in range(20)))
    assert Counter(answer.status_code for answer in answers) == {401: 3, 429: 17}


async def test_a_right_password_does_not_clear_the_second_factor_counter(client: WebmailClient, wm: Running) -> None:
    totp = await _enable_totp(wm)
    assert (await client.login()).headers["location"] == "/login/totp"
    for _ in range(3):
        assert (await client.post("/login/totp", {"code": "000000"})).status_code == 401
    # Signing in with the password again (it is known) must not give three more tries.
    again = await client.login()
    assert again.headers["location"] == "/login/totp"
    refused = await client.post("/login/totp", {"code": totp.now()})
    assert refused.status_code == 429 and "the code of this account" in refused.text
    await _age_failures(wm, 16)  # the first delay has passed
    assert (await client.post("/login/totp", {"code": totp.now()})).headers["location"] == "/mail"


async def test_failures_delay_progressively_instead_of_locking(client: WebmailClient, wm: Running) -> None:
    for _ in range(3):
        assert (await client.login(password="wrong password!")).status_code == 401
    throttled = await client.login()
    assert throttled.status_code == 429 and _wait_of(throttled.text) in range(10, 16)
    await _age_failures(wm, 16)
    # After the first delay one more try is allowed; a failure doubles the wait.
    assert (await client.login(password="wrong password!")).status_code == 401
    doubled = await client.login()
    assert doubled.status_code == 429 and _wait_of(doubled.text) in range(25, 31)
    await _age_failures(wm, 31)
    assert (await client.login()).headers["location"] == "/mail"


async def test_a_known_browser_passes_the_delays_strangers_caused(client: WebmailClient, wm: Running) -> None:
    signed_in = await client.login()
    assert signed_in.headers["location"] == "/mail"
    assert any(c.startswith("cw_device=") and "HttpOnly" in c for c in signed_in.headers.get_list("set-cookie"))
    device = client.http.cookies.get("cw_device")
    assert device
    await client.post("/logout")
    stranger = WebmailClient(wm)
    try:
        await stranger.get("/login")
        guess: dict[str, object] = {"address": "alice@example.com", "password": "guess!"}
        for _ in range(3):
            response = await stranger.post("/login", guess, headers={"X-Forwarded-For": "198.51.100.7"})
            assert response.status_code == 401
        blocked = await stranger.login()
        assert blocked.status_code == 429
        # A forged or altered device cookie is a stranger's.
        forged = WebmailClient(wm)
        try:
            forged.http.cookies.set("cw_device", device[:-4] + "AAAA", domain="127.0.0.1")
            assert (await forged.login()).status_code == 429
        finally:
            await forged.close()
    finally:
        await stranger.close()
    # The owner's browser signs in at once, and its own failures are limited as well.
    assert (await client.login()).headers["location"] == "/mail"
    await client.post("/logout")
    for _ in range(3):
        assert (await client.login(password="wrong password!")).status_code == 401
    assert (await client.login()).status_code == 429


async def test_ipv6_clients_are_counted_per_64(client: WebmailClient, wm: Running) -> None:
    await client.get("/login")
    for host in ("2001:db8:1:2::5", "2001:db8:1:2:aaaa::9", "2001:db8:1:2::77"):
        response = await client.post(
            "/login", {"address": "bob@example.com", "password": "wrong password!"}, headers={"X-Forwarded-For": host}
        )
        assert response.status_code == 401
    network = await wm.store.webmail_auth.failure_counts("account:x", "ip:2001:db8:1:2::/64", 0)
    assert network.ip == 3
    elsewhere = await wm.store.webmail_auth.failure_counts("account:x", "ip:2001:db8:1:3::/64", 0)
    assert elsewhere.ip == 0


async def test_typed_addresses_are_logged_safely(
    client: WebmailClient, wm: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="continuity.webmail")
    forged = "bob@example.com\r\n2026-12-01 INFO continuity: admin signed in"
    secret = "Tr0ub4dor&3-typed-in-the-wrong-field"
    for address in (forged, secret, "bob@example.com"):
        await client.login(address=address, password="wrong password!")
    lines = [record.getMessage() for record in caplog.records if "sign-in refused" in record.getMessage()]
    assert len(lines) == 3
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert not any(secret in line or "Tr0ub4dor" in line for line in lines)
    assert "<bob@example.com>" in lines[2] and "non-address#" in lines[1]


async def test_the_hard_lock_is_gone_after_the_first_delay(wm: Running, client: WebmailClient) -> None:
    for _ in range(3):
        await client.login(password="wrong password!")
    assert (await client.login()).status_code == 429
    await _age_failures(wm, 60)
    assert (await client.login()).headers["location"] == "/mail"
    # A correct sign-in forgets the account's failures.
    counted = await wm.store.webmail_auth.failure_counts("account:alice@example.com", "ip:127.0.0.1", 0)
    assert counted.account == 0


async def test_a_session_cannot_guess_the_password_in_the_settings(client: WebmailClient, wm: Running) -> None:
    assert (await client.login()).headers["location"] == "/mail"
    await client.get("/settings")
    change: dict[str, object] = {
        "current": "wrong password!",
        "new": "a new password 123",
        "again": "a new password 123",
    }
    for _ in range(3):
        assert (await client.post("/settings/password", change)).status_code == 400
    right = await client.post("/settings/password", {**change, "current": PASSWORD})
    assert right.status_code == 429 and _wait_of(right.text) in range(10, 16)
    # Sign-in is not slowed down by it: it is counted apart.
    other = WebmailClient(wm)
    try:
        assert (await other.login()).headers["location"] == "/mail"
    finally:
        await other.close()
    await _age_failures(wm, 16)
    assert (await client.post("/settings/password", {**change, "current": PASSWORD})).status_code == 303
