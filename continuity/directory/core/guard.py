"""The removal guard: a run that would disable too many mailboxes changes nothing.

An attacker who holds the directory (or a mistaken filter) must not be able to switch the
standby off: above the limit the run waits for an operator's ``--allow-removals``.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SHARE = 0.05
DEFAULT_CAP = 50


def removal_limit(configured: int | None, linked_enabled: int) -> int:
    """The most mailboxes one run may disable.

    configured wins when set; otherwise 5% of the directory's enabled mailboxes or 50, whichever
    is smaller, and at least 1 (so that one leaver in a small directory is not an alarm).
    """
    if configured is not None:
        return configured
    return max(1, min(DEFAULT_CAP, int(linked_enabled * DEFAULT_SHARE)))


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """Whether a plan may be applied, and the sentence that says why not."""

    allowed: bool
    removals: int
    limit: int
    sentence: str


def check_removals(removals: int, limit: int, allow_removals: bool) -> GuardVerdict:
    """Allow up to limit removals, or any number with allow_removals."""
    if removals <= limit:
        return GuardVerdict(True, removals, limit, f"{removals} removals, within the limit of {limit}")
    if allow_removals:
        return GuardVerdict(
            True, removals, limit, f"{removals} removals above the limit of {limit}, allowed by the operator"
        )
    sentence = (
        f"the directory would disable {removals} mailboxes, more than the limit of {limit} "
        "([directory] max_removals); nothing was changed. Check the directory, then run "
        "'continuity directory sync --allow-removals' to apply it"
    )
    return GuardVerdict(False, removals, limit, sentence)
