"""Hostile HTML mail opened in real headless Chromium: no script runs, no request leaves for a remote host.

The page's functions an XSS payload would call are hooked, dialogs and the console are
recorded, and requests for any host but the appliance are recorded and aborted. A control
test opens the same payloads raw (no sanitizer, no CSP, no sandbox) and shows that the
hooks do catch them there.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Page, Route

from continuity.services.app import Running
from tests.e2e.hostile_vectors import VECTORS
from tests.support.browser import chromium, script_calls, watched_context
from tests.support.webmail import PASSWORD, deliver, mail, web_url, webmail_appliance

_FORBIDDEN_IN_OUTPUT = re.compile(
    r"<script|<style|<link|<meta|<base|<iframe|<object|<embed|<svg|<math|<form|<input|<template|<noscript"
    r"|\son[a-z]+\s*=|javascript:|data:text|expression\(|url\(|attacker\.test",
    re.IGNORECASE,
)


async def _sign_in(page: Page) -> None:
    await page.goto("/login")
    await page.fill("#address", "alice@example.com")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/mail")


async def _body_frame(page: Page) -> Frame:
    for _ in range(100):
        frame = next((f for f in page.frames if f.url.split("?")[0].endswith("/body")), None)
        if frame is not None:
            await frame.wait_for_load_state("load")
            return frame
        await asyncio.sleep(0.05)
    raise AssertionError("the message body frame did not load")


async def _message_ids(running: Running) -> dict[str, int]:
    rows, _total = await running.store.webmail.page("alice@example.com", "INBOX", 0, 200)
    return {row.subject.removeprefix("vector "): row.id for row in rows}


async def test_hostile_html_runs_no_script_and_fetches_nothing_remote(tmp_path: Path) -> None:
    async with webmail_appliance(tmp_path / "data", webmail={"cookie_secure": True}) as running:
        for vector in VECTORS:
            await deliver(running, mail(f"vector {vector.name}", "plain alternative", html=vector.html))
        ids = await _message_ids(running)
        async with chromium() as browser:
            context, watch = await watched_context(browser, web_url(running))
            page = await context.new_page()
            await _sign_in(page)
            failures: list[str] = []
            for vector in VECTORS:
                await page.goto(f"/mail/message/{ids[vector.name]}")
                frame = await _body_frame(page)
                await asyncio.sleep(0.05)
                sandbox = await page.get_attribute("iframe.body", "sandbox")
                assert sandbox == "allow-popups allow-popups-to-escape-sandbox"
                output = (await frame.content()).split("<body>", 1)[1]  # the head is the appliance's own
                if found := _FORBIDDEN_IN_OUTPUT.search(output):
                    failures.append(f"{vector.name}: {found.group(0)!r} in {output[:300]!r}")
                for link in await frame.query_selector_all("a[href]"):
                    href = await link.get_attribute("href") or ""
                    if not href.startswith(("http://", "https://", "mailto:")):
                        failures.append(f"{vector.name}: link to {href!r}")
                calls = await script_calls(page)
                if calls:
                    failures.append(f"{vector.name}: script ran: {calls}")
            await asyncio.sleep(0.3)
            assert failures == []
            assert watch.dialogs == []
            assert watch.remote_requests == []
            assert not [line for line in watch.console if "xss" in line.lower()]
            assert watch.page_errors == []
            # The interception works: asking for remote images does fetch them (and is recorded).
            await page.goto(f"/mail/message/{ids['remote-image']}?images=1")
            await _body_frame(page)
            await asyncio.sleep(0.3)
            assert watch.remote_requests == ["http://attacker.test/remote-image.gif"]
            await context.close()


def _serve_vectors() -> Callable[[Route], Coroutine[Any, Any, None]]:
    async def fulfil(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[1]
        if not name.isdigit():  # a relative URL inside a payload, such as <img src=x>
            await route.fulfill(status=404, body="")
            return
        body = f"<!doctype html><html><body>{VECTORS[int(name)].html}</body></html>"
        await route.fulfill(body=body, content_type="text/html")

    return fulfil


async def test_control_the_hooks_catch_the_raw_payloads() -> None:
    base = "http://127.0.0.1:9"
    async with chromium() as browser:
        context, watch = await watched_context(browser, base)
        page = await context.new_page()
        await page.route(f"{base}/raw/*", _serve_vectors())
        missed = []
        for index, vector in enumerate(VECTORS):
            requests, dialogs = len(watch.remote_requests), len(watch.dialogs)
            with contextlib.suppress(PlaywrightError):  # a payload that navigates away aborts the load
                await page.goto(f"{base}/raw/{index}", wait_until="load", timeout=5000)
            await asyncio.sleep(0.1)
            fired = (
                bool(await script_calls(page)) or len(watch.remote_requests) > requests or len(watch.dialogs) > dialogs
            )
            if vector.fires_raw and not fired:
                missed.append(vector.name)
        assert missed == []
        assert sum(vector.fires_raw for vector in VECTORS) >= 25
        await context.close()
