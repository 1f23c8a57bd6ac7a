"""The predicted rest of a replay run, as ``continuity replay status`` and the progress bar show it."""

from __future__ import annotations

import pytest

from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import MailboxProgress, ReplayRun, RunKind, RunStatus
from continuity.services.replay_status import Pace, Prediction, ReplayStatus, predict

RUN = ReplayRun(1, RunKind.RESTORATION, RunStatus.ACTIVE, started_at=1000.0, compromise=False)


def _mailboxes(delivered: int, pending: int, count: int) -> tuple[MailboxProgress, ...]:
    return tuple(
        MailboxProgress(f"user{n}@example.com", {ItemState.DELIVERED: delivered, ItemState.PENDING: pending})
        for n in range(count)
    )


def test_before_any_delivery_the_configured_mailbox_rate_is_used() -> None:
    prediction = predict(RUN, _mailboxes(0, 20, 8), 0, Pace(lanes=4, mailbox_rate=4.0), now=1001.0)
    # 8 mailboxes x 20 copies at 4 msg/s, 4 at once: two rounds of 5 s.
    assert prediction.seconds == pytest.approx(10.0)
    assert (prediction.mailbox_rate, prediction.observed) == (4.0, False)
    assert "10 s left" in prediction.sentence() and "mailbox_rate" in prediction.sentence()


def test_the_observed_per_mailbox_rate_wins_over_the_setting() -> None:
    # 8 mailboxes, 4 at once, 80 delivered in 10 s: 8 msg/s overall, 2 msg/s per mailbox.
    prediction = predict(RUN, _mailboxes(10, 10, 8), 0, Pace(lanes=4, mailbox_rate=4.0), now=1010.0)
    assert prediction.observed and prediction.mailbox_rate == pytest.approx(2.0)
    assert prediction.seconds == pytest.approx(8 * 10 / 2.0 / 4)


def test_unknown_without_a_rate_and_zero_when_nothing_is_left() -> None:
    assert predict(RUN, _mailboxes(0, 5, 2), 0, Pace(4, 0.0), now=1001.0).seconds is None
    assert predict(RUN, _mailboxes(5, 0, 2), 0, Pace(4, 0.0), now=1010.0).seconds == 0.0


def test_the_json_status_carries_the_prediction() -> None:
    prediction = Prediction(600.0, 4.0, True)
    document = ReplayStatus(RUN, _mailboxes(1, 1, 1), 0, None, prediction=prediction).as_json()
    assert document["predicted_seconds"] == 600.0 and document["predicted_rate_observed"] is True
    assert prediction.sentence() == "about 10 min left at 4.0 msg/s per mailbox (observed)"
