"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, with hooks that catch script runs.

Every page gets an init script that wraps the functions an XSS payload would call
(alert, confirm, prompt, print, fetch, XMLHttpRequest, WebSocket, sendBeacon, window.open,
console; eval and Function stay: Playwright itself needs them) and
records each call; the browser's console and dialogs are recorded too, and every request
for another host than the appliance is recorded and aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, Route, async_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
HOOKS = """
(() => {
  const calls = [];
  Object.defineProperty(window, '__xssCalls', { value: calls });
  const wrap = (object, name) => {
    const original = object[name];
    if (typeof original !== 'function') return;
    object[name] = function (...args) { calls.push(name + ':' + String(args[0]).slice(0, 80)); return undefined; };
  };
  for (const name of ['alert', 'confirm', 'prompt', 'print', 'fetch', 'open']) wrap(window, name);
  wrap(navigator, 'sendBeacon');
  for (const name of ['log', 'info', 'warn', 'error']) {
    const original = console[name].bind(console);
    console[name] = (...args) => {
      calls.push('console.' + name + ':' + String(args[0]).slice(0, 80));
      original(...args);
    };
  }
  window.XMLHttpRequest = function () { calls.push('XMLHttpRequest'); };
  window.WebSocket = function (url) { calls.push('WebSocket:' + url); };
})();
"""


@dataclass
class Watch:
    """What pages did that they should not have."""

    allowed_host: str
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    remote_requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def watched_context(browser: Browser, base_url: str, **options: object) -> tuple[BrowserContext, Watch]:
    """A browser context that records script runs and blocks requests to any other host."""
    host = urlsplit(base_url).hostname or ""
    watch = Watch(host)
    context = await browser.new_context(base_url=base_url, **options)  # type: ignore[arg-type]
    await context.add_init_script(HOOKS)

    async def route(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname != host and not url.startswith(("data:", "about:", "blob:")):
            watch.remote_requests.append(url)
            await route.abort()
        else:
            await route.continue_()

    await context.route("**/*", route)

    def on_page(page: Page) -> None:
        page.on("console", lambda message: watch.console.append(_console_text(message)))
        page.on("dialog", lambda dialog: _dismiss(dialog, watch))
        page.on("pageerror", lambda error: watch.page_errors.append(str(error)))

    context.on("page", on_page)
    return context, watch


def _console_text(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


_PENDING: set[asyncio.Future[None]] = set()


def _dismiss(dialog: Dialog, watch: Watch) -> None:
    watch.dialogs.append(f"{dialog.type}: {dialog.message}")
    dismissal = asyncio.ensure_future(dialog.dismiss())
    _PENDING.add(dismissal)
    dismissal.add_done_callback(_PENDING.discard)


async def script_calls(page: Page) -> list[str]:
    """The hooked calls recorded in every frame of page that can report them."""
    calls: list[str] = []
    for frame in page.frames:
        with contextlib.suppress(Exception):
            calls += await frame.evaluate("() => Array.from(window.__xssCalls || [])")
    return calls
