"""Helpers of the webmail tests: passwords, delivering test mail over SMTP, an HTTP client that signs in."""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import httpx

from continuity.passwords import hash_password
from continuity.services.app import Running, start, stop
from tests.conftest import provision_standard_mailboxes
from tests.support.appliance import _merge, make_settings
from webmail.mail.services import WebmailServices

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_HASH = hash_password(PASSWORD)


async def set_password(running: Running, address: str = "alice@example.com") -> None:
    """Give a test mailbox the test password."""
    await running.store.mailboxes.set_password_hash(address, _HASH)


def web_url(running: Running, path: str = "") -> str:
    """A URL on the appliance's web listener."""
    return f"http://127.0.0.1:{running.web_address.port}{path}"


async def deliver(running: Running, message: bytes | EmailMessage, recipients: list[str] | None = None) -> None:
    """Send message to the appliance over SMTP, as an outside sender would."""
    data = message.as_bytes(policy=SMTP) if isinstance(message, EmailMessage) else message

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", running.smtp_address.port, timeout=10) as client:
            client.sendmail("sender@outside.test", recipients or ["alice@example.com"], data)

    await asyncio.to_thread(send)


def mail(subject: str, body: str = "Hello", *, html: str | None = None, sender: str = "Sam <sam@outside.test>",
         to: str = "alice@example.com") -> EmailMessage:  # fmt: skip
    """A message from an outside sender."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash((subject, body)))}@outside.test>"
    message["Date"] = "Sun, 22 Nov 2026 10:00:00 +0000"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(page)
    assert found, f"no CSRF token on the page: {page[:500]}"
    return found.group(1)


class WebmailClient:
    """An HTTP client of the webmail that keeps cookies and the current CSRF token."""

    def __init__(self, running: Running) -> None:
        self.http = httpx.AsyncClient(base_url=web_url(running), follow_redirects=False, timeout=30)
        self.csrf = ""

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        """GET a page and remember its CSRF token."""
        response = await self.http.get(path, **kwargs)  # type: ignore[arg-type]
        found = (
            _CSRF.search(response.text) if response.headers.get("content-type", "").startswith("text/html") else None
        )
        if found:
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, data: dict[str, object] | None = None, **kwargs: object) -> httpx.Response:
        """POST a form with the current CSRF token."""
        return await self.http.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)  # type: ignore[arg-type]

    async def login(self, address: str = "alice@example.com", password: str = PASSWORD) -> httpx.Response:
        """Sign in with address and password."""
        await self.get("/login")
        response = await self.post("/login", {"address": address, "password": password})
        if response.status_code == 303:
            await self.get(response.headers["location"])
        return response

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()


@contextlib.asynccontextmanager
async def webmail_appliance(data_dir: Path, **overrides: Any) -> AsyncIterator[Running]:
    """A running appliance with the standard mailboxes, alice's password set, plain-HTTP cookies."""
    settings = _merge({"webmail": {"cookie_secure": False}}, overrides)
    running = await start(make_settings(data_dir, **settings))
    try:
        await provision_standard_mailboxes(running)
        await set_password(running)
        yield running
    finally:
        await stop(running, grace=5)


def services(running: Running) -> WebmailServices:
    """The webmail services of a running appliance."""
    assert running.webmail is not None
    return running.webmail


async def all_delivered(running: Running, timeout: float = 15.0) -> None:
    """Wait until the outbound queue has nothing left to deliver.

    A receiving server has the whole message once it answered the final 250, which the
    queue records; reading its dump before then could see a file still being written.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while await running.store.outbound.next_due() is not None:
        assert asyncio.get_running_loop().time() < deadline, "the outbound queue did not empty in time"
        await asyncio.sleep(0.05)
