"""How the replay commands print: the plan table, the per-mailbox status table, the progress bar."""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from continuity.cli.context import console
from continuity.core.replay_journal import ItemState
from continuity.services.replay_preview import PreviewRow
from continuity.services.replay_status import ReplayStatus


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


def _table(*headers: str) -> Table:
    """A table whose cells wrap instead of being cut short (subjects and reasons must stay readable)."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def print_plan(rows: list[PreviewRow], limit: int) -> None:
    """Per mailbox: copies to deliver by folder, to hold; then the messages themselves (up to limit)."""
    summary = _table("Mailbox", "Deliver", "Hold", "Other", "Into folders")
    by_mailbox: dict[str, list[PreviewRow]] = defaultdict(list)
    for row in rows:
        by_mailbox[row.mailbox].append(row)
    for mailbox, items in sorted(by_mailbox.items()):
        actions = Counter(row.action for row in items)
        folders = Counter(row.folder for row in items if row.action == "deliver")
        other = sum(count for action, count in actions.items() if action not in ("deliver", "hold"))
        summary.add_row(
            mailbox,
            str(actions["deliver"]),
            str(actions["hold"]),
            str(other),
            ", ".join(f"{folder} ({count})" for folder, count in folders.most_common()),
        )
    out = console()
    out.print(summary)
    detail = _table("Mailbox", "Received", "From", "Subject", "Folder", "Flags", "Action", "Why")
    for row in sorted(rows, key=lambda r: (r.mailbox, r.received_at))[:limit]:
        detail.add_row(
            row.mailbox, _when(row.received_at), row.sender or "<>", row.subject[:60], row.folder, row.flags,
            row.action, row.reason,
        )  # fmt: skip
    out.print(detail)
    if len(rows) > limit:
        click.echo(f"... and {len(rows) - limit} more (--limit to see more).")


def print_status(status: ReplayStatus) -> None:
    """The run and a table of counts per mailbox."""
    run = status.run
    if run is None:
        click.echo(f"No replay run yet; {status.unplanned} message copy(ies) wait for replay.")
        return
    click.echo(f"Run:        {run.id} ({run.kind.value}), {run.status.value}, started {_when(run.started_at)}")
    if run.compromise:
        confirmed = f"confirmed by {run.confirmed_by}" if run.confirmed_by else "NOT confirmed yet"
        click.echo(f"Compromise: yes, {confirmed}")
    if run.manifest_path:
        click.echo(f"Manifest:   {run.manifest_path} (sha256 {run.manifest_sha256})")
    if run.detail:
        click.echo(f"Detail:     {run.detail}")
    if status.unplanned:
        click.echo(f"Not yet planned: {status.unplanned} message copy(ies)")
    if status.unaccounted is not None:
        click.echo(f"Reconciliation: {status.unaccounted} standby copy(ies) without a final outcome")
    if status.next_retry:
        click.echo(f"Next retry: {_when(status.next_retry)}")
    if status.prediction is not None and status.remaining:
        click.echo(f"Predicted:  {status.prediction.sentence()}")
    states = list(ItemState)
    table = Table("Mailbox", *(state.value for state in states))
    for progress in status.mailboxes:
        table.add_row(progress.mailbox, *(str(progress.count(state)) for state in states))
    table.add_row("total", *(str(status.total(state)) for state in states), style="bold")
    console().print(table)


class RateColumn(ProgressColumn):
    """Messages per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} msg/s" if speed else "- msg/s")


class PredictedColumn(ProgressColumn):
    """The predicted rest of the run (per-mailbox rates and the plan), which rich's own ETA cannot know."""

    def render(self, task: Task) -> Text:
        predicted = task.fields.get("predicted")
        return Text(f"predicted {predicted}" if predicted else "")


class ProgressView:
    """A rich progress bar with rate, ETA and the predicted rest on a terminal; a line every few seconds otherwise."""

    def __init__(self, interactive: bool | None = None, output: Console | None = None) -> None:
        self.interactive = sys.stdout.isatty() if interactive is None else interactive
        self._output = output
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = 0.0

    def __enter__(self) -> ProgressView:
        if self.interactive:
            self._progress = Progress(
                TextColumn("[bold]replay[/bold]"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), PredictedColumn(), console=self._output or console(),
            )  # fmt: skip
            self._progress.start()
            self._task = self._progress.add_task("replay", total=None, predicted="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, status: ReplayStatus) -> None:
        """Show how far the replay is."""
        done = sum(status.total(state) for state in (ItemState.DELIVERED, ItemState.HELD, ItemState.FAILED))
        total = done + status.remaining
        prediction = status.prediction.sentence() if status.prediction is not None and status.remaining else ""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total or None, predicted=prediction)
            return
        now = time.monotonic()
        if now - self._last_line >= 5.0:
            self._last_line = now
            click.echo(
                f"replay: {done} of {total} done ({status.total(ItemState.DELIVERED)} delivered, "
                f"{status.total(ItemState.HELD)} held, {status.total(ItemState.FAILED)} failed, "
                f"{status.total(ItemState.DEFERRED)} deferred)" + (f"; predicted {prediction}" if prediction else "")
            )
