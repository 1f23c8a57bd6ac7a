"""A filter verdict as plain tuples, for the trip from a filter worker process back to the replay.

Pickling the ``PipelineResult`` dataclasses themselves (frozen, with slots) goes through
their generic ``__getstate__``/``__setstate__``: about 17 µs each way for a clean
message, in the delivering process, which is the replay's bound. Tuples of strings and
numbers pickle in C; rebuilding the dataclasses from them costs a few µs. The envelope
does not travel back: the main process sent it and puts it back.
"""

from __future__ import annotations

from continuity.core.pipeline import Decision, Envelope, Finding, Reason, StageResult, StageStatus, Verdict
from continuity.services.filtering import PipelineResult

_VERDICTS = {verdict.value: verdict for verdict in Verdict}
_STATUSES = {status.value: status for status in StageStatus}

PackedFinding = tuple[str, float, str, tuple[str, ...]]
PackedStage = tuple[str, str, tuple[PackedFinding, ...], tuple[tuple[str, str], ...], float, str, bool]
PackedReason = tuple[str, str, str]
PackedResult = tuple[tuple[str, float, tuple[PackedReason, ...]], tuple[PackedStage, ...], float]


def pack_result(result: PipelineResult) -> PackedResult:
    """result without its envelope, as tuples of plain values."""
    decision = result.decision
    return (
        (
            decision.verdict.value,
            decision.score,
            tuple((reason.verdict.value, reason.cause, reason.message) for reason in decision.reasons),
        ),
        tuple(
            (
                stage.stage,
                stage.status.value,
                tuple((f.code, f.score, f.message, f.evidence) for f in stage.findings),
                stage.headers,
                stage.seconds,
                stage.error,
                stage.fail_open,
            )
            for stage in result.results
        ),
        result.seconds,
    )


def unpack_result(packed: PackedResult, envelope: Envelope) -> PipelineResult:
    """The PipelineResult pack_result was given, with envelope (the one the request carried)."""
    (verdict, score, reasons), stages, seconds = packed
    decision = Decision(
        _VERDICTS[verdict], score, tuple(Reason(_VERDICTS[v], cause, message) for v, cause, message in reasons)
    )
    results = tuple(
        StageResult(
            name,
            _STATUSES[status],
            tuple(
                Finding(code, finding_score, message, evidence) for code, finding_score, message, evidence in findings
            ),
            headers,
            stage_seconds,
            error,
            fail_open,
        )
        for name, status, findings, headers, stage_seconds, error, fail_open in stages
    )
    return PipelineResult(envelope, decision, results, seconds)
