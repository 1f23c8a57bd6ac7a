"""Failover commands: ``status``, ``probe``, ``failover``, ``failback``, ``pause``, ``resume``, ``dns check``.

Orders are stored as commands in the database. When ``continuity serve`` runs, its
monitor carries them out within ``[failover] command_poll`` seconds and this command
waits for the result; when no server runs, this process takes the data directory's lock
and carries the command out itself. Either way exactly one process applies
transitions.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

import click
from rich.table import Table

from continuity.adapters.probe_canary import probe_canary
from continuity.cli.context import EXIT_FAILED, EXIT_USAGE, CliContext, console, fail, pass_context, run_async
from continuity.core.failover import FailoverEvent
from continuity.core.failover_records import CommandStatus, OperatorCommand
from continuity.services.dns_check import check_dns
from continuity.services.failover_orders import carry_out
from continuity.services.failover_status import StatusReport, collect_status, routing_sentence, since_text
from continuity.services.probe_runner import PrimaryProbes
from continuity.store.protocol import Store


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _order(context: CliContext, event: FailoverEvent, note: str, done: str) -> None:
    settings = context.settings()

    async def work(store: Store) -> OperatorCommand:
        return await carry_out(settings, store, event, note, _actor())

    command = context.run(work)
    if command.status is CommandStatus.PENDING:
        fail(
            f"the running server did not carry out the order within {settings.failover.command_timeout:g}s; "
            f"it stays queued as command {command.id}.",
            EXIT_FAILED,
        )
    if command.status is CommandStatus.REJECTED:
        fail(f"refused: {command.result}.", EXIT_FAILED)
    if command.status is CommandStatus.FAILED:
        fail(f"{done}, but switching mail failed; the state is now {command.result}.", EXIT_FAILED)
    click.echo(f"{done}; the state is now {command.result}.")


@click.command("failover")
@click.option(
    "--reason",
    type=click.Choice(["outage", "compromise"]),
    required=True,
    help="outage: the primary is down; compromise: it must not receive mail until an operator fails back.",
)
@click.option("--note", required=True, help="Why, for the audit log and the notifications.")
@pass_context
def failover_command(context: CliContext, reason: str, note: str) -> None:
    """Switch mail to the standby now."""
    event = FailoverEvent.OPERATOR_COMPROMISE if reason == "compromise" else FailoverEvent.OPERATOR_FAILOVER
    _order(context, event, note, f"Failover ({reason}) carried out")


@click.command("failback")
@click.option("--note", default="operator failback", show_default=True, help="Why, for the audit log.")
@pass_context
def failback_command(context: CliContext, note: str) -> None:
    """Restore the primary: replay what the standby received, then switch mail back."""
    _order(context, FailoverEvent.OPERATOR_FAILBACK, note, "Failback started")


@click.command("pause")
@click.option("--note", default="maintenance", show_default=True, help="Why, for the audit log.")
@pass_context
def pause_command(context: CliContext, note: str) -> None:
    """Maintenance: keep probing but act on nothing until 'continuity resume'."""
    _order(context, FailoverEvent.OPERATOR_PAUSE, note, "Paused")


@click.command("resume")
@click.option("--note", default="maintenance over", show_default=True, help="Why, for the audit log.")
@pass_context
def resume_command(context: CliContext, note: str) -> None:
    """End a pause: the monitor acts again from the state it was paused in."""
    _order(context, FailoverEvent.OPERATOR_RESUME, note, "Resumed")


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def status_command(context: CliContext, as_json: bool) -> None:
    """The failover state, since when and why, the last probe results and the queue depth."""
    report: StatusReport = context.run(collect_status)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
        return
    record = report.record
    click.echo(f"State:        {record.state.value} since {since_text(record)}")
    click.echo(f"Why:          {record.reason} (by {record.actor})")
    click.echo(f"Mail goes to: {routing_sentence(record)}")
    if record.paused_from is not None:
        click.echo(f"Paused from:  {record.paused_from.value}")
    if record.last_error:
        click.echo(f"Last error:   {record.last_error}")
    click.echo(f"Queue depth:  {report.queue_depth} message(s)")
    if report.probes:
        table = Table("Probe", "Result", "Latency", "When", "Detail")
        for probe in report.probes:
            table.add_row(
                probe.name,
                probe.outcome.value,
                f"{probe.latency * 1000:.0f} ms",
                _iso(probe.at),
                "; ".join([probe.detail, *probe.warnings]),
            )
        console().print(table)
    else:
        click.echo("No probe results yet.")


@click.command("probe")
@pass_context
def probe_command(context: CliContext) -> None:
    """Run every configured probe of the primary once and print a table; exit 1 when one is not up."""
    settings = context.settings()
    if not settings.primary.configured:
        fail("no primary is configured: set [primary] host.", EXIT_USAGE)

    async def work() -> list[tuple[str, str, float, str]]:
        probes = PrimaryProbes(settings)
        canary, probes.canary = probes.canary, None
        results = await probes.run()
        if canary is not None:
            results.append(await probe_canary(canary, probes.tls))
        return [(r.name, r.outcome.value, r.latency, "; ".join([r.detail, *r.warnings])) for r in results]

    rows = run_async(work())
    table = Table("Probe", "Result", "Latency", "Detail")
    for name, outcome, latency, detail in rows:
        table.add_row(name, outcome, f"{latency * 1000:.0f} ms", detail)
    console().print(table)
    if any(outcome != "up" for _name, outcome, _latency, _detail in rows):
        raise SystemExit(EXIT_FAILED)


@click.group("dns")
def dns_group() -> None:
    """DNS switching."""


@dns_group.command("check")
@pass_context
def dns_check_command(context: CliContext) -> None:
    """Verify ahead of time that DNS switching will work; exit 1 when a check fails."""
    settings = context.settings()
    checks = run_async(check_dns(settings))
    table = Table("Check", "Result", "Detail")
    for check in checks:
        table.add_row(check.name, "ok" if check.ok else "FAILED", check.detail)
    console().print(table)
    if not all(check.ok for check in checks):
        raise SystemExit(EXIT_FAILED)


# Registered by continuity.cli.main.
FAILOVER_COMMANDS: tuple[click.Command, ...] = (
    status_command,
    probe_command,
    failover_command,
    failback_command,
    pause_command,
    resume_command,
    dns_group,
)
