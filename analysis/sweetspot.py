"""Sweet spots: where on the learning-rate axis each optimizer trains, at the training budget, and
where the edges of that region are.

The rule, step by step (docs/analysis.md has the reasoning):

1. **At the budget.** Trials are compared at epoch E = the budget (`train.epochs`, recorded as
   summary.json's `max_epochs`); `epoch=N` (`--epoch N`) reads the folder at another epoch. A trial
   that reached E has a *score*: trainable/score.py's, its best `metric` over its epoch-end
   evaluations ≤ E, evaluations with constant predictions left out (mid-epoch evaluations never
   decide a verdict). A trial that ended before E is never scored as if E were its epoch. It is
   either a known *failure* — it diverged (NaN/inf loss) at an epoch ≤ E, the collapse stopper ended
   it (status `collapsed`), or it reached E with constant predictions at every epoch end — which
   counts as a configuration that does not qualify and may bound an interval; or it is *censored*
   (stopped by the scheduler, errored, still running): shown with the epoch it reached and its rank
   among the trials that reached that epoch there, and left out of the rule.
2. **Configurations and seeds.** Scored and failed trials with the same (optimizer, lr,
   weight_decay) are the runs (seeds) of one configuration. Its *config score* is the mean − std of
   its runs' scores (sample std, ddof=1; one run: its score) — mean + std when lower is better; its
   *best run* is the best of them. Every verdict reads the config score. A configuration with a
   failed run never qualifies. Trials without an lr (neither searched nor set) are left out.
3. **Threshold.** Two rules (`rule=`, `analyze --rule`):
   - `trains` (the default): a configuration qualifies when it *trains*: its score beats the
     majority-label floor F = majority_p1 + `train.collapse_p1_margin` by δ relatively, score ≥
     (1 + δ)·F. The user's question is a region per optimizer (where training works, and its edges),
     and this level does not move with the best run found so far. It needs a floor: for a metric
     other than `val_p1` (mode max) the rule falls back to `near-best`, and `note` says so.
   - `near-best`: G is the best configuration score; a configuration qualifies when it is within δ of
     G relatively: score ≥ G − δ·|G| (≤ G + δ·|G| when lower is better); for `val_p1` it must also
     beat F. This answers "where is it as good as the best run", a narrower question.
   Under either rule a search whose best run does not beat F has no sweet spot anywhere.
4. **Intervals.** Per optimizer, the score at each sampled lr is the best over weight decays.
   Between neighbouring sampled lrs the score is interpolated linearly in log10(lr); an interval
   starts and ends where that line crosses the threshold, and stops at the outermost sampled lr
   (no extrapolation: `lower_open` / `upper_open` say the spot may extend beyond the range). A
   failed lr bounds an interval at its qualifying neighbour. One sampled lr that qualifies is an
   interval of width 0. Width is in decades: log10(upper) − log10(lower). Each closed edge carries
   its *bracket*: the last sampled lr inside and the first beyond that does not qualify; the edge is
   *resolved* when the bracket spans at most `resolution` decades (default 0.5, the region search's
   `resolution`), and its *resolution* is how far (decades) the true edge can be from the
   interpolated one: the larger distance to the bracket's ends (None for an open edge).
   **Two nested regions** come from the same points: where the optimizer *trains* (the threshold
   above) and where it *trains well*: its config score's gain over the floor F is at least
   `WELL_SHARE` of that optimizer's best gain (rule `trains` only).
5. **Verdicts.** Per optimizer: `found` (intervals); `unknown` when every trial of it was censored
   (none reached E, none failed): "unknown (no trial reached N epochs)", never "no sweet spot"; else
   `none` (trials reached E and none qualifies, or every trial is a known failure).
6. **Weight decay (2-D).** For an optimizer searched at ≥ 2 weight decays, the region is given as
   one lr interval list per weight decay (the same threshold), with its bounding box.

Example:
    >>> spots = find_sweet_spots(load_results("results/seed-protocol"), delta=0.02)  # doctest: +SKIP
    >>> [(s.optimizer, s.verdict, [(i.lower_lr, i.upper_lr) for i in s.intervals]) for s in spots.optimizers]  # doctest: +SKIP
    [('adam', 'found', [(8.7e-06, 1.2e-04)]), ('adagrad', 'none', [])]

Over 400 lines on purpose: the rule, its intervals and the edges' resolution are one definition, kept
in one file.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sweetspot.analysis.results import PARAMS, Results, TrialResult, finite
from sweetspot.trainable import keys
from sweetspot.trainable import score as score_rule
from sweetspot.trainable.collapse import constant_predictions

DEFAULT_DELTA = score_rule.DEFAULT_DELTA
RESOLUTION = 0.5  # decades: an edge whose bracket is this narrow is resolved (search/edges.py's default resolution)
WELL_SHARE = 0.75  # trains well: gain over the floor >= this share of the optimizer's best gain over it
_EPS = 1e-9

# What a trial is at the comparison epoch (TrialScore.outcome).
SCORED = "scored"  # reached it, with a finite metric
UNSCORED = "unscored"  # reached it, but no finite metric (NaN reports)
FAILED = "failed"  # diverged at or before it, or stopped by the collapse stopper before it: does not qualify
CENSORED = "censored"  # stopped before it for another reason (scheduler, error, still running): not scored
_CENSORED_AS = {
    "early_stopped": "stopped by the scheduler",
    "errored": "errored",
    "running": "still running",
    "paused": "paused",
    "pending": "pending",
    "interrupted": "interrupted",
}  # else: "ended"


@dataclass(frozen=True)
class TrialScore:
    """A trial at the comparison epoch."""

    trial_id: str
    outcome: str  # SCORED, UNSCORED, FAILED or CENSORED
    value: float  # the score (trainable/score.py) at the comparison epoch; NaN unless SCORED
    epoch: float | None  # the epoch of that value
    last_epoch: float  # the last epoch it reported (0 with no reports)
    diverged: bool  # diverged at or before the comparison epoch
    reason: str | None = None  # FAILED / CENSORED: why it ended early, e.g. "stopped by the scheduler at epoch 1"
    rank: int | None = None  # CENSORED: its rank among the trials that reached its last epoch, at that epoch (1 = best)
    rank_of: int | None = None  # how many trials were ranked there

    @property
    def censored(self) -> bool:
        return self.outcome == CENSORED


@dataclass(frozen=True)
class Comparison:
    """The epoch trials are compared at, why, and every trial's score there."""

    epoch: float
    budget: int | None  # train.epochs, when the folder records it
    source: str  # "budget", "user" (epoch=N) or "reached" (no budget recorded: the most epochs any trial reached)
    rule: str
    scores: dict[str, TrialScore]

    @property
    def censored(self) -> tuple[TrialScore, ...]:
        return tuple(s for s in self.scores.values() if s.outcome == CENSORED)


@dataclass(frozen=True)
class ConfigScore:
    """One configuration (optimizer, lr, weight_decay) over its seeds."""

    optimizer: str
    lr: float
    weight_decay: float
    value: float  # the config score: mean − std of its runs' scores (max mode; mean + std in min mode); ±inf when a run failed
    mean: float
    std: float
    trial_ids: tuple[str, ...]
    diverged: bool  # a seed diverged
    collapsed: bool = False  # a run was stopped by the collapse stopper, or had constant predictions at every epoch end
    best_run: float = math.nan  # the best of its runs' scores

    @property
    def n_trials(self) -> int:
        return len(self.trial_ids)

    @property
    def failed(self) -> bool:
        return self.diverged or self.collapsed


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
    lower_resolution: float | None = None  # decades the true lower edge can be from lower_lr (within its bracket); None if open
    upper_resolution: float | None = None  # the same for the upper edge
    lower_bracket: tuple[float, float] | None = None  # (the first non-qualifying sampled lr below, the lowest inside)
    upper_bracket: tuple[float, float] | None = None  # (the highest sampled lr inside, the first non-qualifying above)
    resolution: float = RESOLUTION  # decades: a bracket this narrow is resolved

    def resolved(self, side: str) -> bool | None:
        """`side` ("lower"/"upper") is a closed edge whose bracket spans <= `resolution` decades (None: open)."""
        bracket = self.lower_bracket if side == "lower" else self.upper_bracket
        return None if bracket is None else math.log10(bracket[1] / bracket[0]) <= self.resolution + _EPS


@dataclass(frozen=True)
class SweetSpot:
    """One optimizer's sweet spot: its intervals and verdict, and its best configuration."""

    optimizer: str
    intervals: tuple[Interval, ...]
    lrs: tuple[float, ...]  # the sampled lrs with a score or a failure at the comparison epoch
    best: ConfigScore | None
    verdict: str = "none"  # "found", "none" or "unknown" (no trial of it reached the comparison epoch)
    censored: tuple[str, ...] = ()  # its censored trials' ids
    well: tuple[Interval, ...] = ()  # where it trains well (WELL_SHARE of its best gain over the floor), inside `intervals`
    well_level: float | None = None  # the config score that trains well (None: rule near-best, or it trains nowhere)
    same_as: str | None = None  # not run: its updates equal this optimizer's (a twin, `twin_configs`), whose trials answer

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
        return {
            "lr_low": min(i.lower_lr for s in hit for i in s.intervals),
            "lr_high": max(i.upper_lr for s in hit for i in s.intervals),
            "weight_decay_low": min(s.weight_decay for s in hit),
            "weight_decay_high": max(s.weight_decay for s in hit),
        }


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
    rule: str = "trains"  # the threshold rule applied (RULES); `near-best` when `trains` had no floor
    resolution: float = RESOLUTION
    well_share: float = WELL_SHARE

    def qualifies(self, value: float) -> bool:
        return _qualifies(value, self)

    def verdict_text(self, spot: SweetSpot) -> str:
        """ "sweet spot", "no sweet spot" or "unknown (no trial reached N epochs)"."""
        if spot.verdict == "unknown":
            return f"unknown (no trial reached {self.comparison.epoch:g} epochs)"
        return "sweet spot" if spot.verdict == "found" else "no sweet spot"


# ------------------------------------------------------------------------------------------------
# 1. At the budget


def _failure(t: TrialResult, at: float) -> tuple[str, str] | None:
    """("diverged" or "collapsed", why) when `t` is a known failure at epoch `at`: it diverged at or
    before it, or the collapse stopper ended it before it; None otherwise."""
    diverged_at = next((float(r.get(keys.EPOCH, 0)) for r in t.history if r.get(keys.DIVERGED)), None)
    if diverged_at is not None and diverged_at <= at + _EPS:
        return "diverged", f"diverged at epoch {diverged_at:g}"
    if t.status == "diverged" and diverged_at is None and t.last_epoch <= at + _EPS:
        return "diverged", f"diverged after epoch {t.last_epoch:g}"
    if t.status == "collapsed" and t.last_epoch < at - _EPS:
        return "collapsed", f"stopped collapsed at epoch {t.last_epoch:g}"
    return None


def _rank_at(results: Results, trial: TrialResult, at: float, *, metric: str, mode: str) -> tuple[int | None, int | None]:
    """`trial`'s rank by best `metric` over epochs <= `at` among the trials that reached `at`
    without failing (1 = best), and how many those are."""
    sign = 1.0 if mode == "max" else -1.0
    values = {}
    for t in results.trials:
        if t.last_epoch >= at - _EPS and _failure(t, at) is None:
            best = score_rule.score(
                t.history, budget=at, metric=metric, mode=mode, entropy_fraction=results.train_config.collapse_entropy_fraction
            )
            if best.scored:
                values[t.trial_id] = sign * best.value
    if trial.trial_id not in values:
        return None, len(values) or None
    return 1 + sum(v > values[trial.trial_id] for v in values.values()), len(values)


def compare_at_budget(results: Results, *, metric: str, mode: str, epoch: float | None = None) -> Comparison:
    """Every trial at the comparison epoch E (the module docstring's rule 1): the budget, or `epoch`."""
    budget = results.max_epochs
    if epoch is not None:
        at, source = float(epoch), "user"
        why = f"set by --epoch; the budget is {budget} epochs" if budget else "set by --epoch"
    elif budget:
        at, source, why = float(budget), "budget", "the budget, train.epochs"
    else:
        at, source = max((t.last_epoch for t in results.trials), default=0.0), "reached"
        why = "the folder records no budget: the most epochs any trial reached"
    scores = {}
    fraction = results.train_config.collapse_entropy_fraction
    for t in results.trials:
        failure = _failure(t, at)
        best = score_rule.score(t.history, budget=at, metric=metric, mode=mode, entropy_fraction=fraction)
        common = dict(trial_id=t.trial_id, last_epoch=t.last_epoch, diverged=failure is not None and failure[0] == "diverged")
        ends = [r for r in score_rule.epoch_end_rows(t.history) if r[keys.EPOCH] <= at + _EPS and finite(r.get(metric))]
        if (
            failure is None
            and t.history
            and t.last_epoch >= at - _EPS
            and not best.scored
            and ends
            and all(constant_predictions(r, entropy_fraction=fraction) for r in ends)
        ):
            failure = ("collapsed", f"constant predictions at every epoch end <= {at:g}")
        if failure is not None:
            scores[t.trial_id] = TrialScore(outcome=FAILED, value=math.nan, epoch=None, reason=failure[1], **common)
        elif t.history and t.last_epoch >= at - _EPS:
            scores[t.trial_id] = TrialScore(
                outcome=SCORED if best.scored else UNSCORED, value=best.value, epoch=best.epoch, **common
            )
        else:
            rank, of = _rank_at(results, t, t.last_epoch, metric=metric, mode=mode) if t.history else (None, None)
            reason = f"{_CENSORED_AS.get(t.status, 'ended')} at epoch {t.last_epoch:g}"
            if t.status == "errored" and t.error:  # why, in the trial's own words (its error's first line)
                reason += f" ({t.error.strip().splitlines()[0]})"
            scores[t.trial_id] = TrialScore(
                outcome=CENSORED, value=math.nan, epoch=None, reason=reason, rank=rank, rank_of=of, **common
            )
    n_censored = sum(s.outcome == CENSORED for s in scores.values())
    n_failed = sum(s.outcome == FAILED for s in scores.values())
    rule = (
        f"epoch {at:g} ({why}): a run's score is its best {metric} over its epoch ends <= {at:g}, "
        f"evaluations with constant predictions left out"
    )
    if n_censored or n_failed:
        rule += (
            f"; {n_censored} trial(s) that stopped earlier are censored (shown, not scored), "
            f"{n_failed} failed (diverged or stopped collapsed)"
        )
    return Comparison(epoch=at, budget=budget, source=source, rule=rule, scores=scores)


# ------------------------------------------------------------------------------------------------
# 2. Configurations and seeds


def _key(x: Any) -> Any:
    return float(f"{x:.12g}") if finite(x) else x  # 1e-3 × 0.1 and 1e-4 are one lr


def config_scores(results: Results, comparison: Comparison, *, mode: str) -> list[ConfigScore]:
    """Groups scored and failed trials into configurations and scores each over its seeds (rule 2)."""
    groups: dict[tuple, list[TrialScore]] = {}
    for t in results.trials:
        p = results.params(t)
        score = comparison.scores[t.trial_id]
        if score.outcome not in (SCORED, FAILED) or not finite(p["lr"]) or p["lr"] <= 0 or not finite(p["weight_decay"]):
            continue
        groups.setdefault(tuple(_key(p[k]) for k in PARAMS), []).append(score)
    sign = 1.0 if mode == "max" else -1.0
    out = []
    for (optimizer, lr, decay), scores in groups.items():
        diverged = any(s.diverged for s in scores)
        collapsed = any(s.outcome == FAILED and not s.diverged for s in scores)
        values = [s.value for s in scores if s.outcome == SCORED]
        mean = statistics.fmean(values) if values else math.nan
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        value = -sign * math.inf if diverged or collapsed else mean - sign * std
        best_run = (max if mode == "max" else min)(values) if values else math.nan
        out.append(
            ConfigScore(
                optimizer=str(optimizer),
                lr=float(lr),
                weight_decay=float(decay),
                value=value,
                mean=mean,
                std=std,
                trial_ids=tuple(sorted(s.trial_id for s in scores)),
                diverged=diverged,
                collapsed=collapsed,
                best_run=best_run,
            )
        )
    return sorted(out, key=lambda c: (c.optimizer, c.lr, c.weight_decay))


# ------------------------------------------------------------------------------------------------
# 3-6. Threshold, intervals, verdicts, regions


def _better(a: float, b: float, mode: str) -> bool:
    return a > b if mode == "max" else a < b


def _qualifies(value: float, spots: Any) -> bool:
    if spots.threshold is None or not finite(value):
        return False
    if spots.rule == "trains":  # trainable/score.py's rule
        return score_rule.qualifies(value, floor=spots.floor, delta=spots.delta)
    if spots.mode == "max":
        return value >= spots.threshold - _EPS and (spots.floor is None or value > spots.floor)
    return value <= spots.threshold + _EPS


def lr_intervals(
    points: Sequence[ConfigScore], *, level: float, mode: str, qualifies=None, resolution: float = RESOLUTION
) -> tuple[Interval, ...]:
    """The lr intervals where the log-linear interpolation of `points` (one per lr, any order)
    reaches `level` (rule 4). `qualifies(value)` decides the sampled points (default: reaches it).

    Example:
        >>> pts = [ConfigScore("adam", lr, 0.0, v, v, 0.0, ("t",), False) for lr, v in [(1e-5, 0.4), (1e-4, 0.6), (1e-3, 0.3)]]
        >>> (spot,) = lr_intervals(pts, level=0.5, mode="max")  # 0.5 is crossed half-way below 1e-4, a third above
        >>> round(math.log10(spot.lower_lr), 3), round(math.log10(spot.upper_lr), 3), round(spot.width_decades, 3)
        (-4.5, -3.667, 0.833)
        >>> round(spot.lower_resolution, 3), round(spot.upper_resolution, 3)  # the far ends of the brackets 1e-5..1e-4, 1e-4..1e-3
        (0.5, 0.667)
        >>> spot.resolved("lower"), spot.upper_bracket  # a one-decade bracket is not resolved at 0.5 decade
        (False, (0.0001, 0.001))
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
            return x[i]  # a failed (or unmeasurable) neighbour: stop at the qualifying point
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
        out.append(
            Interval(
                lower_lr=10**lo,
                upper_lr=10**hi,
                width_decades=hi - lo,
                best_lr=best.lr,
                best_value=best.value,
                best_weight_decay=best.weight_decay,
                n_trials=sum(c.n_trials for c in inside),
                lower_open=i == 0,
                upper_open=j == n - 1,
                lower_resolution=None if i == 0 else max(lo - x[i - 1], x[i] - lo),
                upper_resolution=None if j == n - 1 else max(x[j + 1] - hi, hi - x[j]),
                lower_bracket=None if i == 0 else (pts[i - 1].lr, pts[i].lr),
                upper_bracket=None if j == n - 1 else (pts[j].lr, pts[j + 1].lr),
                resolution=resolution,
            )
        )
        i = j + 1
    return tuple(out)


def _profile(configs: Sequence[ConfigScore], mode: str) -> list[ConfigScore]:
    """Per lr, the best configuration over weight decays."""
    best: dict[float, ConfigScore] = {}
    for c in configs:
        if c.lr not in best or _better(c.value, best[c.lr].value, mode):
            best[c.lr] = c
    return [best[lr] for lr in sorted(best)]


RULES = ("trains", "near-best")  # the threshold rules of step 3


def find_sweet_spots(
    results: Results,
    *,
    metric: str | None = None,
    mode: str | None = None,
    delta: float = DEFAULT_DELTA,
    epoch: float | None = None,
    rule: str = "trains",
    resolution: float | None = None,
) -> SweetSpots:
    """Sweet spots of every optimizer in `results` (see the module docstring for the rule).

    Args:
        results: A loaded results folder.
        metric, mode: What to compare (default: `results.metric` and `results.mode`).
        delta: With `rule="trains"`, the margin over the majority-label floor (0.02 = 2 % above it);
            with `rule="near-best"`, the tolerance to the best configuration (0.02 = within 2 %).
        epoch: Compare at this epoch instead of the budget (`train.epochs`).
        rule: `trains` or `near-best` (step 3 of the module docstring).
        resolution: Decades: an edge bracket this narrow is resolved (default: the region search's
            `search.edges.resolution` when the folder records one, else `RESOLUTION`).

    Raises:
        ValueError: `delta` is negative or not finite, or `rule` is unknown.
    """
    metric, mode = metric or results.metric, mode or results.mode
    if not finite(delta) or delta < 0:
        raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    if resolution is None:
        resolution = search_setting(results, "resolution") or RESOLUTION
    comparison = compare_at_budget(results, metric=metric, mode=mode, epoch=epoch)
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
    if rule == "trains" and floor is None:
        rule, note = "near-best", f"no majority-label floor for {metric}: sweet spots are within δ of the best"
    if best is None:
        threshold = None
        note = (
            f"no trial reached epoch {comparison.epoch:g} with a finite {metric}"
            if comparison.censored or not configs
            else f"every trial that reached epoch {comparison.epoch:g} failed"
        )
    else:
        if rule == "trains":
            threshold = score_rule.level(floor, delta=delta)
        else:
            threshold = best.value - delta * abs(best.value) if mode == "max" else best.value + delta * abs(best.value)
        if floor is not None and not best.value > floor:
            note = (
                f"the best configuration ({best.value:.4f}) does not beat the majority-label floor "
                f"+ margin ({floor:.4f}): nothing trains, so there is no sweet spot"
            )
    spots = SweetSpots(
        metric=metric,
        mode=mode,
        delta=delta,
        threshold=threshold,
        floor=floor,
        best=best,
        comparison=comparison,
        configs=tuple(configs),
        optimizers=(),
        regions=(),
        note=note,
        rule=rule,
        resolution=resolution,
    )
    level = threshold if floor is None or threshold is None else max(threshold, floor)

    def intervals(points: Sequence[ConfigScore], at: float | None = None) -> tuple[Interval, ...]:
        at = level if at is None else at
        if at is None:
            return ()
        return lr_intervals(
            points,
            level=at,
            mode=mode,
            resolution=resolution,
            qualifies=lambda v: spots.qualifies(v) and (v >= at - _EPS if mode == "max" else v <= at + _EPS),
        )

    censored_by: dict[str, list[str]] = {}
    reached = set()  # optimizers with a trial seen to the end: scored at the comparison epoch, or failed
    for t in results.trials:
        p, outcome = results.params(t), comparison.scores[t.trial_id].outcome
        if outcome == CENSORED and finite(p["lr"]):
            censored_by.setdefault(str(p["optimizer"]), []).append(t.trial_id)
        reached |= {str(p["optimizer"])} if outcome != CENSORED else set()
    optimizers, regions = [], []
    twins = twin_configs(results, configs)
    for name in sorted({c.optimizer for c in configs} | set(censored_by) | {c.optimizer for c, _ in twins}):
        mine = [c for c in configs if c.optimizer == name] + [c for c, _ in twins if c.optimizer == name]
        found = intervals(_profile(mine, mode))
        own = [c for c in mine if finite(c.value)]
        own_best = max(own, key=lambda c: c.value if mode == "max" else -c.value) if own else None
        verdict = "found" if found else "unknown" if name in censored_by and name not in reached else "none"
        well_level = None
        if found and rule == "trains" and floor is not None and own_best is not None:
            well_level = max(level, floor + WELL_SHARE * (own_best.value - floor))
        optimizers.append(
            SweetSpot(
                optimizer=name,
                intervals=found,
                lrs=tuple(c.lr for c in _profile(mine, mode)),
                best=own_best,
                verdict=verdict,
                censored=tuple(censored_by.get(name, ())),
                well=intervals(_profile(mine, mode), well_level) if well_level is not None else (),
                well_level=well_level,
                same_as=next((same for c, same in twins if c.optimizer == name), None),
            )
        )
        decays = sorted({c.weight_decay for c in mine})
        if len(decays) >= 2:
            slices = tuple(
                DecaySlice(weight_decay=d, intervals=intervals([c for c in mine if c.weight_decay == d])) for d in decays
            )
            regions.append(Region(optimizer=name, slices=slices))
    return replace(spots, optimizers=tuple(optimizers), regions=tuple(regions))


def twin_configs(results: Results, configs: Sequence[ConfigScore]) -> list[tuple[ConfigScore, str]]:
    """The configurations of the searched lines that were not run because their updates equal another
    line's exactly (the region search's `twins`: AdamW at weight decay 0 is Adam,
    `trainable.optimizers.twin`), as (the twin's configuration under this line's name, the twin's
    name). A line with trials of its own is its own answer."""
    from sweetspot.trainable.optimizers import twin

    space = ((results.config or {}).get("search") or {}).get("space") or {}
    names, decays = space.get("optimizer") or [], space.get("weight_decay", [0.0])
    decays = decays if isinstance(decays, list) else [decays]
    have = {(c.optimizer, c.weight_decay) for c in configs}
    out = []
    for name in names if isinstance(names, list) else []:
        for d in decays:
            try:
                same = twin(str(name), float(d))
            except (TypeError, ValueError):  # an optimizer this version does not know, a decay range
                continue
            if same is not None and (name, float(d)) not in have:
                out += [
                    (replace(c, optimizer=str(name)), same) for c in configs if c.optimizer == same and c.weight_decay == float(d)
                ]
    return out


def search_setting(results: Results, name: str) -> float | None:
    """The region search's `search.edges.<name>` (delta, resolution) as the folder's config records
    it; None when absent or not a number (an older folder, another algorithm)."""
    search = results.config.get("search") if isinstance(results.config, dict) else None
    edges = search.get("edges") if isinstance(search, dict) else None
    value = edges.get(name) if isinstance(edges, dict) else None
    return float(value) if finite(value) and value >= 0 else None
