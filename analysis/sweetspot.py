"""Sweet spots: where on the learning-rate axis each optimizer trains within δ of the best run.

The rule, step by step (docs/analysis.md has the reasoning):

1. **Equal epochs.** Every trial is scored by its best `metric` over epochs ≤ E. By default E is
   the smallest number of epochs reached by the trials that ended on the budget or by the
   scheduler (statuses `terminated`, `early_stopped`, or `unknown` without a summary): with FIFO
   that is `train.epochs`; with ASHA it is the lowest rung a trial was stopped at, so a stopped
   trial is never compared against a survivor's later epochs. `epoch=N` overrides E; a trial that
   ended before E (stopped on collapse, errored, still running) is scored at its last epoch and
   marked `truncated`.
2. **Configurations and seeds.** Trials with the same (optimizer, lr, weight_decay) are the seeds
   of one configuration, scored mean − std (sample std, ddof=1; 0 for one seed) — mean + std when
   lower is better. A configuration with a diverged seed never qualifies. Trials without a finite
   score, or without an lr (neither searched nor set), are left out.
3. **Threshold.** G is the best configuration score; a configuration qualifies when it is within
   δ of G relatively: score ≥ G − δ·|G| (≤ G + δ·|G| when lower is better). For `val_p1`, it must
   also beat the majority-label floor + `train.collapse_p1_margin`: a search whose best run sits at
   the floor has no sweet spot anywhere.
4. **Intervals.** Per optimizer, the score at each sampled lr is the best over weight decays.
   Between neighbouring sampled lrs the score is interpolated linearly in log10(lr); an interval
   starts and ends where that line crosses the threshold, and stops at the outermost sampled lr
   (no extrapolation: `lower_open` / `upper_open` say the spot may extend beyond the range). A
   diverged lr bounds an interval at its qualifying neighbour. One sampled lr that qualifies is an
   interval of width 0. Width is in decades: log10(upper) − log10(lower).
5. **Weight decay (2-D).** For an optimizer searched at ≥ 2 weight decays, the region is given as
   one lr interval list per weight decay (the same threshold), with its bounding box.

Example:
    >>> spots = find_sweet_spots(load_results("results/seed-protocol"), delta=0.02)  # doctest: +SKIP
    >>> [(s.optimizer, [(i.lower_lr, i.upper_lr) for i in s.intervals]) for s in spots.optimizers]  # doctest: +SKIP
    [('adam', [(8.7e-06, 1.2e-04)]), ('adagrad', [])]
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from sweetspot.analysis.results import PARAMS, Results, TrialResult, finite
from sweetspot.trainable import keys

DEFAULT_DELTA = 0.02
BUDGET_STATUSES = ("terminated", "early_stopped", "unknown")  # ended on the budget or by the scheduler
_EPS = 1e-9


@dataclass(frozen=True)
class TrialScore:
    """A trial's score at the comparison epoch."""

    trial_id: str
    value: float  # best metric over epochs <= the comparison epoch (NaN when none is finite)
    epoch: float | None  # the epoch of that value
    last_epoch: float
    truncated: bool  # the trial ended before the comparison epoch, so it is scored at its last one
    diverged: bool


@dataclass(frozen=True)
class Comparison:
    """Which epoch trials are compared at, and why."""

    epoch: float
    rule: str
    scores: dict[str, TrialScore]


@dataclass(frozen=True)
class ConfigScore:
    """One configuration (optimizer, lr, weight_decay) over its seeds."""

    optimizer: str
    lr: float
    weight_decay: float
    value: float  # mean − std (max mode) or mean + std (min mode); ±inf when a seed diverged
    mean: float
    std: float
    trial_ids: tuple[str, ...]
    diverged: bool

    @property
    def n_trials(self) -> int:
        return len(self.trial_ids)


@dataclass(frozen=True)
class Interval:
    """One lr interval of a sweet spot, and the sampled configurations inside it."""

    lower_lr: float
    upper_lr: float
    width_decades: float
    best_lr: float
    best_value: float
    best_weight_decay: float
    n_trials: int
    lower_open: bool  # reaches the smallest sampled lr: the spot may extend below
    upper_open: bool  # reaches the largest sampled lr


@dataclass(frozen=True)
class SweetSpot:
    """One optimizer's sweet spot: its intervals ([] = no sweet spot) and its best configuration."""

    optimizer: str
    intervals: tuple[Interval, ...]
    lrs: tuple[float, ...]  # the sampled lrs (with a finite or diverged score)
    best: ConfigScore | None

    @property
    def found(self) -> bool:
        return bool(self.intervals)


@dataclass(frozen=True)
class DecaySlice:
    weight_decay: float
    intervals: tuple[Interval, ...]


@dataclass(frozen=True)
class Region:
    """An optimizer's lr × weight-decay sweet region, as one lr interval list per weight decay."""

    optimizer: str
    slices: tuple[DecaySlice, ...]

    @property
    def found(self) -> bool:
        return any(s.intervals for s in self.slices)

    @property
    def bounds(self) -> dict[str, float] | None:
        """The bounding box {lr_low, lr_high, weight_decay_low, weight_decay_high}; None if empty."""
        hit = [s for s in self.slices if s.intervals]
        if not hit:
            return None
        return {"lr_low": min(i.lower_lr for s in hit for i in s.intervals),
                "lr_high": max(i.upper_lr for s in hit for i in s.intervals),
                "weight_decay_low": min(s.weight_decay for s in hit),
                "weight_decay_high": max(s.weight_decay for s in hit)}


@dataclass(frozen=True)
class SweetSpots:
    """Everything `find_sweet_spots` found, with the rule's inputs."""

    metric: str
    mode: str
    delta: float
    threshold: float | None  # the level a configuration must reach (None: nothing scored)
    floor: float | None  # the majority-label floor + margin a val_p1 score must beat, if it applies
    best: ConfigScore | None
    comparison: Comparison
    configs: tuple[ConfigScore, ...]
    optimizers: tuple[SweetSpot, ...]
    regions: tuple[Region, ...]
    note: str | None = None  # why there is no sweet spot at all, when that is the case

    def qualifies(self, value: float) -> bool:
        return _qualifies(value, self)


# ------------------------------------------------------------------------------------------------
# 1. Equal epochs


def compare_at_equal_epochs(results: Results, *, metric: str, mode: str, epoch: float | None = None) -> Comparison:
    """Scores every trial at the comparison epoch E (the module docstring's rule 1)."""
    reached = [t.last_epoch for t in results.trials if t.history]
    if epoch is not None:
        at, rule = float(epoch), f"best {metric} over epochs <= {float(epoch):g} (set by the user)"
    else:
        budget = [t.last_epoch for t in results.trials
                  if t.history and t.status in BUDGET_STATUSES and not t.diverged]
        if budget:
            at = min(budget)
            if at < max(budget):
                rule = (f"best {metric} over epochs <= {at:g}: the fewest epochs any trial ended with on the budget "
                        f"or by the scheduler (ASHA stopped some early), so stopped trials are compared at the same epochs")
            else:
                rule = f"best {metric} over epochs <= {at:g}: every trial that ended on the budget reached it"
        else:
            at = max(reached, default=0.0)
            rule = f"best {metric} over epochs <= {at:g} (no trial ended on the budget)"
    scores = {}
    for t in results.trials:
        best = t.best(metric, mode, until=at)
        value = float(best[metric]) if best else math.nan
        scores[t.trial_id] = TrialScore(trial_id=t.trial_id, value=value, epoch=best.get(keys.EPOCH),
                                        last_epoch=t.last_epoch, truncated=bool(t.history) and t.last_epoch < at - _EPS,
                                        diverged=t.diverged)
    return Comparison(epoch=at, rule=rule, scores=scores)


# ------------------------------------------------------------------------------------------------
# 2. Configurations and seeds


def _key(x: Any) -> Any:
    return float(f"{x:.12g}") if finite(x) else x  # 1e-3 × 0.1 and 1e-4 are one lr


def config_scores(results: Results, comparison: Comparison, *, mode: str) -> list[ConfigScore]:
    """Groups trials into configurations and scores each over its seeds (rule 2)."""
    groups: dict[tuple, list[TrialResult]] = {}
    for t in results.trials:
        p = results.params(t)
        if not finite(p["lr"]) or p["lr"] <= 0 or not finite(p["weight_decay"]):
            continue
        score = comparison.scores[t.trial_id]
        if not t.diverged and not finite(score.value):
            continue
        groups.setdefault(tuple(_key(p[k]) for k in PARAMS), []).append(t)
    sign = 1.0 if mode == "max" else -1.0
    out = []
    for (optimizer, lr, decay), trials in groups.items():
        diverged = any(t.diverged for t in trials)
        values = [comparison.scores[t.trial_id].value for t in trials if finite(comparison.scores[t.trial_id].value)]
        mean = statistics.fmean(values) if values else math.nan
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        value = -sign * math.inf if diverged else mean - sign * std
        out.append(ConfigScore(optimizer=str(optimizer), lr=float(lr), weight_decay=float(decay), value=value, mean=mean,
                               std=std, trial_ids=tuple(sorted(t.trial_id for t in trials)), diverged=diverged))
    return sorted(out, key=lambda c: (c.optimizer, c.lr, c.weight_decay))


# ------------------------------------------------------------------------------------------------
# 3-5. Threshold, intervals, regions


def _better(a: float, b: float, mode: str) -> bool:
    return a > b if mode == "max" else a < b


def _qualifies(value: float, spots: Any) -> bool:
    if spots.threshold is None or not finite(value):
        return False
    if spots.mode == "max":
        return value >= spots.threshold - _EPS and (spots.floor is None or value > spots.floor)
    return value <= spots.threshold + _EPS


def lr_intervals(points: Sequence[ConfigScore], *, level: float, mode: str,
                 qualifies=None) -> tuple[Interval, ...]:
    """The lr intervals where the log-linear interpolation of `points` (one per lr, any order)
    reaches `level` (rule 4). `qualifies(value)` decides the sampled points (default: reaches it).

    Example:
        >>> pts = [ConfigScore("adam", lr, 0.0, v, v, 0.0, ("t",), False) for lr, v in [(1e-5, 0.4), (1e-4, 0.6), (1e-3, 0.3)]]
        >>> (spot,) = lr_intervals(pts, level=0.5, mode="max")  # 0.5 is crossed half-way below 1e-4, a third above
        >>> round(math.log10(spot.lower_lr), 3), round(math.log10(spot.upper_lr), 3), round(spot.width_decades, 3)
        (-4.5, -3.667, 0.833)
    """
    sign = 1.0 if mode == "max" else -1.0
    if qualifies is None:
        def qualifies(v):
            return finite(v) and sign * v >= sign * level - _EPS
    pts = sorted(points, key=lambda c: c.lr)
    x = [math.log10(c.lr) for c in pts]
    y = [sign * c.value for c in pts]  # higher is better from here on
    lvl = sign * level
    ok = [qualifies(c.value) for c in pts]

    def crossing(i: int, j: int) -> float:
        """Where the line from qualifying point i to non-qualifying point j meets the level."""
        if not finite(y[j]) or not finite(y[i]) or y[i] == y[j]:
            return x[i]  # a diverged (or unmeasurable) neighbour: stop at the qualifying point
        frac = min(1.0, max(0.0, (lvl - y[i]) / (y[j] - y[i])))
        return x[i] + frac * (x[j] - x[i])

    out, i, n = [], 0, len(pts)
    while i < n:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and ok[j + 1]:
            j += 1
        lo = x[0] if i == 0 else crossing(i, i - 1)
        hi = x[-1] if j == n - 1 else crossing(j, j + 1)
        inside = pts[i : j + 1]
        best = max(inside, key=lambda c: sign * c.value)
        out.append(Interval(lower_lr=10 ** lo, upper_lr=10 ** hi, width_decades=hi - lo, best_lr=best.lr,
                            best_value=best.value, best_weight_decay=best.weight_decay,
                            n_trials=sum(c.n_trials for c in inside), lower_open=i == 0, upper_open=j == n - 1))
        i = j + 1
    return tuple(out)


def _profile(configs: Sequence[ConfigScore], mode: str) -> list[ConfigScore]:
    """Per lr, the best configuration over weight decays."""
    best: dict[float, ConfigScore] = {}
    for c in configs:
        if c.lr not in best or _better(c.value, best[c.lr].value, mode):
            best[c.lr] = c
    return [best[lr] for lr in sorted(best)]


def find_sweet_spots(results: Results, *, metric: str | None = None, mode: str | None = None,
                     delta: float = DEFAULT_DELTA, epoch: float | None = None) -> SweetSpots:
    """Sweet spots of every optimizer in `results` (see the module docstring for the rule).

    Args:
        results: A loaded results folder.
        metric, mode: What to compare (default: `results.metric` and `results.mode`).
        delta: Relative tolerance to the best configuration (0.02 = within 2 %).
        epoch: Compare at this epoch instead of the default equal-epoch rule.

    Raises:
        ValueError: `delta` is negative or not finite.
    """
    metric, mode = metric or results.metric, mode or results.mode
    if not finite(delta) or delta < 0:
        raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
    comparison = compare_at_equal_epochs(results, metric=metric, mode=mode, epoch=epoch)
    configs = config_scores(results, comparison, mode=mode)
    scored = [c for c in configs if finite(c.value)]
    best = None
    for c in scored:
        if best is None or _better(c.value, best.value, mode):
            best = c
    floor = None
    if metric == keys.VAL_P1 and mode == "max" and results.majority_p1 is not None:
        floor = results.majority_p1 + results.train_config.collapse_p1_margin
    note = None
    if best is None:
        threshold, note = None, f"no trial has a finite {metric}"
    else:
        threshold = best.value - delta * abs(best.value) if mode == "max" else best.value + delta * abs(best.value)
        if floor is not None and not best.value > floor:
            note = (f"the best configuration ({best.value:.4f}) does not beat the majority-label floor "
                    f"+ margin ({floor:.4f}): nothing trains, so there is no sweet spot")
    spots = SweetSpots(metric=metric, mode=mode, delta=delta, threshold=threshold, floor=floor, best=best,
                       comparison=comparison, configs=tuple(configs), optimizers=(), regions=(), note=note)
    level = threshold if floor is None or threshold is None else max(threshold, floor)

    optimizers, regions = [], []
    for name in sorted({c.optimizer for c in configs}):
        mine = [c for c in configs if c.optimizer == name and (finite(c.value) or c.diverged)]
        profile = _profile(mine, mode)
        intervals = lr_intervals(profile, level=level, mode=mode, qualifies=spots.qualifies) if level is not None else ()
        own_best = None
        for c in mine:
            if finite(c.value) and (own_best is None or _better(c.value, own_best.value, mode)):
                own_best = c
        optimizers.append(SweetSpot(optimizer=name, intervals=intervals, lrs=tuple(c.lr for c in profile), best=own_best))
        decays = sorted({c.weight_decay for c in mine})
        if len(decays) >= 2:
            slices = tuple(
                DecaySlice(weight_decay=d, intervals=lr_intervals([c for c in mine if c.weight_decay == d], level=level,
                                                                  mode=mode, qualifies=spots.qualifies) if level is not None else ())
                for d in decays)
            regions.append(Region(optimizer=name, slices=slices))
    return SweetSpots(metric=metric, mode=mode, delta=delta, threshold=threshold, floor=floor, best=best,
                      comparison=comparison, configs=tuple(configs), optimizers=tuple(optimizers), regions=tuple(regions),
                      note=note)
