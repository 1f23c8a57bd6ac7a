"""Every regular expression in continuity/ and webmail/ is in this inventory, with why it is safe.

The inventory is found by reading the source (every ``re.compile``, ``re.match``,
``re.sub`` ... call and every module that uses Hyperscan), so a new expression fails
this test until it is listed here. An expression that sees untrusted input names the
test that measures its growth on its worst inputs; one that sees only the operator's
own configuration says so. Expressions outside the standard ``re`` module that see
mail are listed in EXTERNAL (html.parser's and the email package's own).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit import test_linear_patterns_adapters, test_linear_patterns_core, test_linear_patterns_filters
from tests.unit.core import test_linear_patterns

ROOT = Path(__file__).resolve().parents[2]
_RE_CALLS = frozenset({"compile", "match", "search", "sub", "subn", "findall", "finditer", "split", "fullmatch"})

_CORE = "tests/unit/test_linear_patterns_core.py"
_FILTERS = "tests/unit/test_linear_patterns_filters.py"
_ADAPTERS = "tests/unit/test_linear_patterns_adapters.py"
_FIRST = "tests/unit/core/test_linear_patterns.py"

# (module, name) -> (test that measures it, or "" when it sees no untrusted input; why it is linear or safe).
INVENTORY: dict[tuple[str, str], tuple[str, str]] = {
    ("continuity/core/message_view.py", "_CONTAINER_TYPE"): (
        f"{_CORE}::test_message_view_expressions_are_linear",
        "literal prefix, then one run of a class that cannot contain what follows",
    ),
    ("continuity/core/message_view.py", "_URL_IN_TEXT"): (
        f"{_CORE}::test_message_view_expressions_are_linear",
        "literal start, then one run of a class with nothing after it (never gives back)",
    ),
    ("continuity/core/message_view.py", "_MESSAGE_ID"): (
        f"{_CORE}::test_message_view_expressions_are_linear",
        "'<' then a run that excludes '<': runs from different starts never overlap",
    ),
    ("continuity/core/message_view.py", "_MARKUP_OPENING"): (
        f"{_CORE}::test_html_scan_is_linear_on_unfinished_markup",
        "'<' and an optional literal: constant work per position",
    ),
    ("continuity/core/message_view.py", "_COMMENT_CLOSE"): (
        f"{_CORE}::test_message_view_expressions_are_linear",
        "'--', spaces, '>': a run of spaces belongs to one '--' only",
    ),
    ("continuity/core/mime_view.py", "_TAGS"): (
        f"{_FIRST}::test_html_to_text_is_linear_on_unclosed_blocks_and_tags",
        "rewritten earlier: a tag holds no '<', so runs never overlap",
    ),
    ("continuity/core/mime_view.py", "_BLOCK_OPEN"): (
        f"{_FIRST}::test_html_to_text_is_linear_on_unclosed_blocks_and_tags",
        "literal alternatives and a word boundary: constant work per position",
    ),
    ("continuity/core/mime_view.py", "_BLOCK_CLOSE"): (
        f"{_FIRST}::test_html_to_text_is_linear_on_unclosed_blocks_and_tags",
        "searched once per block name that is closed; an unclosed name is not searched again",
    ),
    ("continuity/core/dsn.py", "_ENHANCED"): (
        f"{_CORE}::test_small_expressions_are_linear",
        "anchored, bounded repeats ({1,3})",
    ),
    ("continuity/core/journal.py", "_BOUNDARY"): (
        f"{_CORE}::test_journal_boundary_is_linear",
        "literal 'boundary', then runs of disjoint classes",
    ),
    ("continuity/core/search_query.py", "_TERMS"): (
        f"{_CORE}::test_small_expressions_are_linear",
        "a quoted phrase reaches the next quote (only the last quote can fail), else one run of non-space",
    ),
    ("continuity/core/replay_journal.py", "_THROTTLE_WORDS"): (
        f"{_CORE}::test_small_expressions_are_linear",
        "literal alternatives: constant work per position",
    ),
    ("continuity/core/replay_journal.py", "_PERMANENT_CODES"): (
        f"{_CORE}::test_small_expressions_are_linear",
        "literal alternatives in brackets: constant work per position",
    ),
    ("continuity/core/addresses.py", "_DOMAIN_LABEL"): (
        f"{_CORE}::test_small_expressions_are_linear",
        "anchored, one bounded run ({1,63})",
    ),
    ("continuity/core/addresses.py", "_LOCAL_ATOM"): (
        f"{_CORE}::test_small_expressions_are_linear",
        "anchored; the repeated group starts with '.', which the runs cannot hold (and the input is 64 at most)",
    ),
    ("continuity/core/imap_syntax.py", "_ATOM"): (
        f"{_CORE}::test_small_expressions_are_linear",
        "anchored, one run of one class",
    ),
    ("continuity/filters/bank_details.py", "_IBAN_CANDIDATE"): (
        f"{_FILTERS}::test_iban_candidates_are_linear",
        "bounded repeats ({11,30}) whose optional space is forced by the next character",
    ),
    ("continuity/filters/bank_details.py", "_ACCOUNT_LABEL"): (
        f"{_FILTERS}::test_account_labels_are_linear",
        "literal labels; the runs after each are bounded ({0,20}, {4,30}) or end at the next label",
    ),
    ("continuity/filters/bank_details.py", "_CHANGE"): (
        f"{_FILTERS}::test_change_wording_is_linear",
        "literal phrases whose spaces match single spaces (the text's runs are collapsed first)",
    ),
    ("continuity/filters/bank_details.py", "_URGENCY"): (
        f"{_FILTERS}::test_urgency_wording_is_linear",
        "literal phrases; a run of spaces belongs to the one word before it",
    ),
    ("continuity/filters/bec.py", "_NAME_NOISE"): (
        f"{_FILTERS}::test_bec_name_expressions_are_linear",
        "one run of one class, nothing after it",
    ),
    ("continuity/filters/bec.py", "_RUN_OR_ADDRESS"): (
        f"{_FILTERS}::test_bec_name_expressions_are_linear",
        "rewritten: a run is taken whole (possessive) and tried once, not from each of its characters",
    ),
    ("continuity/filters/hijack.py", "_DKIM_DOMAIN"): (
        f"{_FILTERS}::test_dkim_domain_is_linear",
        "starts only at ';' or the start; the runs after each ';' end at the next one",
    ),
    ("continuity/filters/urls.py", "_LOOKS_LIKE_URL"): (
        f"{_FILTERS}::test_shown_host_is_linear",
        "anchored; labels are separated by '.', which they cannot hold, so each is matched one way",
    ),
    ("continuity/filters/keywords.py", "hyperscan"): (
        f"{_FILTERS}::test_keyword_sets_are_linear",
        "Hyperscan literals: an automaton, linear by construction",
    ),
    ("continuity/adapters/smtp_session.py", "_SIMPLE_PATH"): (
        f"{_ADAPTERS}::test_smtp_paths_are_linear",
        "rewritten: the space run and the parameters are possessive",
    ),
    ("continuity/adapters/smtp_session.py", "_NULL_PATH"): (
        f"{_ADAPTERS}::test_smtp_paths_are_linear",
        "rewritten: the space run and the parameters are possessive",
    ),
    ("continuity/adapters/smtp_transaction.py", "_LINE_END"): (
        f"{_ADAPTERS}::test_line_endings_are_normalised_in_linear_time",
        "literal alternatives of one or two characters",
    ),
    ("continuity/adapters/imap_append.py", "_LIST_LINE"): (
        f"{_FIRST}::test_imap_list_reply_is_linear_on_backslashes",
        "rewritten earlier: a backslash is read one way only",
    ),
    ("continuity/adapters/imap_append.py", "_UID"): (
        f"{_ADAPTERS}::test_imap_replies_are_read_in_linear_time",
        "literal, then one run of digits",
    ),
    ("continuity/adapters/imap_append.py", "_APPENDUID"): (
        f"{_ADAPTERS}::test_imap_replies_are_read_in_linear_time",
        "literal, then runs of digits separated by literals",
    ),
    ("continuity/adapters/imap_append.py", "_unquote()"): (
        f"{_ADAPTERS}::test_imap_replies_are_read_in_linear_time",
        "a backslash and one character: constant work per position",
    ),
    ("continuity/adapters/imap_search.py", "_LIST_LINE"): (
        f"{_ADAPTERS}::test_imap_replies_are_read_in_linear_time",
        "anchored; the quoted delimiter's alternatives start with different characters",
    ),
    ("continuity/adapters/imap_search.py", "_unquote()"): (
        f"{_ADAPTERS}::test_imap_replies_are_read_in_linear_time",
        "a backslash and one character: constant work per position",
    ),
    ("continuity/dns/tsig.py", "_KEY_FILE"): (
        "",
        "reads the operator's own BIND key file (quadratic on a file of thousands of unclosed 'key' blocks)",
    ),
    ("continuity/config/reference.py", "_BARE_KEY"): ("", "checks the names of settings, which the code defines"),
    ("continuity/config/dns.py", "_MX"): ("", "checks the operator's configured MX record (anchored, disjoint runs)"),
    ("continuity/config/dns.py", "_http_url()"): (
        "",
        "checks the operator's API address (anchored, one run)",
    ),
    ("continuity/core/replay_mailbox_flow.py", "_BACKOFF_HINT"): (
        f"{_CORE}::test_throttle_hints_are_linear",
        "the primary's reply, first 1000 characters; literal words joined by possessive runs of spaces",
    ),
    ("continuity/core/replay_mailbox_flow.py", "_MAILBOX_THROTTLE"): (
        f"{_CORE}::test_throttle_hints_are_linear",
        "the primary's reply, first 1000 characters; literal alternatives, possessive runs of spaces",
    ),
    ("continuity/services/filter_eval.py", "_RECEIVED_FROM"): (
        f"{_CORE}::test_received_from_is_linear",
        "'continuity filter eval' reads message files: matched once at the first 'from', possessive runs",
    ),
}

# Expressions of other modules that see mail, and what bounds them.
EXTERNAL = {
    "html.parser (Python 3.11)": "quadratic on unfinished constructs; message_view.scan_html makes them harmless "
    f"first ({_CORE}::test_html_scan_is_linear_on_unfinished_markup)",
    "email.header.decode_header": "its encoded-word expression is quadratic on one long line of '=?a?q?'; "
    "header lines are bounded by smtp.max_header_size (100 KB by default: about 0.2 s at worst)",
    "nh3 (webmail.security.sanitizer)": "html5ever, no backtracking; see tests/fuzz for its budget",
}


def _call_sites(path: Path) -> set[str]:
    """Names of the module-level assignments (or 'function()') holding a re call, and 'hyperscan' if used."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in statement.names]
            if "hyperscan" in names or getattr(statement, "module", None) == "hyperscan":
                found.add("hyperscan")
            continue
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.func.attr in _RE_CALLS
            ):
                found.add(_holder(statement))
    return found


def _holder(statement: ast.stmt) -> str:
    if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
        return statement.targets[0].id
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return f"{statement.name}()"
    return f"line {statement.lineno}"


def test_every_expression_is_in_the_inventory() -> None:
    found = {
        (str(path.relative_to(ROOT)), name)
        for folder in ("continuity", "webmail")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in _call_sites(path)
    }
    assert sorted(found - INVENTORY.keys()) == [], "new expressions: add them to INVENTORY with their growth test"
    assert sorted(INVENTORY.keys() - found) == [], "listed expressions no longer in the code: remove them"


def test_every_measured_expression_names_a_test_that_exists() -> None:
    modules = {
        _CORE: test_linear_patterns_core,
        _FILTERS: test_linear_patterns_filters,
        _ADAPTERS: test_linear_patterns_adapters,
        _FIRST: test_linear_patterns,
    }
    for (module, name), (test, why) in INVENTORY.items():
        assert why, f"{module} {name}: say why it is safe"
        if test:
            file, _sep, function = test.partition("::")
            assert callable(getattr(modules[file], function, None)), f"{module} {name}: no test {test}"
