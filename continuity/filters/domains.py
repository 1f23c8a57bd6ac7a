"""Domain helpers shared by the stages: host of a URL, registrable domain, domain list files.

The registrable ("organizational") domain comes from the Public Suffix List bundled
with publicsuffix2 (the same list authheaders uses for DMARC alignment).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path

from publicsuffix2 import PublicSuffixList

log = logging.getLogger("continuity.filters")

_PSL = PublicSuffixList()


def normalize_host(host: str) -> str:
    """Lower-case, without trailing dot, IDNA (punycode) form when it can be encoded."""
    text = host.strip().strip(".").lower()
    if not text.isascii():
        try:
            return text.encode("idna").decode("ascii")
        except UnicodeError:
            return text
    return text


@functools.lru_cache(maxsize=50_000)
def registrable(host: str) -> str:
    """The registrable domain of host (example.co.uk for a.b.example.co.uk); host itself when unknown."""
    text = normalize_host(host)
    if not text or text.replace(".", "").isdigit() or ":" in text:
        return text
    found = str(_PSL.get_sld(text, strict=False) or "")
    if "." not in found:
        # A suffix the list does not know (e.g. .test): the last two labels.
        found = ".".join(text.split(".")[-2:])
    return found


def url_host(url: str) -> str:
    """The host of a URL ('' when it has none); www.example.com without scheme counts as http."""
    text = url.strip()
    if text.lower().startswith("www."):
        text = "http://" + text
    try:
        host = urllib.parse.urlsplit(text).hostname or ""
    except ValueError:
        return ""
    return normalize_host(host)


def parents(host: str) -> Iterable[str]:
    """host and each parent domain (a.b.c, b.c, c)."""
    labels = host.split(".")
    for index in range(len(labels)):
        yield ".".join(labels[index:])


def read_domain_list(text: str) -> frozenset[str]:
    """Domains from a list file's text: one per line, '#' comments, blank lines ignored."""
    domains = set()
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            domains.add(normalize_host(entry.split()[0]))
    return frozenset(domains)


class DomainFeed:
    """Domains read from files, reread when a file changes (checked at most every interval seconds)."""

    def __init__(self, paths: Sequence[Path], builtin: Iterable[str] = (), interval: float = 10.0) -> None:
        self._paths = tuple(paths)
        self._builtin = frozenset(normalize_host(domain) for domain in builtin)
        self._interval = interval
        self._stamps: tuple[float, ...] = ()
        self._domains = self._builtin
        self._checked = 0.0
        self._lock = threading.Lock()
        self._reload()

    def _stamp(self) -> tuple[float, ...]:
        stamps = []
        for path in self._paths:
            try:
                stamps.append(path.stat().st_mtime)
            except OSError:
                stamps.append(-1.0)
        return tuple(stamps)

    def _reload(self) -> None:
        domains = set(self._builtin)
        for path in self._paths:
            try:
                domains |= read_domain_list(path.read_text(encoding="utf-8", errors="replace"))
            except OSError as exc:
                log.warning("cannot read domain list %s: %s", path, exc)
        self._domains = frozenset(domains)
        self._stamps = self._stamp()

    @property
    def domains(self) -> frozenset[str]:
        """The current set (files rechecked when the interval has passed)."""
        now = time.monotonic()
        if self._paths and now - self._checked > self._interval:
            with self._lock:
                self._checked = now
                if self._stamp() != self._stamps:
                    self._reload()
        return self._domains

    def match(self, host: str) -> str | None:
        """The listed domain that host is or is under, or None."""
        domains = self.domains
        return next((parent for parent in parents(host) if parent in domains), None)
