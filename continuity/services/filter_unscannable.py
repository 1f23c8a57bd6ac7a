"""The verdict on a message the filters could not judge: the finding ``content.unscannable``.

A message is unscannable when judging it overran ``[filters] deadline`` (its worker was
killed), when workers died under it twice, or when parsing it raised. It is never lost:
``[filters] unscannable`` decides whether it is stored and held in quarantine (the
default, answered 250), deferred (451) or refused (550). The verdict goes through the
same merge as every other, so the stored record and the headers look like any verdict.
"""

from __future__ import annotations

import dataclasses

from continuity.core.pipeline import Envelope, Finding, StageResult, StageStatus, Verdict, VerdictPolicy, merge
from continuity.services.filtering import PipelineResult

UNSCANNABLE = "content.unscannable"


def unscannable_result(envelope: Envelope, policy: VerdictPolicy, verdict: Verdict, reason: str) -> PipelineResult:
    """The result for a message that could not be judged, with verdict imposed and reason as evidence."""
    finding = Finding(UNSCANNABLE, 0.0, "the message could not be checked for threats", (reason,))
    result = StageResult("content", StageStatus.OK, (finding,))
    imposed = dataclasses.replace(policy, actions={**policy.actions, UNSCANNABLE: verdict})
    return PipelineResult(envelope, merge([result], imposed), (result,), 0.0)
