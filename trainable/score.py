"""The score: what a trial achieved at the budget, written once. The analysis (sweet spots, the
answer, the claims), the region search, the replay's truth and docs/study.md all import it.

A trial's *score* at a budget of E epochs is its best `metric` (default `val_p1`) over its
**epoch-end evaluations** at epochs 1..E, leaving out every evaluation at which its predictions are
constant across documents (`collapse.constant_predictions`: such a model predicts one label for
every document whatever that label's share, so it never counts as training). Mid-epoch evaluations
(`train.eval_every_steps`) serve the early stoppers and the curves, never a score: how often a run is
evaluated cannot change a verdict. A retried epoch counts once (its last report).

A configuration *qualifies* (it trains) when its score reaches the level L = (1 + δ)·F and beats
F = majority_p1 + `train.collapse_p1_margin`, the majority-label floor. Because the score is a best
over epoch ends, a run that qualified at some epoch end stays qualified: it is *decided*.

Why this definition (docs/analysis.md has the table): of the candidates measured on the committed
ground-truth tables, best-over-epoch-ends flips the verdict between the two seeds of a configuration
least often, and it lets a search decide a run as soon as it qualifies. Pure Python: no torch.

Example:
    >>> rows = [{"epoch": 1.0, "val_p1": 0.40}, {"epoch": 1.5, "val_p1": 0.60}, {"epoch": 2.0, "val_p1": 0.45}]
    >>> s = score(rows, budget=2)
    >>> s.value, s.epoch  # the mid-epoch spike (0.60 at 1.5) is not read
    (0.45, 2.0)
    >>> round(level(0.40, delta=0.02), 4), qualifies(s.value, floor=0.40, delta=0.02)
    (0.408, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sweetspot.trainable import keys
from sweetspot.trainable.collapse import constant_predictions

EPOCH_TOL = 1e-3  # reported epochs are rounded (0.3333, 0.6667): an epoch end is within this of a whole number
DEFAULT_DELTA = 0.02  # the margin above the floor a score must reach: 2 % relative
DEFAULT_ENTROPY_FRACTION = 0.2  # trainable.config.TrainConfig.collapse_entropy_fraction's default

__all__ = ["Score", "DEFAULT_DELTA", "epoch_end_rows", "is_epoch_end", "level", "qualifies", "score"]


@dataclass(frozen=True)
class Score:
    """A trial's score at the budget."""

    value: float  # the best metric over the counted epoch ends <= budget; NaN when none counts
    epoch: float | None  # the epoch end it came from (the checkpoint a keep-best policy keeps)
    reached: float  # the last epoch end it reported, capped at the budget (0: none)
    counted: int  # epoch ends <= budget that counted (finite metric, not diverged, predictions not constant)

    @property
    def scored(self) -> bool:
        return _finite(self.value)


def is_epoch_end(row: dict[str, Any]) -> bool:
    """The row is an evaluation at a whole epoch >= 1."""
    epoch = row.get(keys.EPOCH)
    return _finite(epoch) and epoch >= 1 - EPOCH_TOL and abs(epoch - round(epoch)) <= EPOCH_TOL


def epoch_end_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epoch-end rows in epoch order, one per epoch (the last one reported: a retried epoch
    counts once)."""
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        if is_epoch_end(row):
            out[round(row[keys.EPOCH])] = row
    return [out[e] for e in sorted(out)]


def counts(row: dict[str, Any], *, metric: str = keys.VAL_P1, entropy_fraction: float = DEFAULT_ENTROPY_FRACTION) -> bool:
    """An epoch-end row can score: a finite metric, not diverged, predictions not constant."""
    return (
        _finite(row.get(metric))
        and not row.get(keys.DIVERGED)
        and not constant_predictions(row, entropy_fraction=entropy_fraction)
    )


def score(
    rows: Iterable[dict[str, Any]],
    *,
    budget: float,
    metric: str = keys.VAL_P1,
    mode: str = "max",
    entropy_fraction: float = DEFAULT_ENTROPY_FRACTION,
) -> Score:
    """The trial's score at `budget` epochs (the module docstring's definition). Ties go to the
    earliest epoch."""
    ends = [r for r in epoch_end_rows(rows) if r[keys.EPOCH] <= budget + EPOCH_TOL]
    good = [r for r in ends if counts(r, metric=metric, entropy_fraction=entropy_fraction)]
    reached = float(round(ends[-1][keys.EPOCH])) if ends else 0.0
    if not good:
        return Score(value=math.nan, epoch=None, reached=reached, counted=0)
    sign = 1.0 if mode == "max" else -1.0
    best = good[0]
    for r in good[1:]:
        if sign * r[metric] > sign * best[metric]:
            best = r
    return Score(value=float(best[metric]), epoch=float(round(best[keys.EPOCH])), reached=reached, counted=len(good))


def level(floor: float, *, delta: float = DEFAULT_DELTA) -> float:
    """The level a score must reach to qualify: (1 + δ)·F."""
    return (1.0 + delta) * floor


def qualifies(value: float, *, floor: float, delta: float = DEFAULT_DELTA) -> bool:
    """The qualification rule (it *trains*): value >= (1 + δ)·F - 1e-9 and value > F."""
    return _finite(value) and _finite(floor) and value >= level(floor, delta=delta) - 1e-9 and value > floor


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
