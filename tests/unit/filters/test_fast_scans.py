"""The quick scans for IBANs and URLs find exactly what a plain regular expression scan finds.

find_ibans and links_in_text try their expressions only where str.find says a match can
start; these properties compare them with the expressions run over the whole text.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from continuity.core.message_view import _URL_IN_TEXT, _url_matches
from continuity.filters.bank_details import _IBAN_CANDIDATE, _iban_candidates, find_ibans

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
