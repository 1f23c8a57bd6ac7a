"""Scoring the filter pipeline on labelled mail: confusion table, precision, recall (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from continuity.core.pipeline import Verdict

NEGATIVE_LABELS = frozenset({"ham", "clean", "legit", "negative"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """One labelled message and the verdict it got."""

    label: str
    name: str
    verdict: Verdict
    score: float
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Scores:
    """Binary scores: positive = a label not in the negatives, flagged = verdict at or above the threshold."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float:
        """Flagged messages that are really bad (1.0 when nothing was flagged)."""
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        """Bad messages that were flagged (1.0 when there were none)."""
        bad = self.true_positives + self.false_negatives
        return self.true_positives / bad if bad else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    @property
    def false_positive_rate(self) -> float:
        """Good messages that were flagged."""
        good = self.false_positives + self.true_negatives
        return self.false_positives / good if good else 0.0


def is_negative(label: str, negatives: frozenset[str] = NEGATIVE_LABELS) -> bool:
    """True for the labels of good mail."""
    return label.lower() in negatives


def score(
    outcomes: Iterable[Outcome], threshold: Verdict = Verdict.QUARANTINE, negatives: frozenset[str] = NEGATIVE_LABELS
) -> Scores:
    """Binary scores of outcomes."""
    tp = fp = fn = tn = 0
    for outcome in outcomes:
        flagged = outcome.verdict.rank >= threshold.rank
        bad = not is_negative(outcome.label, negatives)
        if bad and flagged:
            tp += 1
        elif bad:
            fn += 1
        elif flagged:
            fp += 1
        else:
            tn += 1
    return Scores(tp, fp, fn, tn)


def confusion(outcomes: Iterable[Outcome]) -> dict[str, Counter[Verdict]]:
    """Per label, how many messages got each verdict."""
    table: dict[str, Counter[Verdict]] = {}
    for outcome in outcomes:
        table.setdefault(outcome.label, Counter())[outcome.verdict] += 1
    return table
