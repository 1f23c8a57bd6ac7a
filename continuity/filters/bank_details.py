"""Finding bank details and change-of-bank wording in message text.

IBANs are checked with the ISO 13616 mod-97 rule and the country's length (a short
table of its own instead of schwifty: only validation is needed here, not its bank
registry). Account numbers are digits that follow an "account number" label in one of
the supported languages. The wording lexicon covers English, German, French, Italian,
Spanish and Japanese.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from continuity.core.text_search import occurrences
from continuity.filters.keywords import KeywordSet

# IBAN length per country (ISO 13616 registry, the countries mail here is likely to name).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip

_IBAN_CANDIDATE = re.compile(r"\b([A-Z]{2}[0-9]{2}(?:[ \u00a0]?[A-Z0-9]){11,30})\b")
# Every ASCII digit becomes "0", so str.find("00") finds two digits in a row.
_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")
_ACCOUNT_LABEL = re.compile(
    r"(?i)(?:account\s*(?:number|no\.?|#|nr\.?)|acct\.?\s*(?:no\.?|#)?|kontonummer|konto[\s-]*nr\.?|"
    r"num[ée]ro\s+de\s+compte|n°\s*de\s+compte|numero\s+(?:di\s+)?conto|conto\s+corrente|"
    r"n[úu]mero\s+de\s+cuenta|cuenta\s+(?:n[°º]|corriente)|口座番号|routing\s+number|sort\s+code)"
    r"[^0-9\n]{0,20}([0-9][0-9 \-]{4,30}[0-9])"
)

_ACCOUNT_KEYWORDS = KeywordSet(
    ("account", "acct", "konto", "compte", "conto", "cuenta", "口座", "routing", "sort code")
)

_CHANGE_WORDING = [
    # English
    r"\b(?:new|updated|changed|change\s+of|different|alternate|alternative)\s+(?:bank(?:ing)?|account|remittance|"
    r"payment|wire)\s+(?:details|account|information|info|instructions|coordinates)",
    r"\b(?:we|i)\s+(?:have\s+)?(?:changed|switched|moved)\s+(?:our|my)\s+bank",
    r"\bour\s+bank(?:ing)?\s+(?:account|details)\s+(?:has|have)\s+(?:changed|been\s+(?:changed|updated))",
    r"\b(?:remit|send|transfer|wire|make)\s+(?:all\s+)?(?:future\s+|the\s+|outstanding\s+)?payments?\s+to\s+"
    r"(?:the|our|this)\s+(?:new|following|updated)",
    r"\bupdate\s+(?:your|the)\s+(?:records|vendor\s+(?:file|master)|payment\s+details|bank\s+details)",
    r"\baccount\s+(?:is|was|has\s+been)\s+(?:under\s+audit|frozen|closed|suspended)",
    # German
    r"\bneuen?\s+bankverbindung",
    r"\bge(?:ä|ae)nderten?\s+bankverbindung",
    r"\bbankverbindung\s+(?:hat\s+sich\s+)?ge(?:ä|ae)ndert",
    r"\b(?:ä|ae)nderung\s+(?:der|unserer|unsere)\s+bankverbindung",
    r"\bkonto(?:ä|ae)nderung",
    r"\bneue[sn]?\s+(?:konto|bankkonto|iban)\b",
    # French
    r"\bnouvelles?\s+coordonn[ée]es\s+bancaires",
    r"\bchangement\s+de\s+(?:rib|coordonn[ée]es\s+bancaires|banque|compte)",
    r"\bnouveau\s+(?:rib|compte(?:\s+bancaire)?|iban)\b",
    r"\bmodification\s+de\s+(?:nos|des|notre)\s+coordonn[ée]es\s+bancaires",
    # Italian
    r"\bnuove\s+coordinate\s+bancarie",
    r"\bnuovo\s+(?:iban|conto(?:\s+corrente)?)\b",
    r"\b(?:cambio|variazione)\s+(?:di\s+|delle\s+|del\s+)?(?:iban|conto|coordinate\s+bancarie|banca)\b",
    # Spanish
    r"\bnuev[oa]s?\s+(?:datos\s+bancarios|n[úu]mero\s+de\s+cuenta|cuenta\s+bancaria|iban)\b",
    r"\bcambio\s+de\s+(?:cuenta|banco|datos\s+bancarios)\b",
    r"\bhemos\s+cambiado\s+(?:de|nuestra|nuestro)\s+(?:banco|cuenta)",
    r"\bactualizaci[óo]n\s+de\s+(?:los\s+|nuestros\s+)?datos\s+bancarios",
    # Japanese
    r"振込先(?:の)?(?:口座)?(?:の)?(?:変更|が変わ)",
    r"口座(?:の|を|が)?変更",
    r"新しい(?:振込先|口座)",
    r"お振込先(?:が|を)?(?:変更|変わ)",
]  # fmt: skip
_CHANGE = re.compile("|".join(f"(?:{pattern})" for pattern in _CHANGE_WORDING), re.IGNORECASE)

_URGENCY_WORDING = [
    r"\burgent(?:ly)?\b",
    r"\basap\b",
    r"\bimmediately\b",
    r"\btoday\b",
    r"\bconfidential\b",
    r"\bdo\s+not\s+(?:call|discuss|share)",
    r"\bkeep\s+this\s+(?:between\s+us|confidential)",
    r"\bby\s+end\s+of\s+day\b",
    r"\bdringend\b",
    r"\bvertraulich\b",
    r"\bheute\s+noch\b",
    r"\bsofort\b",
    r"\burgence\b",
    r"\bconfidentiel(?:le)?\b",
    r"\baujourd'hui\s+m[êe]me\b",
    r"\burgente\b",
    r"\briservat[oa]\b",
    r"\bentro\s+oggi\b",
    r"\bconfidencial\b",
    r"\bhoy\s+mismo\b",
    r"\binmediatamente\b",
    r"至急",
    r"緊急",
    r"内密",
    r"本日中",
]  # fmt: skip
_URGENCY = re.compile("|".join(f"(?:{pattern})" for pattern in _URGENCY_WORDING), re.IGNORECASE)


def iban_is_valid(candidate: str) -> bool:
    """ISO 13616: known country, its length, and the mod-97 check."""
    iban = candidate.replace(" ", "").replace("\u00a0", "").upper()
    if len(iban) < 15 or not iban.isalnum() or IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


def _normalized(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _iban_candidates(upper: str) -> Iterator[re.Match[str]]:
    """What _IBAN_CANDIDATE.finditer(upper) yields, found faster.

    A regular expression scan costs about 20 ns a character (a 10 KB message: 0.2 ms), and
    nearly every character of upper-cased text is a letter it must try. An IBAN starts
    with two letters and two digits, so only the places before a pair of digits are
    tried, and those are found with str.find, which runs at memory speed.
    """
    marks = upper.translate(_DIGITS_AS_ZERO)
    consumed = 0
    at = marks.find("00", 2)
    while at != -1:
        start = at - 2
        letters = upper[start:at]
        if start >= consumed and letters.isascii() and letters.isalpha():
            match = _IBAN_CANDIDATE.match(upper, start)
            if match is not None:
                consumed = match.end()
                yield match
        # at + 1 cannot start an IBAN's check digits: the character before it is a digit.
        at = marks.find("00", at + 2)


def find_ibans(text: str) -> list[str]:
    """Valid IBANs in text, normalised (no spaces), in order of appearance."""
    found: list[str] = []
    for match in _iban_candidates(_normalized(text).upper()):
        raw = match.group(1)
        compact = raw.replace(" ", "").replace("\u00a0", "")
        # A candidate can run into the following word; try the country's exact length.
        length = IBAN_LENGTHS.get(compact[:2])
        if length and len(compact) >= length and iban_is_valid(compact[:length]) and compact[:length] not in found:
            found.append(compact[:length])
    return found


def find_account_numbers(text: str) -> list[str]:
    """Digits (6+) labelled as an account number, normalised to digits only."""
    found: list[str] = []
    lowered = text.lower()
    if not _ACCOUNT_KEYWORDS.any_in(lowered):
        return found
    for match in _ACCOUNT_LABEL.finditer(_normalized(text)):
        digits = "".join(char for char in match.group(1) if char.isdigit())
        if len(digits) >= 6 and digits not in found:
            found.append(digits)
    return found


# Every change phrase contains one of these (tests/unit/filters/test_fast_scans.py checks a
# sample of every phrase); a plain substring test rules out most mail before the much
# slower phrase expression runs, and the expression is tried only near where they occur.
_CHANGE_KEYWORDS = (
    "bank", "banque", "banca", "banco", "account", "remit", "payment", "wire", "records", "vendor", "iban",
    "konto", "rib", "coordonn", "compte", "conto", "coordinate", "cuenta", "口座", "振込",
)  # fmt: skip
_ANY_CHANGE_KEYWORD = KeywordSet(_CHANGE_KEYWORDS)
# The most characters one change phrase can span once whitespace runs are single spaces
# (the same test computes it from the expressions).
LONGEST_CHANGE = 64


def change_wording(text: str) -> str | None:
    """The first change-of-bank phrase in text (its whitespace runs as single spaces), or None.

    The expression runs on the text with whitespace runs collapsed (its phrases only ever
    match whitespace with \\s) and only within LONGEST_CHANGE characters of a keyword:
    a full scan of a 10 KB message with this many alternatives takes milliseconds.
    """
    normalized = _normalized(text)
    lowered_text = normalized.lower()
    if not _ANY_CHANGE_KEYWORD.any_in(lowered_text):
        return None
    flat = " ".join(normalized.split())
    lowered = flat.lower()
    if len(lowered) != len(flat):  # a character whose lower case is longer: positions would not line up
        match = _CHANGE.search(flat)
    else:
        match = _first_change_near(flat, sorted(at for word in _CHANGE_KEYWORDS for at in occurrences(lowered, word)))
    return match.group(0) if match else None


def _first_change_near(flat: str, keyword_starts: list[int]) -> re.Match[str] | None:
    """_CHANGE.search(flat), looking only around the keywords.

    Every match contains a keyword and spans at most LONGEST_CHANGE characters, so it lies
    within that distance of one. A window's end cuts the text, which can fake a word
    boundary there, so each hit is confirmed by matching at its start in the whole text.
    """
    windows: list[list[int]] = []
    for at in keyword_starts:
        start, end = max(0, at - LONGEST_CHANGE), at + LONGEST_CHANGE
        if windows and start <= windows[-1][1]:
            windows[-1][1] = end
        else:
            windows.append([start, end])
    for start, end in windows:
        hit = _CHANGE.search(flat, start, end)
        while hit is not None:
            confirmed = _CHANGE.match(flat, hit.start())
            if confirmed is not None:
                return confirmed
            hit = _CHANGE.search(flat, hit.start() + 1, end)
    return None


def urgency_wording(text: str) -> str | None:
    """The first urgency or secrecy phrase in text, or None."""
    match = _URGENCY.search(_normalized(text))
    return match.group(0) if match else None
