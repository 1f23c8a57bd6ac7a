"""The filter pipeline: one object, used by SMTP ingest, outbound mail from webmail and replay.

Usage (every caller)::

    result = await pipeline.evaluate(envelope, content)
    result.verdict        # Verdict.ACCEPT / TAG / QUARANTINE / TEMPFAIL / REJECT
    result.header_block   # bytes to store before the body (Authentication-Results, X-Continuity-*)
    result.public_reason  # one sentence for an SMTP reply or a webmail error
    result.stored(at)     # StoredVerdict for store.verdicts.record(queue_id, ...)

``envelope.direction`` says which way the mail goes (INBOUND at SMTP ingest, OUTBOUND
from webmail with ``authenticated_user`` set, REPLAY when replaying into the primary);
stages skip what does not apply (e.g. no SPF for outbound mail). ``content`` is the
message exactly as received or composed; it is never modified.

The message is parsed once in a worker thread; then every enabled stage runs
concurrently, each under its own timeout. A stage that raises or times out is
recorded as failed and, when fail-closed, imposes TEMPFAIL. The results merge into one
verdict under the operator's policy (continuity.core.pipeline.merge). When the verdict
lets the message through (accept or tag) and ``learn`` is true, stages that keep a
memory (threads, correspondents' accounts) learn from it; pass ``learn=False`` for a
dry run such as ``continuity filter check``.
"""

from __future__ import annotations

import asyncio
import email.header
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from continuity.core.filter_records import StoredVerdict
from continuity.core.message_view import MessageView, parse_message
from continuity.core.pipeline import (
    Decision,
    Envelope,
    Stage,
    StageReport,
    StageResult,
    StageStatus,
    Verdict,
    VerdictPolicy,
    merge,
)

log = logging.getLogger("continuity.filters")

_FOLD_AT = 76


@runtime_checkable
class Learner(Protocol):
    """A stage that remembers the messages the pipeline lets through."""

    def learn(self, envelope: Envelope, message: MessageView) -> None:
        """Remember one message (buffer only; must not block)."""
        ...


class Judge(Protocol):
    """What judges a message as it arrives (ingest, outbound): the worker processes, or the pipeline itself."""

    async def evaluate(self, envelope: Envelope, content: bytes, *, learn: bool = True) -> PipelineResult:
        """Filter content; with learn, the stages that keep a memory learn from it when it passes."""
        ...


class Evaluator(Protocol):
    """What judges a stored message at replay: the pipeline itself, or the pipeline in worker processes."""

    async def evaluate_stored(self, envelope: Envelope, sha256: str, content: bytes) -> PipelineResult:
        """Filter content, the body stored under sha256, without learning from it."""
        ...


@dataclass(frozen=True, slots=True)
class StageConfig:
    """A stage with its timeout and failure mode."""

    stage: Stage
    timeout: float
    fail_open: bool


def _clean(value: str) -> str:
    text = "".join(char if char.isprintable() else " " for char in value)
    text = " ".join(text.split())
    if not text.isascii():
        text = email.header.Header(text, "utf-8", maxlinelen=10_000).encode()
    return text


def fold(name: str, value: str) -> bytes:
    """One header field, CRLF-terminated, folded at "; " and spaces to keep lines short."""
    words = _clean(value).replace("; ", ";\x00").replace(", ", ",\x00").split("\x00")
    lines: list[str] = []
    line = f"{name}: "
    for word in words:
        if len(line) + len(word) > _FOLD_AT and line.strip() and not line.endswith(": "):
            lines.append(line.rstrip())
            line = "\t"
        line += word + " "
    lines.append(line.rstrip())
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """The outcome of evaluating one message."""

    envelope: Envelope
    decision: Decision
    results: tuple[StageResult, ...]
    seconds: float

    @property
    def verdict(self) -> Verdict:
        """The merged verdict."""
        return self.decision.verdict

    @property
    def fired(self) -> tuple[str, ...]:
        """Stages that found something."""
        return tuple(result.stage for result in self.results if result.fired)

    @property
    def failed(self) -> tuple[str, ...]:
        """Stages that failed or timed out."""
        return tuple(result.stage for result in self.results if result.failed)

    @property
    def public_reason(self) -> str:
        """One sentence on why (for an SMTP reply or a webmail error): what the deciding causes say."""
        messages = list(dict.fromkeys(reason.message for reason in self.decision.deciding))
        return "; ".join(messages[:3]) or "no objection"

    @property
    def header_block(self) -> bytes:
        """Header fields to store before the message: the stages' fields, then the verdict summary."""
        parts = [fold(name, value) for result in self.results for name, value in result.headers]
        fired = ",".join(self.fired) or "none"
        summary = f"{self.verdict.value}; score={self.decision.score:g}; fired={fired}"
        if self.failed:
            summary += f"; failed={','.join(self.failed)}"
        parts.append(fold("X-Continuity-Verdict", summary))
        codes = list(dict.fromkeys(finding.code for result in self.results for finding in result.findings))
        if codes:
            parts.append(fold("X-Continuity-Findings", ", ".join(codes[:20])))
        if self.verdict is not Verdict.ACCEPT and self.decision.deciding:
            parts.append(fold("X-Continuity-Warning", self.public_reason))
        return b"".join(parts)

    def stored(self, at: float | None = None) -> StoredVerdict:
        """The form kept in the store (store.verdicts)."""
        return StoredVerdict.of(self.decision, self.results, self.envelope.direction, time.time() if at is None else at)


class FilterPipeline:
    """Runs the configured stages on a message and merges their findings into a verdict."""

    def __init__(
        self,
        stages: Sequence[StageConfig],
        policy: VerdictPolicy,
        *,
        executor: Executor | None = None,
        sequential: bool = False,
    ) -> None:
        self.stages = tuple(stages)
        self.policy = policy
        self._executor = executor
        self._sequential = sequential

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Names of the configured stages, in order."""
        return tuple(config.stage.name for config in self.stages)

    async def _run_stage(self, config: StageConfig, envelope: Envelope, message: MessageView) -> StageResult:
        started = time.perf_counter()
        name = config.stage.name
        try:
            async with asyncio.timeout(config.timeout):  # no extra task per stage, as wait_for would make
                report: StageReport = await config.stage.inspect(envelope, message)
        except TimeoutError:
            log.warning("filter stage %s timed out after %.1fs", name, config.timeout)
            return StageResult(
                name, StageStatus.TIMEOUT, seconds=time.perf_counter() - started, error="timed out",
                fail_open=config.fail_open,
            )  # fmt: skip
        except Exception as exc:  # a stage's failure must not take the pipeline down
            log.warning("filter stage %s failed: %s", name, exc)
            return StageResult(
                name, StageStatus.ERROR, seconds=time.perf_counter() - started, error=str(exc)[:300],
                fail_open=config.fail_open,
            )  # fmt: skip
        return StageResult(
            name,
            StageStatus.OK,
            report.findings,
            report.headers,
            time.perf_counter() - started,
            fail_open=config.fail_open,
        )

    async def parse(self, content: bytes) -> MessageView:
        """Parse content in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, parse_message, content)

    async def evaluate(self, envelope: Envelope, content: bytes, *, learn: bool = True) -> PipelineResult:
        """Filter one message; see the module docstring."""
        started = time.perf_counter()
        message = await self.parse(content)
        return await self.evaluate_parsed(envelope, message, learn=learn, started=started)

    async def evaluate_stored(self, envelope: Envelope, sha256: str, content: bytes) -> PipelineResult:
        """Filter a stored body without learning (the replay's judgement; worker processes read it by sha256)."""
        return await self.evaluate(envelope, content, learn=False)

    async def evaluate_parsed(
        self, envelope: Envelope, message: MessageView, *, learn: bool = True, started: float | None = None
    ) -> PipelineResult:
        """Filter a message that is already parsed."""
        begin = time.perf_counter() if started is None else started
        if self._sequential:
            results = [await self._run_stage(config, envelope, message) for config in self.stages]
        else:
            results = list(
                await asyncio.gather(*(self._run_stage(config, envelope, message) for config in self.stages))
            )
        decision = merge(results, self.policy)
        if learn and decision.verdict in (Verdict.ACCEPT, Verdict.TAG):
            for config in self.stages:
                if isinstance(config.stage, Learner):
                    config.stage.learn(envelope, message)
        return PipelineResult(envelope, decision, tuple(results), time.perf_counter() - begin)
