"""The operator documentation stays usable: linked from the README, links that resolve, commands that exist.

* every page under docs/ is linked from the README;
* every relative link in the README and docs/ points at a file that exists, and its
  ``#anchor`` at a heading of that file (GitHub's rule for heading anchors);
* every ``continuity ...`` command line shown in docs/ names commands and options the
  command line really has (a renamed option or a removed command fails here, not in an
  operator's terminal during an outage).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from continuity.cli.main import cli

ROOT = Path(__file__).parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {_anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def _links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text()))


def test_the_readme_links_every_page() -> None:
    linked = {target.split("#")[0] for target in _links(ROOT / "README.md")}
    assert [page.name for page in DOCS if f"docs/{page.name}" not in linked] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in _links(page):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _hash, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{target}: no heading with this anchor")
    assert broken == []


def _command_lines(page: Path) -> list[str]:
    """Command lines starting with `continuity ` in code spans and code blocks."""
    text = page.read_text()
    lines = []
    for block in FENCE.findall(text):
        joined = block.replace("\\\n", " ")
        lines += [line.strip() for line in joined.splitlines()]
    lines += CODE_SPAN.findall(FENCE.sub("", text))
    found = []
    for line in lines:
        line = re.sub(r"<[^>]*>", "PLACEHOLDER", line)
        for match in re.finditer(r"(?:^|[|;(]\s*|&&\s*)(continuity (?:--config \S+ )?[a-z][\w-]*(?: [^#|`]*)?)", line):
            found.append(match.group(1).strip())
    return found


def _check(command_line: str) -> str | None:
    """None when command_line fits the click tree, else why not."""
    try:
        words = shlex.split(command_line.replace("\\|", "|"), comments=True)
    except ValueError:
        words = command_line.split()
    words = words[1:]
    if words[:1] == ["--config"]:
        words = words[2:]
    command: click.Command = cli
    ctx = click.Context(cli)
    while words and isinstance(command, click.Group):
        name = words[0]
        sub = command.get_command(ctx, name)
        if sub is None:
            if name.isupper() or not re.fullmatch(r"[a-z][a-z-]*", name):
                break  # a placeholder or an argument of a group that takes arguments
            return f"'{name}' is not a command of '{command.name}'"
        command, words = sub, words[1:]
    options = {opt for param in command.params for opt in getattr(param, "opts", [])} | {"--help", "-h"}
    for word in (word.strip("[]") for word in words):
        if re.match(r"--[a-z]", word):
            option = word.split("=", 1)[0]
            if option not in options:
                return f"'{option}' is not an option of '{command.name}'"
    return None


@pytest.mark.parametrize("page", DOCS, ids=lambda page: page.name)
def test_documented_commands_exist(page: Path) -> None:
    lines = _command_lines(page)
    problems = [f"{line}: {why}" for line in lines if (why := _check(line)) is not None]
    assert problems == []


def test_the_command_check_can_fail() -> None:
    # A control: the check refuses what does not exist (an empty scan would pass).
    assert _check("continuity failover --reason outage --note x") is None
    assert _check("continuity replay status --json") is None
    assert _check("continuity failover --why outage") is not None
    assert _check("continuity quarantine purge ID") is not None
    assert sum(len(_command_lines(page)) for page in DOCS) > 100
