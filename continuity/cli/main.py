"""Entry point of the ``continuity`` command."""

from __future__ import annotations

from pathlib import Path

import click

from continuity import __version__
from continuity.cli.audit_cmd import audit_group
from continuity.cli.config_cmd import config_group
from continuity.cli.context import CliContext
from continuity.cli.directory_cmd import directory_group
from continuity.cli.failover_cmd import FAILOVER_COMMANDS
from continuity.cli.filter_cmd import filter_group
from continuity.cli.mailbox_cmd import mailbox_group
from continuity.cli.quarantine_cmd import quarantine_group
from continuity.cli.queue_cmd import queue_group
from continuity.cli.replay_cmd import replay_group
from continuity.cli.serve_cmd import serve_command
from continuity.cli.signals_cmd import signals_group
from continuity.cli.webmail_cmd import webmail_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML configuration file (default: $CONTINUITY_CONFIG; CONTINUITY_* variables override it).",
)
@click.version_option(__version__, prog_name="continuity")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Email continuity appliance: a standby mail stack for when Exchange is down or compromised."""
    ctx.obj = CliContext(config_path)


cli.add_command(serve_command)
cli.add_command(config_group)
cli.add_command(mailbox_group)
cli.add_command(queue_group)
cli.add_command(audit_group)
for _command in FAILOVER_COMMANDS:
    cli.add_command(_command)
cli.add_command(quarantine_group)
cli.add_command(filter_group)
cli.add_command(signals_group)
cli.add_command(replay_group)
cli.add_command(webmail_group)
cli.add_command(directory_group)


def main() -> None:
    """Run the command line."""
    cli(prog_name="continuity")
