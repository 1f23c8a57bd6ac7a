"""Log configuration: one line per event on stderr, quiet third-party chatter."""

from __future__ import annotations

import logging
import sys

from continuity.config.settings import LogLevel

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: LogLevel) -> None:
    """Log to stderr at level; keep third-party loggers that chatter at INFO at WARNING.

    aiosmtpd logs every command, and httpx (the health probes, the webhook) one line per
    request: four lines every monitor cycle.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.value.upper())
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    for noisy in ("uvicorn", "uvicorn.error", "asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
