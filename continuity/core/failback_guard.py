"""When an operator's failback may start: only once the primary has been healthy for the hold-down.

The automatic failback already waits for the health policy's UP verdict (good cycles
spanning ``hold_down``); an operator's ``continuity failback`` (or ``POST
/api/v1/failback``) is held to the same rule, because switching back to a primary that
comes and goes costs a second DNS change and a second replay. Without probes the
hold-down cannot be observed, so the order is refused unless the operator set
``[monitor] hold_down = 0``. Pure.
"""

from __future__ import annotations

from continuity.core.health import HealthAssessment, HealthPolicy, HealthVerdict


def failback_refusal(assessment: HealthAssessment | None, policy: HealthPolicy, *, probing: bool) -> str | None:
    """None when a failback may start now, otherwise the sentence saying why not."""
    if not probing:
        if policy.hold_down == 0:
            return None
        return (
            f"the primary's health is not being watched here, so its hold-down ({policy.hold_down:g}s healthy) "
            "cannot be checked: order the failback while 'continuity serve' probes the primary, "
            "or set [monitor] hold_down = 0"
        )
    if assessment is None:
        return "the primary has not been probed yet; failback needs it healthy for the hold-down first"
    if assessment.verdict is HealthVerdict.UP:
        return None
    if assessment.verdict in (HealthVerdict.FAILING, HealthVerdict.DOWN) or assessment.failed_streak:
        return f"the primary is not healthy ({assessment.sentence()}); failback needs it healthy for the hold-down"
    return (
        f"the primary has been healthy for {assessment.healthy_for:.0f}s over {assessment.healthy_streak} cycle(s); "
        f"failback needs {policy.hold_down:g}s ({policy.cycles_to_up} cycles of {policy.interval:g}s, the hold-down)"
    )
