"""Lookalike domains: small edit distances and Unicode homoglyphs of protected or known domains.

Homoglyphs come from the Unicode confusables data shipped with confusable-homoglyphs;
the edit distance (optimal string alignment, so one swap of neighbours is one edit) is
computed here because domain labels are short and only a bounded distance is needed.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable

from confusable_homoglyphs import confusables

from continuity.filters.domains import normalize_host, registrable

# Multi-character look-alikes the Unicode data does not cover (they are ASCII).
_ASCII_TRICKS = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("0", "o"), ("1", "l"), ("i", "l"), ("5", "s"))


@functools.lru_cache(maxsize=4096)
def _latin_of(char: str) -> str:
    if char.isascii():
        return char
    try:
        found = confusables.is_confusable(char, greedy=True, preferred_aliases=["latin"])
    except (KeyError, ValueError):
        return char
    if found:
        for homoglyph in found[0].get("homoglyphs", []):
            candidate = str(homoglyph.get("c", ""))
            if candidate.isascii() and candidate.isalnum():
                return candidate.lower()
    return char


@functools.lru_cache(maxsize=20_000)
def skeleton(domain: str) -> str:
    """A form in which homoglyph variants of a domain coincide (IDN decoded, confusables to Latin)."""
    text = domain.lower()
    if "xn--" in text:
        with contextlib.suppress(UnicodeError):
            text = text.encode("ascii").decode("idna")
    text = "".join(_latin_of(char) for char in text)
    for trick, plain in _ASCII_TRICKS:
        text = text.replace(trick, plain)
    return text


def edit_distance(first: str, second: str, bound: int = 3) -> int:
    """Optimal string alignment distance, or bound + 1 when it exceeds bound."""
    if abs(len(first) - len(second)) > bound:
        return bound + 1
    previous2: list[int] = []
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, start=1):
        current = [i] + [0] * len(second)
        for j, b in enumerate(second, start=1):
            cost = 0 if a == b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a == second[j - 2] and first[i - 2] == b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > bound:
            return bound + 1
        previous2, previous = previous, current
    return previous[-1]


def _label(domain: str) -> tuple[str, str]:
    """(registrable label, public suffix) of a registrable domain."""
    label, _, suffix = domain.partition(".")
    return label, suffix


def resembles(candidate: str, target: str) -> bool:
    """True when candidate is a different domain that looks like target."""
    if candidate == target:
        return False
    if skeleton(candidate) == skeleton(target):
        return True
    label, suffix = _label(candidate)
    target_label, target_suffix = _label(target)
    if label == target_label:
        # Same name under another suffix (example.co vs example.com).
        return len(label) >= 4
    limit = 1 if len(target_label) <= 8 else 2
    if min(len(label), len(target_label)) < 4:
        return False
    return edit_distance(skeleton(label), skeleton(target_label), limit) <= limit and suffix == target_suffix


class LookalikeIndex:
    """Protected and known domains, indexed so one lookup compares only plausible candidates."""

    def __init__(self, targets: Iterable[str]) -> None:
        self.targets = frozenset(registrable(normalize_host(target)) for target in targets if target)
        self._skeletons = {skeleton(target): target for target in sorted(self.targets, reverse=True)}
        self._by_length: dict[int, list[str]] = {}
        for target in sorted(self.targets):
            self._by_length.setdefault(len(skeleton(_label(target)[0])), []).append(target)
        self._cache: dict[str, str | None] = {}

    def match(self, domain: str) -> str | None:
        """The target domain that domain imitates, or None (a listed domain imitates nothing)."""
        candidate = registrable(normalize_host(domain))
        if not candidate or candidate in self.targets:
            return None
        cached = self._cache.get(candidate, "")
        if cached != "":
            return cached
        found = self._skeletons.get(skeleton(candidate))
        if found is None:
            length = len(skeleton(_label(candidate)[0]))
            for size in range(length - 2, length + 3):
                found = next((t for t in self._by_length.get(size, ()) if resembles(candidate, t)), None)
                if found is not None:
                    break
            if found is None:
                label = _label(candidate)[0]
                found = next((t for t in self.targets if _label(t)[0] == label and len(label) >= 4), None)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[candidate] = found
        return found
