"""The filter stages' expressions stay linear on the worst input for each (bank details, BEC, hijack, URLs, keywords).

Every expression in continuity/filters sees message text, display names or header
values an attacker writes. Each is run on inputs of growing size built against its own
structure (long runs of a repeated class, repeated prefixes of a match that fails at the
end); four times the input may take at most eight times as long. The BEC stage's
address-in-name expression was rewritten (it was quadratic on a long run without "@");
a property checks it finds what the old one found.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from continuity.filters import bank_details, bec, bec_wording, hijack, urls
from continuity.filters.keywords import KeywordSet
from tests.unit.core.test_linear_patterns import grows_linearly

_OLD_ADDRESS_IN_NAME = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def test_iban_candidates_are_linear() -> None:
    grows_linearly(lambda n: "DE00 " * n, bank_details.find_ibans, 5_000)
    grows_linearly(lambda n: "DE00" + "A" * n, bank_details.find_ibans, 20_000)
    grows_linearly(lambda n: "DE00" * n, bank_details._IBAN_CANDIDATE.findall, 5_000)


def test_account_labels_are_linear() -> None:
    label = bank_details._ACCOUNT_LABEL
    grows_linearly(lambda n: "account" + " " * n, label.findall, 20_000)
    grows_linearly(lambda n: ("acct" + " " * 30 + "x") * n, bank_details.find_account_numbers, 500)
    grows_linearly(lambda n: "konto" + "-" * n, label.findall, 20_000)
    grows_linearly(lambda n: "numero" + " " * n + "di" + " " * n, label.findall, 10_000)
    grows_linearly(lambda n: "account number " + "1 " * n, label.findall, 10_000)


def test_change_wording_is_linear() -> None:
    grows_linearly(lambda n: "bank " * n, bank_details.change_wording, 5_000)
    grows_linearly(lambda n: "İ bank " * n, bank_details.change_wording, 3_000)  # the whole-text search
    grows_linearly(lambda n: "new " * n, bank_details._CHANGE.search, 5_000)
    grows_linearly(lambda n: "our" + " " * n + "bank", bank_details._CHANGE.search, 20_000)


def test_urgency_wording_is_linear() -> None:
    grows_linearly(lambda n: "do" + " " * n, bank_details.urgency_wording, 20_000)
    grows_linearly(lambda n: "do not " * n, bank_details.urgency_wording, 3_000)
    grows_linearly(lambda n: "keep" + " " * n + "this", bank_details.urgency_wording, 20_000)


def test_bec_name_expressions_are_linear() -> None:
    grows_linearly(lambda n: "-a" * n, bec.normalize_name, 20_000)
    grows_linearly(lambda n: "a" * n, bec.addresses_in_name, 20_000)
    grows_linearly(lambda n: "a@" + "a" * n, bec.addresses_in_name, 20_000)
    grows_linearly(lambda n: "a@a." * n, bec.addresses_in_name, 5_000)
    grows_linearly(lambda n: "a.b+c" * n + "@", bec.addresses_in_name, 5_000)


name_text = st.text(alphabet="ab.+-_@ \u00e9", max_size=40)


@given(name_text)
@example("a@b.c.+x@d.e")
@example("x@y@z.com")
@example("é@é.é")
def test_addresses_in_name_finds_what_the_old_expression_found(text: str) -> None:
    assert bec.addresses_in_name(text) == _OLD_ADDRESS_IN_NAME.findall(text)


def test_dkim_domain_is_linear() -> None:
    search = hijack._DKIM_DOMAIN.search
    grows_linearly(lambda n: ";" + " " * n, search, 20_000)
    grows_linearly(lambda n: "; d" + " " * n, search, 20_000)
    grows_linearly(lambda n: "; d = ;" * n, search, 5_000)


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "a." * n + "!",
        lambda n: "ab." * n + "-",
        lambda n: "a.bc/" + "x" * n + " y",
        lambda n: "a-" * n + ".",
        lambda n: "www." * n,
    ],
    ids=["labels-then-bang", "labels-then-dash", "path-then-space", "hyphens", "www"],
)
def test_shown_host_is_linear(make: Callable[[int], str]) -> None:
    grows_linearly(make, urls._LOOKS_LIKE_URL.match, 10_000)


def test_keyword_sets_are_linear() -> None:
    words = KeywordSet(("account", "bank", "konto"))
    grows_linearly(lambda n: "accoun" * n, words.any_in, 50_000)


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "pw " * n,
        lambda n: "password: " * n,
        lambda n: "xpasswordx " * n,
        lambda n: "hasło" + " " * n,
        lambda n: "パスワード" * n,
    ],
    ids=["short-word", "word-and-colon", "unbounded", "spaces", "japanese"],
)
def test_password_scan_is_linear(make: Callable[[int], str]) -> None:
    # The lure scans use no expression: a string search per word, a bounded look after each hit.
    grows_linearly(make, hijack.password_given, 5_000)


def test_lure_wording_scans_are_linear() -> None:
    phrases = bec_wording.PAYMENT_PHRASES + bec_wording.URGENCY_PHRASES + bec_wording.SECRECY_PHRASES
    grows_linearly(lambda n: "awire transfer" * n, lambda text: bec_wording.find_phrase(text, phrases), 5_000)
    grows_linearly(lambda n: "urgent " * n, lambda text: bec_wording.pressure_wording("", text), 5_000)
    grows_linearly(lambda n: "a" * n, lambda text: bec_wording.pressure_wording("wire transfer", text), 20_000)
    grows_linearly(lambda n: "https://x.test/" + "a/" * n + "b.zip", hijack._lure_kind, 10_000)
