"""The replay journal's vocabulary: per-recipient, per-message states, their transitions, retries.

Every (message, mailbox) pair the replay must deliver is one journal item. It is
``pending`` until claimed; claiming makes it ``delivering`` durably *before* anything
is sent; the outcome (``delivered``, ``deferred``, ``failed``) is made durable after.
``held`` is a message the filter pipeline (or the compromise rule) keeps from the
primary. A crash leaves items in ``delivering``: they are retried with a look for the
earlier copy first, so the primary never gets a message twice.

Pure: times are passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from continuity.errors import ContinuityError


class ItemState(StrEnum):
    """Where one journal item stands."""

    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    FAILED = "failed"
    HELD = "held"


S = ItemState

# Allowed transitions; anything else is a bug and raises.
TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    S.PENDING: frozenset({S.DELIVERING, S.HELD}),
    S.DELIVERING: frozenset({S.DELIVERED, S.DEFERRED, S.FAILED, S.HELD}),
    S.DEFERRED: frozenset({S.DELIVERING, S.HELD, S.FAILED}),
    # An operator released the held message from quarantine.
    S.HELD: frozenset({S.PENDING}),
    # An operator asked for another try ('continuity replay retry').
    S.FAILED: frozenset({S.PENDING}),
    # Verification did not find the delivered copy on the primary.
    S.DELIVERED: frozenset({S.PENDING}),
}

# States that need no more work.
FINAL = frozenset({S.DELIVERED, S.FAILED, S.HELD})
# States that still need work.
OPEN = frozenset({S.PENDING, S.DELIVERING, S.DEFERRED})


class JournalError(ContinuityError):
    """An illegal journal transition."""


def check_transition(old: ItemState, new: ItemState) -> None:
    """Raise JournalError unless old -> new is allowed."""
    if new not in TRANSITIONS[old]:
        raise JournalError(f"a replay item cannot go from {old.value} to {new.value}")


class OutcomeKind(StrEnum):
    """What one delivery attempt came to."""

    DELIVERED = "delivered"
    # Found on the primary already (an earlier attempt got through before a crash).
    ALREADY_THERE = "already_there"
    # The primary asked us to slow down (IMAP "server busy"/[LIMIT], any SMTP 4xx).
    THROTTLED = "throttled"
    # Temporary: try this message again later.
    DEFERRED = "deferred"
    # Permanent for this message: do not retry on its own.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one attempt for one item, with the primary's answer."""

    kind: OutcomeKind
    detail: str = ""
    code: int = 0
    latency: float = 0.0


_THROTTLE_WORDS = re.compile(
    r"\[(LIMIT|UNAVAILABLE|INUSE|THROTTLED)\]|server (is )?busy|too many|try again later|server unavailable|"
    r"rate limit|throttl",
    re.IGNORECASE,
)
_PERMANENT_CODES = re.compile(r"\[(TOOBIG|CANNOT|PARSE|BADCHARSET|CLIENTBUG)\]", re.IGNORECASE)


def classify_imap_no(text: str) -> OutcomeKind:
    """Classify an IMAP NO answer to APPEND (RFC 5530 response codes, Exchange's wording)."""
    if _THROTTLE_WORDS.search(text):
        return OutcomeKind.THROTTLED
    if _PERMANENT_CODES.search(text):
        return OutcomeKind.FAILED
    # [OVERQUOTA], [SERVERBUG], [NONEXISTENT] after a failed CREATE, and anything unknown: retry later.
    return OutcomeKind.DEFERRED


def classify_smtp(code: int) -> OutcomeKind:
    """Classify an SMTP reply code to one recipient of a replayed message."""
    if 200 <= code < 300:
        return OutcomeKind.DELIVERED
    if 400 <= code < 500:
        # Exchange answers back pressure with 452 4.3.1 and 421 4.3.2; any 4xx means "not now, slower".
        return OutcomeKind.THROTTLED
    if 500 <= code < 600:
        return OutcomeKind.FAILED
    return OutcomeKind.DEFERRED


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential retries of one item, for give_up_after seconds, with a warning warn_before the end."""

    initial: float
    maximum: float
    give_up_after: float
    warn_before: float

    def delay(self, attempts: int) -> float:
        """Seconds before attempt attempts + 1 (attempts >= 1 were made)."""
        return float(min(self.maximum, self.initial * 2.0 ** max(0, attempts - 1)))

    def expired(self, first_attempt_at: float, now: float) -> bool:
        """True when retrying has lasted give_up_after."""
        return now - first_attempt_at >= self.give_up_after

    def warn_at(self, first_attempt_at: float) -> float:
        """When the admins are warned that this item will fail."""
        return first_attempt_at + self.give_up_after - self.warn_before


@dataclass(frozen=True, slots=True)
class Resolution:
    """The journal state an attempt leads to, and when to try again."""

    state: ItemState
    next_attempt_at: float = 0.0
    detail: str = ""


def resolve(
    attempt: Attempt,
    *,
    attempts: int,
    first_attempt_at: float,
    now: float,
    policy: RetryPolicy,
    throttle_delay: float = 0.0,
) -> Resolution:
    """The new state of an item after attempt (its attempts-th), under policy."""
    if attempt.kind in (OutcomeKind.DELIVERED, OutcomeKind.ALREADY_THERE):
        return Resolution(ItemState.DELIVERED, 0.0, attempt.detail)
    if attempt.kind is OutcomeKind.FAILED:
        return Resolution(ItemState.FAILED, 0.0, attempt.detail)
    if policy.expired(first_attempt_at, now):
        days = policy.give_up_after / 86400
        return Resolution(ItemState.FAILED, 0.0, f"gave up after {days:g} days of retries; last: {attempt.detail}")
    if attempt.kind is OutcomeKind.THROTTLED:
        # The flow control already paused everything; retry soon, not after the item's own backoff.
        return Resolution(ItemState.DEFERRED, now + max(throttle_delay, 0.05), attempt.detail)
    return Resolution(ItemState.DEFERRED, now + policy.delay(attempts), attempt.detail)
