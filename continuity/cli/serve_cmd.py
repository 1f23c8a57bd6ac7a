"""``continuity serve``: run the appliance in the foreground until SIGTERM."""

from __future__ import annotations

import asyncio
import logging

import click

from continuity.cli.context import EXIT_FAILED, EXIT_USAGE, CliContext, fail, pass_context
from continuity.errors import ConfigError, ContinuityError
from continuity.event_loops import new_event_loop
from continuity.logging_setup import configure_logging
from continuity.services.app import serve


@click.command("serve")
@pass_context
def serve_command(context: CliContext) -> None:
    """Run the appliance in the foreground; SIGTERM finishes in-flight sessions and exits 0."""
    settings = context.settings()
    configure_logging(settings.log_level)
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve(settings))
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except ContinuityError as exc:
        fail(str(exc), EXIT_FAILED)
    except OSError as exc:
        logging.getLogger("continuity").error("cannot start: %s", exc)
        fail(f"cannot start: {exc}", EXIT_FAILED)
