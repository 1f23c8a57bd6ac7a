"""The quick scans for IBANs, URLs and change-of-bank wording find exactly what a plain regular expression scan finds.

find_ibans, links_in_text and change_wording try their expressions only where str.find
says a match can start or lie; these properties compare them with the expressions run
over the whole text.
"""

from __future__ import annotations

import importlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from continuity.core.message_view import _URL_IN_TEXT, _url_matches
from continuity.filters.bank_details import (
    _CHANGE,
    _CHANGE_WORDING,
    _IBAN_CANDIDATE,
    LONGEST_CHANGE,
    _iban_candidates,
    _normalized,
    change_wording,
    find_ibans,
)

# Pieces that make matches likely, joined with arbitrary text.
_IBAN_PIECES = ["DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "GB29NWBK60161331926819", "IBAN:", "FR76"]
# "\u0130" lower-cases to two characters; "\u017f" (long s) folds to "s" in a case-insensitive expression.
_URL_PIECES = ["http://a.example/x", "HTTPS://B.example", "www.c.example", "hTtP", "WWW.", "\u0130", "\u017f", "(", "."]
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


def _mixed(pieces: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(_TEXT, st.sampled_from(pieces), st.text("0123456789 AZ", max_size=12)), max_size=12).map(
        "".join
    )


@settings(max_examples=400)
@given(_mixed(_IBAN_PIECES))
def test_iban_candidates_match_a_full_scan(text: str) -> None:
    upper = text.upper()
    expected = [(m.start(), m.group(1)) for m in _IBAN_CANDIDATE.finditer(upper)]
    assert [(m.start(), m.group(1)) for m in _iban_candidates(upper)] == expected


@settings(max_examples=400)
@given(_mixed(_URL_PIECES))
def test_url_matches_match_a_full_scan(text: str) -> None:
    expected = [(m.start(), m.group(0)) for m in _URL_IN_TEXT.finditer(text)]
    assert [(m.start(), m.group(0)) for m in _url_matches(text)] == expected


def test_ibans_found_in_running_text() -> None:
    text = "Please pay to IBAN:DE89 3704 0044 0532 0130 00 or GB29NWBK60161331926819, ref 12345678."
    assert find_ibans(text) == ["DE89370400440532013000", "GB29NWBK60161331926819"]


# At least one phrase each expression of _CHANGE_WORDING matches, in its order.
CHANGE_PHRASES = [
    "new wire instructions", "we have switched our bank", "our banking details have been updated",
    "make all outstanding payments to this following", "update the vendor master", "account was frozen",
    "neuen Bankverbindung", "geänderten Bankverbindung", "Bankverbindung hat sich geaendert",
    "Änderung unserer Bankverbindung", "Kontoänderung", "neues Bankkonto", "nouvelles coordonnées bancaires",
    "changement de banque", "nouveau compte bancaire", "modification de nos coordonnees bancaires",
    "nuove coordinate bancarie", "nuovo conto corrente", "variazione delle coordinate bancarie",
    "nuevos datos bancarios", "cambio de banco", "hemos cambiado de cuenta",
    "actualización de nuestros datos bancarios",
    "振込先の口座の変更", "口座を変更", "新しい振込先", "お振込先が変わ",
]  # fmt: skip


def _reference_change(text: str) -> str | None:
    match = _CHANGE.search(_normalized(text))
    return " ".join(match.group(0).split()) if match else None


def test_every_change_phrase_spans_at_most_longest_change() -> None:
    sre_parse = importlib.import_module("re._parser")  # the width of an expression: only the parser knows it
    for pattern in _CHANGE_WORDING:
        flat = pattern.replace(r"\s+", " ").replace(r"\s*", " ?")
        assert "\\s" not in flat, pattern
        assert sre_parse.parse(flat, re.IGNORECASE).getwidth()[1] <= LONGEST_CHANGE, pattern


@pytest.mark.parametrize("phrase", CHANGE_PHRASES)
def test_every_change_phrase_is_found_in_a_long_letter(phrase: str) -> None:
    padding = "Dear customer, thank you for your order.\n" * 200
    spaced = phrase.replace(" ", " \r\n\t ")
    assert change_wording(padding + spaced + "\n" + padding) == phrase


def test_there_is_a_sample_phrase_for_every_expression() -> None:
    assert len(CHANGE_PHRASES) == len(_CHANGE_WORDING)
    for phrase, pattern in zip(CHANGE_PHRASES, _CHANGE_WORDING, strict=True):
        assert re.search(pattern, _normalized(phrase), re.IGNORECASE), (phrase, pattern)


_WORDING_PIECES = [*CHANGE_PHRASES, "bank", "account", "payment", "new", "our", "\n", " ", "\t\r\n", "détails"]
_WORDING_TEXT = st.text(alphabet="abcdeinorstuwBNA ,.\n\täéó口座振込", max_size=40)


@settings(max_examples=400)
@given(st.lists(st.one_of(_WORDING_TEXT, st.sampled_from(_WORDING_PIECES)), max_size=14).map("".join))
def test_change_wording_matches_a_full_scan(text: str) -> None:
    assert change_wording(text) == _reference_change(text)
