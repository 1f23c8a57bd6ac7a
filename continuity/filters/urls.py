"""URL stage: links from text and HTML (hidden ones included), local blocklists, deceptive links.

The links come from the message view (plain-text URLs, every anchor href whether or
not it is visible, form actions, image sources). The stage reports links to domains on
the operator's blocklist files, anchors whose visible text names a different site than
their target, links to bare IP addresses, script/data links and forms that submit
elsewhere.
"""

from __future__ import annotations

import ipaddress
import re

from continuity.core.message_view import Link, LinkSource, MessageView
from continuity.core.pipeline import Envelope, Finding, StageReport
from continuity.filters.domains import DomainFeed, registrable, url_host

# Visible text that looks like a URL or a bare domain name.
_LOOKS_LIKE_URL = re.compile(r"(?i)^(?:https?://)?(?:www\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,})(?:[/:?#]\S*)?$")


def _shown_host(text: str) -> str:
    match = _LOOKS_LIKE_URL.match(text.strip())
    return url_host("http://" + match.group(1)) if match else ""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def link_domains(message: MessageView) -> frozenset[str]:
    """Registrable domains of every http(s) link target (anchors, text and forms; not images)."""
    domains = set()
    for link in message.links:
        if link.source is LinkSource.IMAGE:
            continue
        host = url_host(link.url)
        if host:
            domains.add(registrable(host))
    return frozenset(domains)


def scan_links(links: tuple[Link, ...], blocklist: DomainFeed) -> list[Finding]:
    """Findings about links."""
    found: dict[str, Finding] = {}

    def add(code: str, score: float, message: str, evidence: str) -> None:
        existing = found.get(code)
        if existing is None:
            found[code] = Finding(code, score, message, (evidence,))
        elif evidence not in existing.evidence and len(existing.evidence) < 10:
            found[code] = Finding(code, score, message, (*existing.evidence, evidence))

    for link in links:
        url = link.url.strip()
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme in ("javascript", "vbscript", "data") and link.source is not LinkSource.IMAGE:
            add("urls.script_link", 3.0, "has a link that runs code or carries a hidden document", url[:80])
            continue
        host = url_host(url)
        if not host:
            continue
        listed = blocklist.match(host)
        if listed is not None:
            add("urls.blocklisted", 10.0, "links to a known malicious site", listed)
        if _is_ip(host) and link.source is not LinkSource.IMAGE:
            add("urls.ip_address", 2.0, "links to a bare IP address", host)
        if link.source is LinkSource.HREF and link.text:
            shown = _shown_host(link.text)
            if shown and registrable(shown) != registrable(host):
                add(
                    "urls.mismatched_text",
                    4.0,
                    "a link's text shows one site but leads to another",
                    f"{shown} -> {host}",
                )
        if link.source is LinkSource.FORM:
            add("urls.form", 3.0, "contains a form that sends what you type to a website", host)
    return list(found.values())


class UrlStage:
    """Links."""

    name = "urls"

    def __init__(self, blocklist: DomainFeed) -> None:
        self._blocklist = blocklist

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        # Cheap enough (the links are already extracted) to run on the event loop.
        return StageReport(findings=tuple(scan_links(message.links, self._blocklist)))
