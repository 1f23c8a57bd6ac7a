"""KeywordSet.any_in answers exactly what ``any(word in text for word in words)`` answers."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from continuity.filters.bank_details import _CHANGE_KEYWORDS
from continuity.filters.keywords import KeywordSet

_WORDS = ("bank", "konto", "口座", "振込", "sort code", "ß", "İ")
_KEYWORDS = KeywordSet(_WORDS)
# Text likely to hold the words, parts of them, and characters whose UTF-8 bytes overlap theirs.
_PIECES = [*_WORDS, "ban", "ank", "口", "座", "振", "\udc80", "\u0130", "sort  code", "BANK"]
_TEXT = st.lists(
    st.one_of(st.text(alphabet=st.characters(codec="utf-8"), max_size=20), st.sampled_from(_PIECES)), max_size=12
).map("".join)


@settings(max_examples=500)
@given(_TEXT)
def test_any_in_is_any_word_in_the_text(text: str) -> None:
    assert _KEYWORDS.any_in(text) == any(word in text for word in _WORDS)


def test_the_change_keywords_are_found_anywhere_in_a_long_text() -> None:
    keywords = KeywordSet(_CHANGE_KEYWORDS)
    filler = "lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 200
    assert not keywords.any_in(filler)
    for word in _CHANGE_KEYWORDS:
        assert keywords.any_in(filler + word), word
        assert keywords.any_in(word + filler), word
        assert keywords.any_in(filler[:5000] + word + filler[5000:]), word


def test_each_thread_scans_with_its_own_scratch_space() -> None:
    texts = ["nothing here " * 500, "nothing here " * 500 + "konto", "口座" + "x" * 3000]
    expected = [False, True, True]
    failures: list[str] = []

    def scan() -> None:
        for _ in range(300):
            if [_KEYWORDS.any_in(text) for text in texts] != expected:
                failures.append(threading.current_thread().name)
                return

    threads = [threading.Thread(target=scan, name=f"scan-{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_an_empty_set_or_word_is_refused() -> None:
    with pytest.raises(ValueError, match="needs words"):
        KeywordSet([])
    with pytest.raises(ValueError, match="needs words"):
        KeywordSet(["bank", ""])
