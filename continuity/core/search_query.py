"""Turning what a user types into a search box into a safe SQLite FTS5 query.

Users type words and "quoted phrases"; FTS5 syntax characters never reach the query
engine unquoted, so no input can raise a syntax error or change the query's meaning.
Every word becomes a prefix match; all terms must match.
"""

from __future__ import annotations

import hashlib
import re

_TERMS = re.compile(r'"([^"]*)"|(\S+)')
_MAX_TERMS = 16


def owner_token(mailbox: str) -> str:
    """The token that marks a mailbox's rows in the index (letters and digits only)."""
    return "mb" + hashlib.sha256(mailbox.encode()).hexdigest()[:24]


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(text: str, mailbox: str) -> str | None:
    """The FTS5 MATCH expression for text within mailbox, or None when there is nothing to search."""
    terms: list[str] = []
    for match in _TERMS.finditer(text):
        phrase, word = match.group(1), match.group(2)
        if phrase is not None and phrase.strip():
            terms.append(_quote(" ".join(phrase.split())))
        elif word is not None:
            cleaned = "".join(char for char in word if char.isalnum() or char in "@.-_'+")
            if any(char.isalnum() for char in cleaned):
                terms.append(_quote(cleaned) + "*")
        if len(terms) >= _MAX_TERMS:
            break
    if not terms:
        return None
    return f"owner : {owner_token(mailbox)} AND {{subject addresses body}} : ({' AND '.join(terms)})"
