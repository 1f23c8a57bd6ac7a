"""The pipeline runner: per-stage timeout, failure modes, learning, header block."""

from __future__ import annotations

import asyncio

from continuity.core.message_view import MessageView
from continuity.core.pipeline import Envelope, Finding, StageReport, Verdict, VerdictPolicy
from continuity.services.filtering import FilterPipeline, StageConfig, fold

MESSAGE = (
    b"From: a@outside.test\r\nTo: alice@example.com\r\nSubject: hi\r\nMessage-ID: <m@outside.test>\r\n\r\nhello\r\n"
)
ENVELOPE = Envelope("a@outside.test", ("alice@example.com",))


class Slow:
    name = "slow"

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        await asyncio.sleep(5)
        return StageReport()


class Broken:
    name = "broken"

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        raise RuntimeError("scanner exploded")


class Noting:
    name = "noting"

    def __init__(self, score: float) -> None:
        self.score = score
        self.learned: list[str] = []

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        return StageReport(
            findings=(Finding("noting.seen", self.score, "was seen", (message.subject,)),),
            headers=(("X-Test", "1"),),
        )

    def learn(self, envelope: Envelope, message: MessageView) -> None:
        self.learned.append(message.message_id)


async def test_timeout_and_error_follow_the_failure_mode() -> None:
    pipeline = FilterPipeline(
        [StageConfig(Slow(), 0.2, fail_open=True), StageConfig(Broken(), 1, fail_open=True)], VerdictPolicy()
    )
    result = await pipeline.evaluate(ENVELOPE, MESSAGE)
    assert result.verdict is Verdict.ACCEPT and result.seconds < 2
    assert [(r.stage, r.status.value) for r in result.results] == [("slow", "timeout"), ("broken", "error")]
    assert result.failed == ("slow", "broken") and "scanner exploded" in result.results[1].error
    closed = FilterPipeline([StageConfig(Slow(), 0.2, fail_open=False)], VerdictPolicy())
    assert (await closed.evaluate(ENVELOPE, MESSAGE)).verdict is Verdict.TEMPFAIL


async def test_learning_only_when_let_through() -> None:
    stage = Noting(score=1)
    pipeline = FilterPipeline([StageConfig(stage, 1, fail_open=True)], VerdictPolicy(quarantine_score=5))
    await pipeline.evaluate(ENVELOPE, MESSAGE)
    await pipeline.evaluate(ENVELOPE, MESSAGE, learn=False)
    assert stage.learned == ["<m@outside.test>"]
    stage.score = 9
    held = await pipeline.evaluate(ENVELOPE, MESSAGE)
    assert held.verdict is Verdict.QUARANTINE and stage.learned == ["<m@outside.test>"]
    block = held.header_block.decode()
    assert block.startswith("X-Test: 1\r\nX-Continuity-Verdict: quarantine; score=9; fired=noting\r\n")
    assert "X-Continuity-Findings: noting.seen\r\n" in block and "X-Continuity-Warning: was seen" in block
    stored = held.stored(123.0)
    assert stored.fired == ("noting",) and stored.findings[0].evidence == ("hi",)


def test_fold_keeps_lines_short_and_clean() -> None:
    folded = fold("X-Long", "; ".join(f"part{i}=value\r\nInjected: yes" for i in range(30)))
    lines = folded.decode().split("\r\n")
    assert all(len(line) <= 100 for line in lines) and lines[-1] == ""
    assert not any(line.startswith("Injected") for line in lines)
    assert fold("X-Name", "Grüße").startswith(b"X-Name: =?utf-8?")
