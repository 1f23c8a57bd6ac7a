"""The webmail in real headless Chromium: read, reply with an attachment, Sent, the receiving SMTP
server, search, sign-out; TOTP enrolment and sign-in; a phone screen and the keyboard.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import pyotp
import pytest
from playwright.async_api import Page

from continuity.services.app import Running
from tests.support.browser import chromium, script_calls, watched_context
from tests.support.smtp_sink import SmtpSink
from tests.support.webmail import PASSWORD, all_delivered, deliver, mail, web_url, webmail_appliance


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def wm(tmp_path: Path, sink: SmtpSink) -> AsyncIterator[Running]:
    async with webmail_appliance(
        tmp_path / "data",
        webmail={"cookie_secure": True},
        outbound={"smart_host": f"127.0.0.1:{sink.port}", "tls": "none"},
    ) as running:
        yield running


async def _sign_in(page: Page) -> None:
    await page.goto("/login")
    await page.get_by_label("E-mail address").fill("alice@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_read_reply_with_attachment_search_and_sign_out(wm: Running, sink: SmtpSink, tmp_path: Path) -> None:
    await deliver(wm, mail("Budget 2027", "Please review the budget by Monday.", sender="Sam Lee <sam@remote.test>"))
    attachment = tmp_path / "figures.csv"
    attachment.write_text("quarter,amount\nQ1,100\n")
    async with chromium() as browser:
        context, watch = await watched_context(browser, web_url(wm))
        page = await context.new_page()
        await _sign_in(page)
        await page.wait_for_url("**/mail")
        row = page.locator("tr.unread", has_text="Budget 2027")
        await row.get_by_role("link", name="Budget 2027").click()
        await page.wait_for_url("**/mail/message/*")
        assert "Please review the budget by Monday." in await page.inner_text("#plain-body")
        assert "Sam Lee" in await page.inner_text("#from")
        await page.get_by_role("link", name="Reply", exact=True).click()
        await page.wait_for_url("**/mail/compose*")
        assert await page.input_value("#subject") == "Re: Budget 2027"
        assert "sam@remote.test" in await page.input_value("#to")
        await page.fill("#body", "Approved, figures attached.\n" + await page.input_value("#body"))
        await page.set_input_files("#attachments", str(attachment))
        await page.get_by_role("button", name="Send").click()
        await page.wait_for_url("**/mail?folder=Sent")
        assert await page.locator("table.messages", has_text="Re: Budget 2027").count() == 1
        await all_delivered(wm)
        [received] = await asyncio.to_thread(sink.messages)
        assert received["Subject"] == "Re: Budget 2027"
        assert "Approved, figures attached." in received.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
        [sent_file] = list(received.iter_attachments())  # type: ignore[attr-defined]
        assert sent_file.get_filename() == "figures.csv" and "Q1,100" in sent_file.get_content()
        await page.get_by_label("Search mail").fill("budget")
        await page.get_by_role("button", name="Search").click()
        await page.wait_for_url("**/mail/search?q=budget")
        results = await page.inner_text("table.messages")
        assert "Budget 2027" in results and "Re: Budget 2027" in results
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url("**/login?notice=signed_out")
        await page.goto("/mail")
        assert page.url.endswith("/login")
        assert await script_calls(page) == []
        assert watch.remote_requests == [] and watch.dialogs == []
        await context.close()


async def test_totp_enrolment_and_sign_in(wm: Running) -> None:
    async with chromium() as browser:
        context, _watch = await watched_context(browser, web_url(wm))
        page = await context.new_page()
        await _sign_in(page)
        await page.wait_for_url("**/mail")
        await page.get_by_role("link", name="Settings").click()
        await page.get_by_role("button", name="Set up two-step sign-in").click()
        assert await page.locator("#totp-qr svg").count() == 1
        totp = pyotp.TOTP(await page.inner_text("#totp-secret"))
        enrol_step = int(time.time() // 30)
        await page.get_by_label("Code from the app").fill(totp.at(enrol_step * 30))
        await page.get_by_role("button", name="Turn on").click()
        assert "Two-step sign-in is on" in await page.inner_text("#settings-notice")
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url("**/login?notice=signed_out")
        await _sign_in(page)
        await page.wait_for_url("**/login/totp")
        await page.get_by_label("Code").fill(totp.at(enrol_step * 30))  # already used: refused
        await page.get_by_role("button", name="Continue").click()
        assert "already used" in await page.inner_text("#totp-error")
        await page.get_by_label("Code").fill(totp.at((enrol_step + 1) * 30))
        await page.get_by_role("button", name="Continue").click()
        await page.wait_for_url("**/mail")
        assert await page.locator("h1", has_text="Inbox").count() == 1
        await context.close()


async def test_phone_screen_and_keyboard(wm: Running) -> None:
    await deliver(wm, mail("Keyboard test", "x" * 300, html="<p>" + "wide " * 200 + "</p>"))
    async with chromium() as browser:
        context, _watch = await watched_context(
            browser, web_url(wm), viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        page = await context.new_page()
        await _sign_in(page)
        await page.wait_for_url("**/mail")
        for path in ("/mail", "/mail/compose", "/settings"):
            await page.goto(path)
            overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
        await page.goto("/mail")
        await page.keyboard.press("Tab")
        assert await page.evaluate("() => document.activeElement.textContent") == "Skip to content"
        await page.keyboard.press("Enter")
        link = page.get_by_role("link", name="Keyboard test")
        await link.focus()
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/mail/message/*")
        overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        await context.close()


_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
)


async def test_inline_images_show_in_the_sandboxed_frame(wm: Running) -> None:
    message = mail("Logo", "plain", html='<p>logo <img src="cid:logo@remote.test" alt="logo"></p>')
    html_part = message.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(_PNG, maintype="image", subtype="png", cid="<logo@remote.test>")
    await deliver(wm, message)
    async with chromium() as browser:
        context, watch = await watched_context(browser, web_url(wm))
        page = await context.new_page()
        await _sign_in(page)
        await page.get_by_role("link", name="Logo").click()
        await page.wait_for_url("**/mail/message/*")
        for _ in range(100):
            frame = next((f for f in page.frames if f.url.endswith("/body")), None)
            if frame is not None and await frame.query_selector("img"):
                break
            await asyncio.sleep(0.05)
        assert frame is not None
        await frame.wait_for_load_state("load")
        assert await frame.eval_on_selector("img", "image => image.naturalWidth") == 2
        assert watch.remote_requests == []
        # The image URL is a capability: a wrong token gets nothing.
        source = await frame.eval_on_selector("img", "image => image.getAttribute('src')")
        forged = source.replace(source.split("/")[4], "0" * 32)
        assert (await page.request.get(forged)).status == 404
        await context.close()
