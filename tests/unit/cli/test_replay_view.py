"""How ``continuity replay`` shows progress: a rich bar with rate and ETA on a terminal, lines otherwise."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from continuity.cli.replay_view import ProgressView
from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import MailboxProgress, ReplayRun, RunKind, RunStatus
from continuity.services.replay_status import ReplayStatus

RUN = ReplayRun(1, RunKind.RESTORATION, RunStatus.ACTIVE, 0.0, compromise=False)


def _status(delivered: int, pending: int) -> ReplayStatus:
    counts = {ItemState.DELIVERED: delivered, ItemState.PENDING: pending}
    return ReplayStatus(RUN, (MailboxProgress("alice@example.com", counts),), unplanned=0, next_retry=None)


def test_a_terminal_gets_a_bar_with_rate_and_eta() -> None:
    buffer = io.StringIO()
    output = Console(file=buffer, force_terminal=True, width=120)
    with ProgressView(interactive=True, output=output) as view:
        for delivered in range(0, 101, 20):
            view.update(_status(delivered, 100 - delivered))
            time.sleep(0.05)
    text = buffer.getvalue()
    assert "replay" in text and "100/100" in text and "msg/s" in text and "ETA" in text


def test_a_pipe_gets_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressView(interactive=False) as view:
        view.update(_status(40, 60))
    assert capsys.readouterr().out.strip() == "replay: 40 of 100 done (40 delivered, 0 held, 0 failed, 0 deferred)"
