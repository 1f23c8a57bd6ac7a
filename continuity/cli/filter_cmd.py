"""``continuity filter check|eval``: run the security filter pipeline on files.

``check FILE.eml`` prints every stage's findings and the verdict (the pipeline does
not learn from it). ``eval DIR`` scores the pipeline on labelled mail (a folder per
label) in a temporary store, so the appliance's own memory is neither used nor changed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import click
from rich.table import Table

from continuity.cli.context import EXIT_USAGE, CliContext, console, fail, pass_context, run_async
from continuity.core.evaluation import Outcome, confusion, is_negative, score
from continuity.core.pipeline import Direction, Envelope, Verdict
from continuity.services.filter_eval import (
    FindingScore,
    envelope_from_headers,
    evaluate_corpus,
    finding_scores,
    read_message,
)
from continuity.services.filter_setup import FilterService
from continuity.services.filtering import PipelineResult
from continuity.store.protocol import Store
from continuity.store.sqlite import open_sqlite_store


@click.group("filter")
def filter_group() -> None:
    """Run the security filter pipeline on message files."""


def _result_json(result: PipelineResult) -> dict[str, object]:
    return {
        "verdict": result.verdict.value,
        "score": result.decision.score,
        "reasons": [
            {"verdict": r.verdict.value, "cause": r.cause, "message": r.message} for r in result.decision.reasons
        ],
        "stages": [
            {
                "stage": s.stage,
                "status": s.status.value,
                "seconds": round(s.seconds, 6),
                "error": s.error,
                "findings": [
                    {"code": f.code, "score": f.score, "message": f.message, "evidence": list(f.evidence)}
                    for f in s.findings
                ],
            }
            for s in result.results
        ],
        "headers": result.header_block.decode("ascii", "replace"),
    }


@filter_group.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sender", default=None, help="Envelope sender (default: Return-Path or From).")
@click.option("--client-ip", default=None, help="Sending server's address (default: from the top Received field).")
@click.option("--helo", default=None, help="Sending server's HELO name.")
@click.option("--recipient", "recipients", multiple=True, help="Envelope recipient (repeatable; default: To).")
@click.option(
    "--direction", type=click.Choice([d.value for d in Direction]), default=Direction.INBOUND.value, show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def check_command(
    context: CliContext,
    path: Path,
    sender: str | None,
    client_ip: str | None,
    helo: str | None,
    recipients: tuple[str, ...],
    direction: str,
    as_json: bool,
) -> None:
    """Print every stage's findings and the verdict for one message file."""
    settings = context.settings()
    content = read_message(path)
    guessed = envelope_from_headers(content, recipients)
    envelope = Envelope(
        sender=guessed.sender if sender is None else sender,
        recipients=guessed.recipients,
        direction=Direction(direction),
        client_address=guessed.client_address if client_ip is None else client_ip,
        client_helo=guessed.client_helo if helo is None else helo,
    )

    async def work(store: Store) -> PipelineResult:
        service = FilterService(settings, store.filter_memory, store.mailboxes)
        await service.start(background=False)
        try:
            return await service.pipeline.evaluate(envelope, content, learn=False)
        finally:
            await service.stop()

    result = context.run(work)
    if as_json:
        click.echo(json.dumps(_result_json(result), indent=2, ensure_ascii=False))
        return
    click.echo(
        f"Envelope: <{envelope.sender}> -> {', '.join(envelope.recipients) or '-'}, "
        f"client [{envelope.client_address or '-'}] helo {envelope.client_helo or '-'}, {envelope.direction.value}"
    )
    table = Table("Stage", "Status", "ms", "Finding", "Score", "What it means", "Evidence")
    for stage in result.results:
        ms = f"{stage.seconds * 1000:.1f}"
        status = stage.status.value + (f" ({stage.error})" if stage.error else "")
        if not stage.findings:
            table.add_row(stage.stage, status, ms, "-", "", "", "")
        for index, finding in enumerate(stage.findings):
            table.add_row(
                stage.stage if index == 0 else "",
                status if index == 0 else "",
                ms if index == 0 else "",
                finding.code,
                f"{finding.score:g}",
                finding.message,
                "; ".join(finding.evidence)[:120],
            )
    console().print(table)
    click.echo(f"Verdict: {result.verdict.value} (score {result.decision.score:g})")
    for reason in result.decision.reasons:
        click.echo(f"  {reason.verdict.value} because {reason.cause}: {reason.message}")
    click.echo("Header fields that would be added:")
    click.echo(result.header_block.decode("ascii", "replace").rstrip())


def _finding_json(item: FindingScore) -> dict[str, float | int]:
    return {
        "fired_bad": item.fired_bad,
        "fired_good": item.fired_good,
        "precision": item.precision,
        "recall": item.recall,
        "false_positive_rate": item.false_positive_rate,
    }


def _print_eval(outcomes: list[Outcome], threshold: Verdict, show_misses: bool) -> None:
    table = Table("Label", *[verdict.value for verdict in Verdict], "Total", "Flagged")
    for label, counts in sorted(confusion(outcomes).items()):
        total = sum(counts.values())
        flagged = sum(n for verdict, n in counts.items() if verdict.rank >= threshold.rank)
        kind = "good" if is_negative(label) else "bad"
        table.add_row(
            f"{label} ({kind})",
            *[str(counts.get(verdict, 0)) for verdict in Verdict],
            str(total),
            f"{flagged} ({flagged / total:.0%})",
        )
    console().print(table)
    scores = score(outcomes, threshold)
    click.echo(f"Flagged = verdict {threshold.value} or stronger; positives = every label but ham/clean.")
    click.echo(
        f"precision {scores.precision:.3f}  recall {scores.recall:.3f}  F1 {scores.f1:.3f}  "
        f"false-positive rate {scores.false_positive_rate:.4f}  "
        f"(TP {scores.true_positives}, FP {scores.false_positives}, "
        f"FN {scores.false_negatives}, TN {scores.true_negatives})"
    )
    stages, codes = finding_scores(outcomes)
    table = Table("Stage / finding", "Fired on bad", "Fired on good", "Precision", "Recall", "FP rate")
    for item in stages + codes:
        table.add_row(
            item.name,
            str(item.fired_bad),
            str(item.fired_good),
            f"{item.precision:.3f}",
            f"{item.recall:.3f}",
            f"{item.false_positive_rate:.4f}",
        )
    console().print(table)
    click.echo("Per stage and finding: precision = fired on bad / fired; recall = fired on bad / bad messages.")
    if show_misses:
        for outcome in outcomes:
            flagged = outcome.verdict.rank >= threshold.rank
            if flagged == is_negative(outcome.label):
                kind = "false positive" if flagged else "missed"
                click.echo(
                    f"  {kind}: {outcome.label}/{outcome.name} {outcome.verdict.value} "
                    f"{outcome.score:g} {','.join(outcome.codes) or '-'}"
                )


def flush_memory(service: FilterService) -> Callable[[], Awaitable[None]]:
    """Write what the history taught and drop the cached frequent-sender domains, read before it was written."""

    async def flush() -> None:
        await service.memory.flush()
        service.memory.forget_cached()

    return flush


@filter_group.command("eval")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--threshold",
    type=click.Choice([v.value for v in Verdict if v is not Verdict.ACCEPT]),
    default=Verdict.QUARANTINE.value,
    show_default=True,
    help="Weakest verdict that counts as flagged.",
)
@click.option("--misses", is_flag=True, help="List every false positive and missed message.")
@click.option("--json", "as_json", is_flag=True, help="Print every outcome and the scores as JSON.")
@pass_context
def eval_command(context: CliContext, directory: Path, threshold: str, misses: bool, as_json: bool) -> None:
    """Score the pipeline on labelled messages (a folder per label; ham/clean are good mail)."""
    settings = context.settings()
    labels = [p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    if not labels:
        fail(f"{directory} has no label folders (e.g. {directory}/ham, {directory}/bec).", EXIT_USAGE)

    async def work() -> list[Outcome]:
        # Memory in a scratch store; the protected organisation's names from the configured store.
        with tempfile.TemporaryDirectory(prefix="continuity-eval-") as scratch:
            async with context.store() as configured:
                return await run_corpus(configured, Path(scratch))

    async def run_corpus(configured: Store, scratch: Path) -> list[Outcome]:
        store = await open_sqlite_store(scratch / "eval.db", scratch / "blobs")
        try:
            service = FilterService(settings, store.filter_memory, configured.mailboxes)
            try:
                await service.start(background=False)
                return await evaluate_corpus(service.pipeline, directory, flush=flush_memory(service))
            finally:
                await service.stop()
        finally:
            await store.close()

    outcomes = run_async(work())
    wanted = Verdict(threshold)
    if as_json:
        scores = score(outcomes, wanted)
        data = {
            "threshold": wanted.value,
            "precision": scores.precision,
            "recall": scores.recall,
            "f1": scores.f1,
            "false_positive_rate": scores.false_positive_rate,
            "stages": {item.name: _finding_json(item) for item in finding_scores(outcomes)[0]},
            "findings": {item.name: _finding_json(item) for item in finding_scores(outcomes)[1]},
            "confusion": {
                label: {v.value: counts.get(v, 0) for v in Verdict} for label, counts in confusion(outcomes).items()
            },
            "outcomes": [
                {"label": o.label, "file": o.name, "verdict": o.verdict.value, "score": o.score, "codes": list(o.codes)}
                for o in outcomes
            ],
        }
        click.echo(json.dumps(data, indent=2))
        return
    _print_eval(outcomes, wanted, misses)
