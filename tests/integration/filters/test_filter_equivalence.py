"""The filter pipeline's speed-ups change nothing: the same verdicts and findings as before, in-process and in workers.

tests/support/filter_golden.py runs the pipeline over the labelled corpus, dkimpy's test
messages and the SpamAssassin ham, with every default stage (mail authentication
against a private BIND); tests/data/filter_golden.json.gz holds what the pipeline found
before it was made faster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from continuity.config.settings import Settings
from continuity.core.pipeline import Envelope
from continuity.services.filter_processes import ProcessPipeline
from continuity.services.filter_setup import FilterService
from continuity.services.filtering import PipelineResult
from continuity.store.sqlite import SqliteStore
from tests.support.bind import BindServer
from tests.support.filter_golden import Close, Evaluate, differences, read_golden, run_outcomes, start_bind


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


async def test_worker_processes_find_what_the_pipeline_found_before(tmp_path: Path, bind: BindServer) -> None:
    pools: list[ProcessPipeline] = []

    async def in_workers(service: FilterService, settings: Settings, store: SqliteStore) -> tuple[Evaluate, Close]:
        workers = ProcessPipeline(settings, 2)
        pools.append(workers)

        async def evaluate(envelope: Envelope, content: bytes) -> PipelineResult:
            return await workers.evaluate(envelope, content, learn=False)

        return evaluate, workers.close

    actual = await run_outcomes(tmp_path, bind.port, evaluator=in_workers)
    assert differences(read_golden(), actual) == []
    assert [pool.unscannable for pool in pools] == [0, 0]
    assert all(pool.in_workers > 2000 for pool in pools[:1])
