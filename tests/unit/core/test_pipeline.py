"""Verdict merge rules of the filter pipeline."""

from __future__ import annotations

from continuity.core.pipeline import (
    Finding,
    StageResult,
    StageStatus,
    Verdict,
    VerdictPolicy,
    merge,
    strongest,
)


def _result(
    stage: str, *findings: Finding, status: StageStatus = StageStatus.OK, fail_open: bool = True
) -> StageResult:
    return StageResult(stage, status, findings, fail_open=fail_open)


def test_order_of_strength() -> None:
    assert strongest([Verdict.TAG, Verdict.REJECT, Verdict.QUARANTINE, Verdict.TEMPFAIL]) is Verdict.REJECT
    assert strongest([Verdict.TAG, Verdict.QUARANTINE, Verdict.TEMPFAIL]) is Verdict.TEMPFAIL
    assert strongest([]) is Verdict.ACCEPT


def test_scores_add_up_to_thresholds() -> None:
    policy = VerdictPolicy(tag_score=4, quarantine_score=8, reject_score=0)
    low = merge([_result("bec", Finding("bec.bank_change", 3, "asks"))], policy)
    assert (low.verdict, low.score) == (Verdict.ACCEPT, 3)
    tagged = merge(
        [_result("bec", Finding("bec.bank_change", 3, "asks")), _result("urls", Finding("urls.x", 1, "u"))], policy
    )
    assert tagged.verdict is Verdict.TAG
    held = merge([_result("bec", Finding("bec.a", 5, "a"), Finding("bec.b", 3, "b"))], policy)
    assert held.verdict is Verdict.QUARANTINE and held.deciding[0].cause == "score"
    assert "a" in held.deciding[0].message


def test_actions_by_code_and_by_stage_win_over_score() -> None:
    policy = VerdictPolicy(
        actions={"clamd": Verdict.REJECT, "urls.blocklisted": Verdict.QUARANTINE, "bec.x": Verdict.ACCEPT}
    )
    decision = merge([_result("clamd", Finding("clamd.virus", 0.1, "virus"))], policy)
    assert decision.verdict is Verdict.REJECT and decision.deciding[0].cause == "clamd.virus"
    assert merge([_result("urls", Finding("urls.blocklisted", 0, "bad"))], policy).verdict is Verdict.QUARANTINE
    assert merge([_result("bec", Finding("bec.x", 1, "x"))], policy).verdict is Verdict.ACCEPT


def test_failed_stages_by_failure_mode() -> None:
    policy = VerdictPolicy()
    open_failure = merge([_result("rspamd", status=StageStatus.TIMEOUT, fail_open=True)], policy)
    assert open_failure.verdict is Verdict.ACCEPT and open_failure.reasons == ()
    closed = merge([_result("clamd", status=StageStatus.ERROR, fail_open=False)], policy)
    assert closed.verdict is Verdict.TEMPFAIL and closed.deciding[0].cause == "stage:clamd"
    # A rejecting finding elsewhere is still stronger than the tempfail.
    both = merge(
        [
            _result("clamd", status=StageStatus.ERROR, fail_open=False),
            _result("attachments", Finding("attachments.executable", 10, "exe")),
        ],
        VerdictPolicy(actions={"attachments.executable": Verdict.REJECT}),
    )
    assert both.verdict is Verdict.REJECT


def test_findings_of_failed_stages_do_not_count() -> None:
    decision = merge([_result("bec", Finding("bec.a", 50, "a"), status=StageStatus.ERROR)], VerdictPolicy())
    assert decision.verdict is Verdict.ACCEPT and decision.score == 0
