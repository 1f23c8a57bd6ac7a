"""Log set-up: third-party request chatter stays out of the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from continuity.config.settings import LogLevel
from continuity.logging_setup import configure_logging


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "uvicorn", "asyncio")}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)


@pytest.mark.usefixtures("restore_logging")
def test_http_requests_of_the_probes_are_not_logged_at_info() -> None:
    configure_logging(LogLevel.INFO)
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="200 OK"))
    with httpx.Client(transport=transport) as client:
        for path in ("/owa/healthcheck.htm", "/ews/healthcheck.htm"):
            assert client.get(f"https://primary.example.com{path}").status_code == 200
    logging.getLogger("continuity.monitor").info("monitor: every probe up")
    assert [record.name for record in collect.records] == ["continuity.monitor"]
