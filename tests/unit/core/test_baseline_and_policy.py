"""Per-mailbox baselines (spikes, caps, never-seen recipients, bounce bursts) and the response policy."""

from __future__ import annotations

from continuity.core.baseline import (
    Baseline,
    HourTotals,
    Observed,
    RatePolicy,
    SendEvent,
    SlidingHour,
    bounce_signal,
    rate_signals,
)
from continuity.core.signals import (
    DEFAULT_SEVERITY,
    MailboxState,
    MailboxStatus,
    PrimaryAction,
    Response,
    ResponsePolicy,
    Severity,
    Signal,
    SignalKind,
    implicated_mailboxes,
    responses_for,
)

POLICY = RatePolicy()
OBSERVED = Observed("alice@example.com", "relay", 1000.0, "Q1")


def severity(kind: SignalKind) -> Severity:
    return DEFAULT_SEVERITY[kind]


def kinds(baseline: Baseline, hour: HourTotals) -> set[SignalKind]:
    return {signal.kind for signal in rate_signals(OBSERVED, baseline, hour, POLICY, severity)}


def test_a_quiet_mailbox_may_send_up_to_the_floor() -> None:
    quiet = Baseline(active_hours=40, peak_messages=3, peak_recipients=4, peak_new_recipients=1, days=28)
    assert kinds(quiet, HourTotals(30, 30, 5)) == set()
    assert kinds(quiet, HourTotals(31, 31, 5)) == {SignalKind.RATE_SPIKE}


def test_the_limit_follows_the_mailboxs_own_busiest_hour() -> None:
    busy = Baseline(active_hours=100, peak_messages=200, peak_recipients=600, peak_new_recipients=50, days=28)
    assert kinds(busy, HourTotals(600, 1800, 10)) == set()
    assert kinds(busy, HourTotals(601, 1801, 10)) == {SignalKind.RATE_SPIKE, SignalKind.RECIPIENT_SPIKE}


def test_hard_caps_apply_whatever_the_history() -> None:
    huge = Baseline(active_hours=100, peak_messages=5000, peak_recipients=50000, peak_new_recipients=0, days=28)
    assert kinds(huge, HourTotals(2001, 2001, 0)) == {SignalKind.RATE_CAP}
    assert kinds(huge, HourTotals(10, 10001, 0)) == {SignalKind.RATE_CAP}


def test_never_seen_recipients_count_by_number_and_share() -> None:
    normal = Baseline(active_hours=10, peak_messages=5, peak_recipients=5, peak_new_recipients=2, days=28)
    assert SignalKind.NEW_RECIPIENTS in kinds(normal, HourTotals(20, 20, 20))
    assert SignalKind.NEW_RECIPIENTS not in kinds(normal, HourTotals(19, 19, 19))
    # Many new recipients, but most are known: a normal busy hour.
    assert SignalKind.NEW_RECIPIENTS not in kinds(normal, HourTotals(25, 100, 25))
    # A mailbox that often writes to new people gets a higher threshold.
    outreach = Baseline(active_hours=10, peak_messages=30, peak_recipients=40, peak_new_recipients=30, days=28)
    assert SignalKind.NEW_RECIPIENTS not in kinds(outreach, HourTotals(30, 40, 40))


def test_signals_carry_their_evidence() -> None:
    quiet = Baseline(active_hours=40, peak_messages=3, peak_recipients=4, peak_new_recipients=1, days=28)
    (signal,) = rate_signals(OBSERVED, quiet, HourTotals(31, 31, 0), POLICY, severity)
    assert signal.mailbox == "alice@example.com" and signal.queue_id == "Q1" and signal.source == "relay"
    assert signal.evidence[0] == "31 messages in the last hour"
    assert "3 messages" in signal.evidence[1] and "limit 30" in signal.evidence[2]


def test_the_sliding_hour_forgets_old_events_and_cleared_ones() -> None:
    hour = SlidingHour()
    hour.add(SendEvent(0.0, 2, 1))
    hour.add(SendEvent(1800.0, 3, 3))
    hour.add_bounces(1800.0, 4)
    assert hour.totals(3000.0) == HourTotals(2, 5, 4)
    assert hour.totals(3601.0) == HourTotals(1, 3, 3)
    assert hour.bounces(3601.0) == 4
    hour.add(SendEvent(3700.0, 1, 0))
    hour.forget_before(3650.0)
    assert hour.totals(3700.0) == HourTotals(1, 1, 0)
    assert hour.bounces(3700.0) == 0


def test_a_burst_of_hard_bounces() -> None:
    assert bounce_signal(OBSERVED, 19, POLICY, severity) is None
    signal = bounce_signal(OBSERVED, 20, POLICY, severity)
    assert signal is not None and signal.kind is SignalKind.BOUNCE_BURST


def test_the_baseline_is_the_busiest_hour() -> None:
    baseline = Baseline.from_hours([HourTotals(3, 5, 1), HourTotals(7, 2, 0)], 28)
    assert (baseline.active_hours, baseline.peak_messages, baseline.peak_recipients) == (2, 7, 5)
    assert Baseline.from_hours([], 28).peak_messages == 0


def _signal(kind: SignalKind, severity_: Severity, mailbox: str = "alice@example.com", at: float = 0.0) -> Signal:
    return Signal(kind, mailbox, severity_, "summary", (), at, "relay")


def test_responses_by_severity() -> None:
    policy = ResponsePolicy()
    high = _signal(SignalKind.RATE_SPIKE, Severity.HIGH)
    assert responses_for(high, MailboxState("alice@example.com"), policy) == (
        Response.NOTIFY_ADMINS,
        Response.NOTIFY_USER,
        Response.CONTAIN,
    )
    medium = _signal(SignalKind.SENT_ITEMS_MISSING, Severity.MEDIUM)
    assert responses_for(medium, None, policy) == (Response.NOTIFY_ADMINS, Response.NOTIFY_USER)
    assert responses_for(_signal(SignalKind.SENT_ITEMS_MISSING, Severity.LOW), None, policy) == ()
    contained = MailboxState("alice@example.com", MailboxStatus.CONTAINED)
    assert responses_for(high, contained, policy) == (Response.NOTIFY_ADMINS,)
    quiet = ResponsePolicy(notify_user=False, notify_admins=False, contain_at=Severity.CRITICAL)
    assert responses_for(high, None, quiet) == ()


def test_the_primary_is_never_contained_but_failed_over_when_allowed() -> None:
    primary = _signal(SignalKind.PRIMARY_COMPROMISE, Severity.CRITICAL, mailbox="")
    assert responses_for(primary, None, ResponsePolicy()) == (Response.NOTIFY_ADMINS, Response.RECOMMEND_FAILOVER)
    allowed = ResponsePolicy(primary_action=PrimaryAction.FAILOVER)
    assert responses_for(primary, None, allowed) == (Response.NOTIFY_ADMINS, Response.FAILOVER)
    assert responses_for(primary, None, ResponsePolicy(primary_action=PrimaryAction.OFF)) == (Response.NOTIFY_ADMINS,)


def test_severities_can_be_overridden() -> None:
    policy = ResponsePolicy(severities={SignalKind.RULE_FORWARD: Severity.MEDIUM})
    assert policy.severity(SignalKind.RULE_FORWARD) is Severity.MEDIUM
    assert policy.severity(SignalKind.RATE_SPIKE) is Severity.HIGH


def test_mailboxes_implicated_in_a_window() -> None:
    signals = [
        _signal(SignalKind.RATE_SPIKE, Severity.HIGH, "a@example.com", 100.0),
        _signal(SignalKind.RULE_FORWARD, Severity.HIGH, "b@example.com", 3500.0),
        _signal(SignalKind.SENT_ITEMS_MISSING, Severity.MEDIUM, "c@example.com", 3600.0),
        _signal(SignalKind.PRIMARY_COMPROMISE, Severity.CRITICAL, "", 3600.0),
    ]
    assert implicated_mailboxes(signals, 3700.0, 3600.0, Severity.HIGH) == {"a@example.com", "b@example.com"}
    assert implicated_mailboxes(signals, 3800.0, 3600.0, Severity.HIGH) == {"b@example.com"}
