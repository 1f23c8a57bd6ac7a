"""Running the filter pipeline over files: one message (``filter check``) or a labelled corpus (``filter eval``).

A corpus is a directory with one sub-directory per label (``ham``/``clean`` for good
mail, anything else for bad mail, e.g. ``bec``, ``hijack``, ``malware``). A
``_history`` sub-directory, when present, is fed through the pipeline first so that its
memory knows the earlier messages of the threads (its results are not scored). Each
labelled message is evaluated on its own (the pipeline does not learn from it).

The envelope of a message read from a file comes from its own headers: the client
address from the topmost Received field, the sender from Return-Path (else From).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from continuity.core.evaluation import Outcome
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
