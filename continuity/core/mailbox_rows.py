"""Turning operator input (CLI arguments, CSV rows) into validated Mailbox values."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from continuity.core.addresses import domain_of, normalize_address
from continuity.core.models import Mailbox

CSV_COLUMNS = ("address", "name", "aliases", "alternate_email", "enabled", "password_hash")
_REQUIRED = ("address", "name")
_TRUE = {"1", "true", "yes", "y", "on", ""}
_FALSE = {"0", "false", "no", "n", "off"}


def build_mailbox(
    address: str,
    name: str,
    *,
    domains: Iterable[str],
    aliases: Iterable[str] = (),
    alternate_email: str | None = None,
    enabled: bool = True,
    password_hash: str | None = None,
) -> Mailbox:
    """Validate and normalise the parts of a mailbox; ValueError names the bad part."""
    protected = set(domains)
    canonical = normalize_address(address)
    if domain_of(canonical) not in protected:
        raise ValueError(
            f"{canonical} is not in a protected domain ({', '.join(sorted(protected)) or 'none configured'})"
        )
    display_name = " ".join(name.split())
    if not display_name:
        raise ValueError("the display name must not be empty")
    normalized_aliases = []
    for alias in aliases:
        canonical_alias = normalize_address(alias)
        if domain_of(canonical_alias) not in protected:
            raise ValueError(f"alias {canonical_alias} is not in a protected domain")
        if canonical_alias != canonical and canonical_alias not in normalized_aliases:
            normalized_aliases.append(canonical_alias)
    alternate = normalize_address(alternate_email) if alternate_email else None
    if alternate is not None and domain_of(alternate) in protected:
        # The alternate address must work while the primary is down: not one of ours.
        raise ValueError(f"alternate address {alternate} is in a protected domain; use an outside address")
    return Mailbox(
        address=canonical,
        display_name=display_name,
        aliases=tuple(sorted(normalized_aliases)),
        enabled=enabled,
        alternate_email=alternate,
        password_hash=password_hash,
    )


@dataclass(frozen=True, slots=True)
class RowResult:
    """One CSV data row: the mailbox, or the reason it was rejected."""

    line: int
    mailbox: Mailbox | None
    error: str | None


def _split_aliases(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").replace(";", " ").split() if part]


def _parse_enabled(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"enabled must be true or false, not '{text}'")


def parse_mailbox_csv(text: str, domains: Iterable[str]) -> Iterator[RowResult]:
    """Parse CSV text with a header row; yields a RowResult per data row with its line number.

    Raises ValueError when the header itself is unusable.
    """
    protected = list(domains)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [(column or "").strip().lower() for column in (reader.fieldnames or [])]
    missing = [column for column in _REQUIRED if column not in header]
    if missing:
        raise ValueError(f"the header row lacks the column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}")
    unknown = [column for column in header if column not in CSV_COLUMNS]
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(unknown)}; expected {', '.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            yield RowResult(line, None, "more fields than columns in the header")
            continue
        values = {key: (value or "").strip() for key, value in row.items()}
        if not any(values.values()):
            continue
        try:
            password_hash = values.get("password_hash") or None
            if password_hash is not None and not password_hash.startswith("$argon2"):
                raise ValueError(
                    "password_hash must be an Argon2 hash ($argon2id$...); plain passwords are not imported"
                )
            mailbox = build_mailbox(
                values.get("address", ""),
                values.get("name", ""),
                domains=protected,
                aliases=_split_aliases(values.get("aliases", "")),
                alternate_email=values.get("alternate_email") or None,
                enabled=_parse_enabled(values.get("enabled", "")),
                password_hash=password_hash,
            )
        except ValueError as exc:
            yield RowResult(line, None, str(exc))
            continue
        if mailbox.address in seen:
            yield RowResult(line, None, f"{mailbox.address} already appears on line {seen[mailbox.address]}")
            continue
        seen[mailbox.address] = line
        yield RowResult(line, mailbox, None)
