"""How well an answer recovers the true sweet spots: one score, used by the benchmark and its tests.

Both the answer (a search's results, or a replay of one against a table) and the truth (the dense
ground-truth grid) are `SweetSpots` computed by the same analysis (`find_sweet_spots`), at the same
epoch, metric, mode and δ, so the truth's own folder scores perfectly against its table.

Per optimizer:
- **verdict agreement**: the answer's verdict (`found`, `none`, `unknown`; an optimizer the answer
  never sampled is `unknown`) equals the truth's;
- **edge errors** (decades): |log10 answer edge − log10 true edge| for the lower and for the upper
  edge, where an optimizer's edges are the outermost edges of its intervals; only when both found one;
- **IoU** in log10 lr: the length of the intersection of the two interval sets over the length of
  their union; 0 when only one of them found a sweet spot, None when neither did. Width-0 intervals
  have length 0: two of them score 1 when they share a point, and an interval of width 0 scores 0
  against one of positive width (its edge errors still say how close it is).

Overall:
- **regret**: (G − v) / |G| (the sign flipped when lower is better), where G is the truth's best
  configuration score and v the truth's score of the answer's best configuration — the same
  optimizer and weight decay at the nearest sampled lr of the truth in log10 (exact on a grid lr).
  `inf` when the truth has that configuration failing (diverged or stopped collapsed); None when the
  answer has no best configuration.
- **trial-epochs**: the epochs the answer's trials ran, summed, as a fraction of the truth's (the
  full grid at the budget).

Example:
    >>> truth = find_sweet_spots(results_from_table(json.loads(Path("bench/truth.json").read_text())))  # doctest: +SKIP
    >>> r = score(find_sweet_spots(load_results("results/tpe-asha")), truth)  # doctest: +SKIP
    >>> r.agreement, r.regret, round(r.trial_epochs_fraction, 2)  # doctest: +SKIP
    (0.8, 0.012, 0.31)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sweetspot.analysis.sweetspot import ConfigScore, SweetSpot, SweetSpots

__all__ = ["OptimizerRecovery", "Recovery", "score"]


@dataclass(frozen=True)
class OptimizerRecovery:
    """One optimizer's sweet spot in the answer against the truth."""

    optimizer: str
    truth: str  # the truth's verdict: found, none or unknown
    answer: str
    agree: bool
    lower_error: float | None  # decades between the lower edges; None unless both found a sweet spot
    upper_error: float | None
    iou: float | None  # intersection over union of the intervals in log10 lr; None when neither found one


@dataclass(frozen=True)
class Recovery:
    """`score`'s result: per optimizer, and overall."""

    optimizers: tuple[OptimizerRecovery, ...]
    regret: float | None  # relative to the truth's best score; 0 = the answer picked a best configuration
    trial_epochs: float  # epochs the answer's trials ran, summed
    grid_trial_epochs: float  # the same for the truth (the full grid)

    @property
    def agreement(self) -> float:
        """The fraction of optimizers whose verdicts agree."""
        return sum(o.agree for o in self.optimizers) / len(self.optimizers) if self.optimizers else 1.0

    @property
    def trial_epochs_fraction(self) -> float:
        return self.trial_epochs / self.grid_trial_epochs if self.grid_trial_epochs else math.nan

    @property
    def edge_errors(self) -> tuple[float, ...]:
        """Every edge error of every optimizer (lower and upper), for quantiles over replays."""
        return tuple(e for o in self.optimizers for e in (o.lower_error, o.upper_error) if e is not None)


def score(answer: SweetSpots, truth: SweetSpots) -> Recovery:
    """Scores `answer` against `truth` (see the module docstring).

    Raises:
        ValueError: the two were not computed alike (metric, mode, δ or comparison epoch differ).
    """
    for name in ("metric", "mode", "delta", "rule"):
        if getattr(answer, name) != getattr(truth, name):
            raise ValueError(f"answer and truth differ in {name}: {getattr(answer, name)!r} vs {getattr(truth, name)!r}")
    if answer.comparison.epoch != truth.comparison.epoch:
        raise ValueError(
            f"answer and truth are compared at different epochs: {answer.comparison.epoch:g} vs {truth.comparison.epoch:g}"
        )
    theirs = {s.optimizer: s for s in answer.optimizers}
    ours = {s.optimizer: s for s in truth.optimizers}
    optimizers = tuple(_optimizer(name, theirs.get(name), ours.get(name)) for name in sorted(set(theirs) | set(ours)))
    return Recovery(
        optimizers=optimizers,
        regret=_regret(answer, truth),
        trial_epochs=sum(s.last_epoch for s in answer.comparison.scores.values()),
        grid_trial_epochs=sum(s.last_epoch for s in truth.comparison.scores.values()),
    )


def _optimizer(name: str, answer: SweetSpot | None, truth: SweetSpot | None) -> OptimizerRecovery:
    a, t = (answer.verdict if answer else "unknown"), (truth.verdict if truth else "unknown")
    lower = upper = iou = None
    if a == t == "found":
        lower = abs(math.log10(answer.intervals[0].lower_lr) - math.log10(truth.intervals[0].lower_lr))
        upper = abs(math.log10(answer.intervals[-1].upper_lr) - math.log10(truth.intervals[-1].upper_lr))
    if "found" in (a, t):
        iou = _iou(answer.intervals if a == "found" else (), truth.intervals if t == "found" else ())
    return OptimizerRecovery(optimizer=name, truth=t, answer=a, agree=a == t, lower_error=lower, upper_error=upper, iou=iou)


def _iou(a, b) -> float:
    """Intersection over union of two sets of lr intervals, measured in log10 lr."""

    def spans(intervals):
        return [(math.log10(i.lower_lr), math.log10(i.upper_lr)) for i in intervals]

    def length(xs):  # of a union of spans
        total, end = 0.0, -math.inf
        for lo, hi in sorted(xs):
            total += max(0.0, hi - max(lo, end))
            end = max(end, hi)
        return total

    sa, sb = spans(a), spans(b)
    meets = [(max(x[0], y[0]), min(x[1], y[1])) for x in sa for y in sb if max(x[0], y[0]) <= min(x[1], y[1]) + 1e-12]
    union = length(sa + sb)
    if union == 0.0:  # only width-0 intervals: the same point or not
        return 1.0 if meets else 0.0
    return length(meets) / union


def _truth_at(truth: SweetSpots, choice: ConfigScore) -> ConfigScore | None:
    """The truth's configuration of the same optimizer and weight decay (any weight decay if the truth
    has none of that one) at the sampled lr nearest `choice.lr` in log10."""
    same = [c for c in truth.configs if c.optimizer == choice.optimizer]
    decay = [c for c in same if math.isclose(c.weight_decay, choice.weight_decay, rel_tol=1e-9, abs_tol=1e-15)] or same
    return min(decay, key=lambda c: (abs(math.log10(c.lr) - math.log10(choice.lr)), c.lr), default=None)


def _regret(answer: SweetSpots, truth: SweetSpots) -> float | None:
    if answer.best is None or truth.best is None:
        return None
    picked = _truth_at(truth, answer.best)
    if picked is None:
        return None
    if picked.failed or not math.isfinite(picked.value):
        return math.inf  # the configuration the answer picks fails in the truth
    best = truth.best.value
    gap = best - picked.value if truth.mode == "max" else picked.value - best
    return gap / abs(best) if best else gap
