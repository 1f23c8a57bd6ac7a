"""The replay journal's states, transitions, answer classification and retry schedule."""

from __future__ import annotations

import pytest

from continuity.config.replay import ReplaySettings
from continuity.core.replay_journal import (
    FINAL,
    TRANSITIONS,
    Attempt,
    ItemState,
    JournalError,
    OutcomeKind,
    RetryPolicy,
    check_transition,
    classify_imap_no,
    classify_smtp,
    resolve,
)

DAY = 86400.0


def test_every_state_is_in_the_table_and_illegal_moves_raise() -> None:
    assert set(TRANSITIONS) == set(ItemState)
    check_transition(ItemState.PENDING, ItemState.DELIVERING)
    check_transition(ItemState.DELIVERING, ItemState.DELIVERED)
    for old, new in ((ItemState.PENDING, ItemState.DELIVERED), (ItemState.DELIVERED, ItemState.DELIVERING),
                     (ItemState.HELD, ItemState.DELIVERING), (ItemState.FAILED, ItemState.DELIVERED)):  # fmt: skip
        with pytest.raises(JournalError):
            check_transition(old, new)
    assert {ItemState.DELIVERED, ItemState.FAILED, ItemState.HELD} == FINAL


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("[LIMIT] Server busy, try again later", OutcomeKind.THROTTLED),
        ("Server Unavailable. 15", OutcomeKind.THROTTLED),
        ("[UNAVAILABLE] Temporary failure", OutcomeKind.THROTTLED),
        ("[TOOBIG] Message too large", OutcomeKind.FAILED),
        ("[OVERQUOTA] Quota exceeded", OutcomeKind.DEFERRED),
        ("something odd", OutcomeKind.DEFERRED),
    ],
)
def test_imap_no_answers(text: str, kind: OutcomeKind) -> None:
    assert classify_imap_no(text) is kind


def test_smtp_codes() -> None:
    assert classify_smtp(250) is OutcomeKind.DELIVERED
    assert {classify_smtp(code) for code in (421, 450, 451, 452)} == {OutcomeKind.THROTTLED}
    assert classify_smtp(550) is OutcomeKind.FAILED


def test_default_retries_last_at_least_five_days_and_warn_before_giving_up() -> None:
    settings = ReplaySettings()
    policy = RetryPolicy(settings.retry_initial, settings.retry_max, settings.give_up_after, settings.warn_before)
    first = now = 1000.0
    attempts = 1
    while True:
        outcome = resolve(
            Attempt(OutcomeKind.DEFERRED, "connection refused"),
            attempts=attempts, first_attempt_at=first, now=now, policy=policy,
        )  # fmt: skip
        if outcome.state is ItemState.FAILED:
            break
        assert outcome.state is ItemState.DEFERRED and outcome.next_attempt_at > now
        now, attempts = outcome.next_attempt_at, attempts + 1
    assert now - first >= 5 * DAY
    assert "gave up after 5 days" in outcome.detail
    assert policy.warn_at(first) < first + 5 * DAY
    assert policy.delay(1) == 60 and policy.delay(2) == 120 and policy.delay(30) == 3600


def test_throttling_retries_after_the_pause_not_the_backoff() -> None:
    policy = RetryPolicy(60, 3600, 5 * DAY, DAY)
    outcome = resolve(
        Attempt(OutcomeKind.THROTTLED, "busy"), attempts=9, first_attempt_at=0, now=100, policy=policy, throttle_delay=2
    )
    assert outcome.state is ItemState.DEFERRED and outcome.next_attempt_at == 102


def test_delivered_and_permanent_failures() -> None:
    policy = RetryPolicy(60, 3600, 5 * DAY, DAY)
    for kind, state in ((OutcomeKind.DELIVERED, ItemState.DELIVERED), (OutcomeKind.ALREADY_THERE, ItemState.DELIVERED),
                        (OutcomeKind.FAILED, ItemState.FAILED)):  # fmt: skip
        assert resolve(Attempt(kind), attempts=1, first_attempt_at=0, now=1, policy=policy).state is state
