"""Finding every place a word occurs in a text with str.find, which runs at memory speed.

The filters use it to try their regular expressions only where a match can start, instead
of letting the expression scan every character (about 20 ns each).
"""

from __future__ import annotations


def occurrences(text: str, word: str) -> list[int]:
    """Every index at which word starts in text (overlapping ones included), in order."""
    found: list[int] = []
    at = text.find(word)
    while at != -1:
        found.append(at)
        at = text.find(word, at + 1)
    return found
