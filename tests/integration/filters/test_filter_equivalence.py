"""The filter pipeline's speed-ups change nothing: the same verdicts and findings as before them, in-process and pooled.

tests/support/filter_golden.py runs the pipeline over the labelled corpus, dkimpy's test
messages and the SpamAssassin ham, with every default stage (mail authentication
against a private BIND); tests/data/filter_golden.json.gz holds what the pipeline found
before it was made faster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bind import BindServer
from tests.support.filter_golden import differences, read_golden, run_outcomes, start_bind


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindServer]:
    server = start_bind(tmp_path_factory.mktemp("bind"))
    try:
        yield server
    finally:
        server.stop()


async def test_in_process_pipeline_finds_what_it_found_before(tmp_path: Path, bind: BindServer) -> None:
    actual = await run_outcomes(tmp_path, bind.port)
    assert differences(read_golden(), actual) == []
