"""``continuity config validate|show|reference``."""

from __future__ import annotations

import click

from continuity.cli.context import CliContext, pass_context
from continuity.config.reference import render_reference
from continuity.config.show import render_effective


@click.group("config")
def config_group() -> None:
    """Check and display the configuration."""


@config_group.command("validate")
@pass_context
def validate_command(context: CliContext) -> None:
    """Check the configuration; exit 0 when valid, 2 with one sentence per problem otherwise."""
    settings = context.settings()
    source = context.config_path or "environment and defaults"
    click.echo(f"Configuration is valid ({source}); protected domains: {', '.join(settings.domains) or 'none'}.")


@config_group.command("show")
@pass_context
def show_command(context: CliContext) -> None:
    """Print the effective configuration as TOML, secrets redacted."""
    click.echo(render_effective(context.settings()), nl=False)


@config_group.command("reference")
def reference_command() -> None:
    """Print the reference of every key (the source of docs/configuration.md)."""
    click.echo(render_reference(), nl=False)
