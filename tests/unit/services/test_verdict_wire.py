"""A verdict packed in a filter worker comes back in the main process equal to what the worker reached."""

from __future__ import annotations

import pickle

from continuity.core.pipeline import (
    Decision,
    Direction,
    Envelope,
    Finding,
    Reason,
    StageResult,
    StageStatus,
    Verdict,
)
from continuity.services.filtering import PipelineResult
from continuity.services.verdict_wire import pack_result, unpack_result

ENVELOPE = Envelope("billing@supplier.example", ("alice@example.com",), Direction.REPLAY, "192.0.2.7", "mx.test")


def _round_trip(result: PipelineResult) -> PipelineResult:
    packed = pickle.loads(pickle.dumps(pack_result(result), protocol=pickle.HIGHEST_PROTOCOL))
    return unpack_result(packed, result.envelope)


def test_a_clean_verdict_round_trips() -> None:
    result = PipelineResult(
        ENVELOPE,
        Decision(Verdict.ACCEPT, 0.0, ()),
        (StageResult("urls", StageStatus.OK, seconds=0.0001), StageResult("bec", StageStatus.OK, seconds=0.0002)),
        0.0004,
    )
    assert _round_trip(result) == result


def test_findings_reasons_headers_and_failures_round_trip() -> None:
    bank = Finding("bec.bank_change", 3.0, "asks to change bank details", ("new bank details",))
    iban = Finding("bec.new_bank_account", 3.0, "gives bank account details to pay to", ("DE89370400440532013000",))
    result = PipelineResult(
        ENVELOPE,
        Decision(
            Verdict.QUARANTINE,
            8.0,
            (Reason(Verdict.QUARANTINE, "score", "scored 8.0"), Reason(Verdict.TAG, "bec.bank_change", bank.message)),
        ),
        (
            StageResult("bec", StageStatus.OK, (bank, iban), seconds=0.001),
            StageResult("auth", StageStatus.OK, headers=(("Authentication-Results", "standby; spf=pass"),)),
            StageResult("clamd", StageStatus.TIMEOUT, seconds=5.0, error="timed out", fail_open=False),
        ),
        5.01,
    )
    back = _round_trip(result)
    assert back == result
    assert back.verdict is Verdict.QUARANTINE and back.failed == ("clamd",)
    assert back.results[2].status is StageStatus.TIMEOUT
