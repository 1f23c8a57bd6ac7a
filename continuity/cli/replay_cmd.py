"""``continuity replay [--dry-run]``, ``continuity replay status``, ``retry`` and ``check`` (replay_check_cmd).

``continuity replay`` follows the restoration (state RESTORING) with a progress bar (rate
and ETA) on a terminal: when ``continuity serve`` runs, its replayer does the work and
this command watches; otherwise this process replays itself and, once the run is
complete, moves the failover state on (the switch back). After a compromise it first
prints what will be delivered and asks for confirmation (``--yes`` confirms without
asking). ``--dry-run`` prints the plan and delivers nothing.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
import time

import click

from continuity.cli.context import EXIT_FAILED, CliContext, pass_context, run_async
from continuity.cli.replay_check_cmd import check_command
from continuity.cli.replay_view import ProgressView, print_plan, print_status
from continuity.config.settings import Settings
from continuity.core.audit import AuditRecord
from continuity.core.failover import FailoverState
from continuity.core.replay_records import ReplayRun, RunStatus
from continuity.services.filter_setup import FilterService
from continuity.services.replay_local import LocalReplay
from continuity.services.replay_preview import confirm_restoration, dry_run, run_preview
from continuity.services.replay_runs import RunKeeper
from continuity.services.replay_status import Pace, collect_status
from continuity.store.factory import open_store
from continuity.store.protocol import Store


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _confirm(store: Store, run: ReplayRun, yes: bool, note: str, limit: int) -> bool:
    rows = await run_preview(store, run)
    click.echo("A compromise was declared: nothing goes to the primary before an operator confirms this plan.")
    print_plan(rows, limit)
    deliver = sum(1 for row in rows if row.action == "deliver")
    if not yes:
        if not sys.stdin.isatty():
            click.echo("Confirmation needed: run 'continuity replay --yes' after reviewing the plan above.", err=True)
            return False
        if not click.confirm(f"Deliver these {deliver} message copies into the primary?", default=False):
            click.echo("Not confirmed; nothing was delivered.")
            return False
    await confirm_restoration(store, _actor(), note or "confirmed after reviewing the replay plan")
    click.echo(f"Confirmed: {deliver} message copies will be delivered.")
    return True


async def _tick(store: Store, view: ProgressView, run_id: int | None, pace: Pace) -> None:
    while True:
        run = await store.replay.get_run(run_id) if run_id is not None else await store.replay.latest_run()
        view.update(await collect_status(store, run, pace))
        await asyncio.sleep(0.5)


async def _finish(store: Store, run: ReplayRun | None, state: FailoverState) -> int:
    print_status(await collect_status(store, run))
    if run is not None and run.status is RunStatus.COMPLETED:
        click.echo(f"Replay complete; the failover state is now {state.value}.")
        return 0
    click.echo(f"The replay is not complete; the failover state is {state.value}.", err=True)
    return EXIT_FAILED


async def _here(local: LocalReplay, yes: bool, note: str, limit: int) -> int:
    """No server runs: replay in this process."""
    controller = local.failover.controller
    if controller.record.state is not FailoverState.RESTORING:
        click.echo(
            f"continuity: the failover state is {controller.record.state.value}; the replay runs in RESTORING "
            "('continuity failback' starts it).",
            err=True,
        )
        return EXIT_FAILED
    await local.replay.step()
    run = await local.replay.runs.restoration_run(controller.record)
    if run is not None and run.needs_confirmation and not await _confirm(local.store, run, yes, note, limit):
        return EXIT_FAILED
    with ProgressView() as view:
        ticker = asyncio.create_task(_tick(local.store, view, run.id if run else None, Pace.of(local.replay.settings)))
        try:
            run = await local.replay.run_until_complete()
        finally:
            ticker.cancel()
    if run is not None and run.status is RunStatus.COMPLETED:
        await controller.reconcile()
    return await _finish(local.store, run, controller.record.state)


async def _watch(settings: Settings, yes: bool, note: str, limit: int) -> int:
    """A server runs: its replayer works; follow it (and confirm the plan when it waits for that)."""
    store = await open_store(settings)
    try:
        keeper = RunKeeper(store, time.time)
        record = await store.failover.load()
        run = await keeper.restoration_run(record)
        if run is None and record.state is not FailoverState.RESTORING:
            click.echo(f"continuity: the failover state is {record.state.value}; no replay is running.", err=True)
            return EXIT_FAILED
        while run is None or (run.needs_confirmation and not await store.replay.progress(run.id)):
            await asyncio.sleep(0.5)  # the server creates and plans the run
            run = await keeper.restoration_run(await store.failover.load())
        if run.needs_confirmation and not await _confirm(store, run, yes, note, limit):
            return EXIT_FAILED
        pace = Pace.of(settings)
        with ProgressView() as view:
            while True:
                record = await store.failover.load()
                run = await store.replay.get_run(run.id) or run
                view.update(await collect_status(store, run, pace))
                if run.status is RunStatus.COMPLETED or record.state is not FailoverState.RESTORING:
                    break
                await asyncio.sleep(0.5)
        return await _finish(store, run, (await store.failover.load()).state)
    finally:
        await store.close()


async def _replay(settings: Settings, yes: bool, note: str, limit: int) -> int:
    local = await LocalReplay.open(settings)
    if local is None:
        return await _watch(settings, yes, note, limit)
    try:
        return await _here(local, yes, note, limit)
    finally:
        await local.close()


async def _dry_run(settings: Settings, limit: int) -> None:
    store = await open_store(settings)
    filters = FilterService(settings, store.filter_memory, store.mailboxes) if settings.filters.enabled else None
    try:
        if filters is not None:
            await filters.start(background=False)
        rows = await dry_run(store, settings, filters.pipeline if filters is not None else None)
    finally:
        if filters is not None:
            await filters.stop()
        await store.close()
    click.echo(f"Dry run: {len(rows)} message copies; nothing is delivered.")
    print_plan(rows, limit)


@click.group("replay", invoke_without_command=True)
@click.option("--dry-run", "dry", is_flag=True, help="Show what would be delivered where, and held; deliver nothing.")
@click.option("--yes", is_flag=True, help="After a compromise, confirm the printed plan without asking.")
@click.option("--note", default="", help="Why, recorded in the audit log with a confirmation.")
@click.option("--limit", default=200, show_default=True, help="Most messages listed in a plan.")
@click.pass_context
def replay_group(ctx: click.Context, dry: bool, yes: bool, note: str, limit: int) -> None:
    """Replay the standby's mail into the primary (in RESTORING), with a progress bar; or show the plan."""
    if ctx.invoked_subcommand is not None:
        return
    context: CliContext = ctx.obj
    settings = context.settings()
    if dry:
        run_async(_dry_run(settings, limit))
        return
    raise SystemExit(run_async(_replay(settings, yes, note, limit)))


@replay_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def status_command(context: CliContext, as_json: bool) -> None:
    """The latest replay run, with counts per mailbox and outcome."""

    async def work(store: Store) -> dict[str, object]:
        status = await collect_status(store, await store.replay.latest_run(), Pace.of(context.settings()))
        if not as_json:
            print_status(status)
        return status.as_json()

    document = context.run(work)
    if as_json:
        click.echo(json.dumps(document, indent=2))


@replay_group.command("retry")
@click.option("--note", default="operator retry", show_default=True, help="Why, for the audit log.")
@pass_context
def retry_command(context: CliContext, note: str) -> None:
    """Try failed messages again (they join the current run, or the next one)."""

    async def work(store: Store) -> int:
        run = await store.replay.latest_run()
        if run is None:
            return 0
        count = await store.replay.retry_failed(run.id, time.time())
        if count:
            await store.audit.append(AuditRecord.of(_actor(), "replay.retry", note, {"run": run.id, "items": count}))
        return count

    click.echo(f"{context.run(work)} failed message copy(ies) will be tried again.")


replay_group.add_command(check_command)
