"""Validating operator input for mailboxes, and CSV parsing with line numbers."""

from __future__ import annotations

import pytest

from continuity.core.mailbox_rows import build_mailbox, parse_mailbox_csv

DOMAINS = ["example.com"]


def test_build_mailbox_normalises() -> None:
    mailbox = build_mailbox(
        "Alice@Example.com",
        "  Alice   Example ",
        domains=DOMAINS,
        aliases=["A@example.com", "alice@example.com", "a@example.com"],
        alternate_email="Alice@Home.test",
    )
    assert mailbox.address == "alice@example.com"
    assert mailbox.display_name == "Alice Example"
    assert mailbox.aliases == ("a@example.com",)
    assert mailbox.alternate_email == "alice@home.test"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"address": "x@other.test"}, "not in a protected domain"),
        ({"aliases": ["y@other.test"]}, "alias y@other.test is not in a protected domain"),
        ({"alternate_email": "me@example.com"}, "use an outside address"),
        ({"name": "   "}, "display name must not be empty"),
    ],
)
def test_build_mailbox_rejects(kwargs: dict[str, object], message: str) -> None:
    arguments = {"address": "x@example.com", "name": "X"} | kwargs
    with pytest.raises(ValueError, match=message):
        build_mailbox(arguments.pop("address"), arguments.pop("name"), domains=DOMAINS, **arguments)  # type: ignore[arg-type]


def test_csv_line_numbers_count_quoted_newlines() -> None:
    text = 'address,name\n"a@example.com","A\nmultiline"\nbad,B\n\nc@example.com,C\n'
    rows = list(parse_mailbox_csv(text, DOMAINS))
    assert [(row.line, row.error is None) for row in rows] == [(3, True), (4, False), (6, True)]


def test_csv_refuses_plain_passwords() -> None:
    [row] = parse_mailbox_csv("address,name,password_hash\na@example.com,A,hunter2\n", DOMAINS)
    assert row.error is not None and "Argon2" in row.error


def test_csv_too_many_fields() -> None:
    [row] = parse_mailbox_csv("address,name\na@example.com,A,extra\n", DOMAINS)
    assert row.error == "more fields than columns in the header"
