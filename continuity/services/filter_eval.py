"""Running the filter pipeline over files: one message (``filter check``) or a labelled corpus (``filter eval``).

A corpus is a directory with one sub-directory per label (``ham``/``clean`` for good
mail, anything else for bad mail, e.g. ``bec``, ``hijack``, ``malware``). A
``_history`` sub-directory, when present, is fed through the pipeline first so that its
memory knows the earlier messages of the threads (its results are not scored). Each
labelled message is evaluated on its own (the pipeline does not learn from it).

:func:`finding_scores` says, per stage and per finding code, how often it fired on bad
and on good mail: its precision (fired on bad / fired) and its recall (fired on bad / bad
messages), so a new rule's false alarms show apart from the verdicts.

The envelope of a message read from a file comes from its own headers: the client
address from the topmost Received field, the sender from Return-Path (else From).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from continuity.core.evaluation import NEGATIVE_LABELS, Outcome, is_negative
from continuity.core.message_view import parse_message
from continuity.core.pipeline import Direction, Envelope
from continuity.services.filtering import FilterPipeline, PipelineResult

# Matched only at the first "from" of the field, with possessive runs: linear (a search
# with ".*?" from every "from" was quadratic on "from x " repeated).
_RECEIVED_FROM = re.compile(r"from\s++([^\s\[]++)[^\[]*+\[(?:IPv6:)?([0-9a-fA-F:.]++)\]", re.IGNORECASE)
_SUFFIXES = (".eml", ".msg", ".txt", "")


def read_message(path: Path) -> bytes:
    """A message file with CRLF line endings, as SMTP would have carried it."""
    data = path.read_bytes()
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""  # an mbox separator line, not a header
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def envelope_from_headers(content: bytes, recipients: tuple[str, ...] = ()) -> Envelope:
    """An inbound envelope reconstructed from a stored message's header fields."""
    view = parse_message(content[: content.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in content else content)
    client, helo = "", ""
    received = view.header("Received")
    if received:
        start = received.lower().find("from")
        match = _RECEIVED_FROM.match(received, start) if start >= 0 else None
        if match:
            helo, client = match.group(1), match.group(2)
    return_path = email.utils.parseaddr(view.header("Return-Path") or "")[1]
    sender = return_path or (view.sender.address if view.sender else "")
    to = recipients or tuple(address.address for address in view.to if address.address)
    return Envelope(sender, to, Direction.INBOUND, client, helo)


def message_files(directory: Path) -> Iterator[Path]:
    """Message files of a directory, sorted by name (hidden files skipped)."""
    for path in sorted(directory.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in _SUFFIXES:
            yield path


def label_dirs(root: Path) -> list[Path]:
    """The label folders of a corpus (not _history, not hidden), sorted."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


async def evaluate_file(pipeline: FilterPipeline, path: Path, *, learn: bool = False) -> PipelineResult:
    """Evaluate one message file."""
    content = read_message(path)
    return await pipeline.evaluate(envelope_from_headers(content), content, learn=learn)


async def evaluate_corpus(
    pipeline: FilterPipeline, root: Path, flush: Callable[[], Awaitable[None]] | None = None
) -> list[Outcome]:
    """Feed root/_history, then evaluate every labelled message; returns the outcomes."""
    history = root / "_history"
    if history.is_dir():
        for path in message_files(history):
            await evaluate_file(pipeline, path, learn=True)
    if flush is not None:
        await flush()
    outcomes: list[Outcome] = []
    for label_dir in label_dirs(root):
        for path in message_files(label_dir):
            result = await evaluate_file(pipeline, path)
            codes = tuple(finding.code for stage in result.results for finding in stage.findings)
            outcomes.append(Outcome(label_dir.name, path.name, result.verdict, result.decision.score, codes))
    return outcomes


@dataclass(frozen=True, slots=True)
class FindingScore:
    """How often one stage or finding code fired on bad and on good messages."""

    name: str
    fired_bad: int
    fired_good: int
    bad: int
    good: int

    @property
    def precision(self) -> float:
        """Firings that were on bad messages (1.0 when it never fired)."""
        fired = self.fired_bad + self.fired_good
        return self.fired_bad / fired if fired else 1.0

    @property
    def recall(self) -> float:
        """Bad messages it fired on (1.0 when there were none)."""
        return self.fired_bad / self.bad if self.bad else 1.0

    @property
    def false_positive_rate(self) -> float:
        """Good messages it fired on."""
        return self.fired_good / self.good if self.good else 0.0


def finding_scores(
    outcomes: Iterable[Outcome], negatives: frozenset[str] = NEGATIVE_LABELS
) -> tuple[list[FindingScore], list[FindingScore]]:
    """Per stage and per finding code (each sorted by name): firings on bad and good messages."""
    items = list(outcomes)
    bad = sum(1 for outcome in items if not is_negative(outcome.label, negatives))
    good = len(items) - bad
    by_stage: dict[str, list[int]] = {}
    by_code: dict[str, list[int]] = {}
    for outcome in items:
        column = 1 if is_negative(outcome.label, negatives) else 0
        codes = set(outcome.codes)
        for code in codes:
            by_code.setdefault(code, [0, 0])[column] += 1
        for stage in {code.partition(".")[0] for code in codes}:
            by_stage.setdefault(stage, [0, 0])[column] += 1

    def scores(table: dict[str, list[int]]) -> list[FindingScore]:
        return [FindingScore(name, counts[0], counts[1], bad, good) for name, counts in sorted(table.items())]

    return scores(by_stage), scores(by_code)
