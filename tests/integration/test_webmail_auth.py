"""Webmail sign-in over a real socket: CSRF, session fixation, throttling, expiry, sign-out, headers."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pyotp

from continuity.services.app import Running
from continuity.store.sqlite import SqliteStore
from tests.support.webmail import PASSWORD, WebmailClient, webmail_appliance


async def test_sign_in_and_out(client: WebmailClient) -> None:
    assert (await client.get("/mail")).headers["location"] == "/login"
    response = await client.login()
    assert response.status_code == 303 and response.headers["location"] == "/mail"
    page = await client.get("/mail")
    assert page.status_code == 200 and "alice@example.com" in page.text
    assert (await client.post("/logout")).headers["location"] == "/login?notice=signed_out"
    assert (await client.get("/mail")).headers["location"] == "/login"


async def test_wrong_password_is_refused_with_a_sentence(client: WebmailClient) -> None:
    response = await client.login(password="wrong password!")
    assert response.status_code == 401
    assert "The address or the password is not right." in response.text
    unknown = await client.login(address="nobody@example.com")
    assert unknown.status_code == 401 and "The address or the password is not right." in unknown.text
    disabled = await client.login(address="carol@example.net")
    assert disabled.status_code == 401


async def test_state_changing_requests_need_the_csrf_token(client: WebmailClient, wm: Running) -> None:
    await client.login()
    await client.get("/mail")
    assert (await client.http.post("/mail/folders", data={"name": "Stolen"})).status_code == 403
    forged = await client.http.post("/mail/folders", data={"name": "Stolen", "csrf_token": "x" * 43})
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    other_site = await client.http.post(
        "/mail/folders", data={"name": "Stolen", "csrf_token": client.csrf}, headers={"Origin": "https://evil.test"}
    )
    assert other_site.status_code == 403
    assert (await client.http.post("/logout")).status_code == 403  # signing out needs the token too
    assert [f.name for f in await wm.store.webmail.folders("alice@example.com") if not f.standard] == []
    assert (await client.post("/mail/folders", {"name": "Projects"})).status_code == 303
    assert [f.name for f in await wm.store.webmail.folders("alice@example.com") if not f.standard] == ["Projects"]


async def test_login_form_needs_its_pre_session_token(client: WebmailClient) -> None:
    await client.get("/login")
    response = await client.http.post("/login", data={"address": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 403
    client.http.cookies.clear()
    replayed = await client.http.post(
        "/login", data={"address": "alice@example.com", "password": PASSWORD, "csrf_token": client.csrf}
    )
    assert replayed.status_code == 403  # the token without its cookie is worthless


async def test_session_fixation_is_impossible(client: WebmailClient, wm: Running) -> None:
    planted = "attacker-chosen-session-value-0123456789abcdef"
    client.http.cookies.set("cw_session", planted, domain="127.0.0.1")
    await client.login()
    issued = client.http.cookies.get("cw_session")
    assert issued and issued != planted
    assert await wm.store.webmail_auth.session(planted) is None
    # A session taken before sign-in never becomes a signed-in one.
    first = WebmailClient(wm)
    try:
        await first.login()
        before = first.http.cookies.get("cw_session")
        assert before
        await first.post("/logout")
        assert await wm.store.webmail_auth.session(before) is None
    finally:
        await first.close()


async def test_cookie_attributes(client: WebmailClient, tmp_path: Path) -> None:
    response = await client.login()
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    async with webmail_appliance(tmp_path / "secure", webmail={"cookie_secure": True}) as secure:
        web = WebmailClient(secure)
        try:
            page = await web.get("/login")
            pre = page.headers["set-cookie"]
            assert pre.startswith("__Host-cw_pre=") and "Secure" in pre and "HttpOnly" in pre
        finally:
            await web.close()


async def test_brute_force_is_throttled_per_account_and_per_ip(client: WebmailClient, wm: Running) -> None:
    for _ in range(3):
        assert (await client.login(password="wrong password!")).status_code == 401
    throttled = await client.login()  # even the right password is refused now
    assert throttled.status_code == 429
    assert "Too many failed sign-in attempts for this account" in throttled.text
    assert (await client.login(address="bob@example.com", password="wrong password!")).status_code == 401
    assert (await client.login(address="bob@example.com", password="wrong password!")).status_code == 401
    # Six failures from this address: every account is refused from here.
    assert (await client.login(address="bob@example.com", password="wrong password!")).status_code == 401
    ip_throttled = await client.login(address="bob@example.com")
    assert ip_throttled.status_code == 429 and "your network address" in ip_throttled.text
    failures = await wm.store.webmail_auth.failure_counts("account:alice@example.com", "ip:127.0.0.1", 0)
    assert failures.account == 3 and failures.ip == 6


async def test_sessions_expire(client: WebmailClient, wm: Running) -> None:
    await client.login()
    token = client.http.cookies.get("cw_session")
    assert token
    record = await wm.store.webmail_auth.session(token)
    assert record is not None

    def age(connection: sqlite3.Connection) -> None:
        connection.execute(
            "UPDATE webmail_sessions SET last_seen = ? WHERE token_hash = ?", (time.time() - 31 * 60, record.token_hash)
        )

    assert isinstance(wm.store, SqliteStore)
    await wm.store.database.write(age)
    assert (await client.get("/mail")).headers["location"] == "/login"
    assert await wm.store.webmail_auth.session(token) is None
    # An active session still ends session_max_hours after sign-in.
    await client.login()
    active = client.http.cookies.get("cw_session")
    assert active and (await client.get("/mail")).status_code == 200
    fresh = await wm.store.webmail_auth.session(active)
    assert fresh is not None

    def born_long_ago(connection: sqlite3.Connection) -> None:
        connection.execute(
            "UPDATE webmail_sessions SET created_at = ? WHERE token_hash = ?",
            (time.time() - 13 * 3600, fresh.token_hash),
        )

    await wm.store.database.write(born_long_ago)
    assert (await client.get("/mail")).headers["location"] == "/login"


async def test_security_headers(client: WebmailClient) -> None:
    page = await client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    css = await client.get("/static/webmail.css")
    assert css.status_code == 200 and css.headers["x-content-type-options"] == "nosniff"


async def test_totp_second_factor(client: WebmailClient, wm: Running) -> None:
    await client.login()
    await client.get("/settings")
    await client.post("/settings/totp/start")
    page = await client.get("/settings")
    assert "<svg" in page.text
    record = await wm.store.webmail_auth.totp("alice@example.com")
    assert record is not None and not record.enabled
    totp = pyotp.TOTP(record.secret)
    enrol_step = int(time.time() // 30)
    enrol_code = totp.at(enrol_step * 30)
    wrong = "000000" if enrol_code != "000000" else "111111"
    assert (await client.post("/settings/totp/confirm", {"code": wrong})).status_code == 400
    assert (await client.post("/settings/totp/confirm", {"code": enrol_code})).status_code == 303
    await client.post("/logout")
    # Password alone is no longer enough.
    response = await client.login()
    assert response.headers["location"] == "/login/totp"
    half = client.http.cookies.get("cw_session")
    assert (await client.get("/mail")).headers["location"] == "/login"
    await client.get("/login/totp")
    # The code used for enrolment cannot be replayed.
    assert (await client.post("/login/totp", {"code": enrol_code})).status_code == 401
    step = enrol_step + 1  # within the accepted drift of one step
    done = await client.post("/login/totp", {"code": totp.at(step * 30)})
    assert done.status_code == 303 and done.headers["location"] == "/mail"
    full = client.http.cookies.get("cw_session")
    assert full and full != half and await wm.store.webmail_auth.session(half or "") is None
    assert (await client.get("/mail")).status_code == 200
    audited = [entry.record for entry in await wm.store.audit.list()]
    assert [(r.actor, r.action) for r in audited if r.action.startswith("webmail.")] == [
        ("webmail:alice@example.com", "webmail.totp_on")
    ]
    assert (await wm.store.audit.verify()).ok


async def test_activation_link_needs_a_public_url(client: WebmailClient) -> None:
    await client.get("/activate")
    response = await client.post("/activate", {"address": "bob@example.com"})
    assert response.status_code == 503 and "not set up" in response.text


async def test_throttle_sees_the_client_behind_the_local_reverse_proxy(client: WebmailClient, wm: Running) -> None:
    proxied = {"X-Forwarded-For": "203.0.113.5"}
    await client.get("/login")
    for _ in range(2):
        response = await client.post(
            "/login", {"address": "bob@example.com", "password": "wrong password!"}, headers=proxied
        )
        assert response.status_code == 401
    failures = await wm.store.webmail_auth.failure_counts("account:bob@example.com", "ip:203.0.113.5", 0)
    assert failures.ip == 2
    direct = await wm.store.webmail_auth.failure_counts("account:bob@example.com", "ip:127.0.0.1", 0)
    assert direct.ip == 0


async def test_signing_in_again_during_the_second_step(client: WebmailClient, wm: Running) -> None:
    await wm.store.webmail_auth.start_totp("alice@example.com", pyotp.random_base32())
    await wm.store.webmail_auth.use_totp_step("alice@example.com", 1, enable=True)
    assert (await client.login()).headers["location"] == "/login/totp"
    again = await client.login()  # back to the first form, e.g. with the browser's back button
    assert again.status_code == 303 and again.headers["location"] == "/login/totp"
