"""A region search: per optimizer (and weight decay), where on the lr axis training works and where
the edges of that region are, at a fraction of a grid's cost.

The question is the analysis's (analysis/sweetspot.py, rule `trains`): a configuration *qualifies*
when its score at the budget (best `val_p1` over epochs <= `epochs`; with several seeds, mean − std)
reaches the level L = (1 + δ)·F and beats F = majority_p1 + margin, the majority-label floor. The
reported edges are where the log10-lr interpolation of the sampled scores crosses L. This searcher
places trials so that those edges come out right, one *line* at a time: a line is one
(optimizer, weight decay), sampled at x = log10(lr) in [x_low, x_high] = log10 of the lr range.

1. **Probe**: per line, the centres of `probes` equal cells of the range (the default 4 over
   [1e-3, 10] × the default lr: 10^-2.5, 10^-1.5, 10^-0.5, 10^0.5 × it, 1 decade apart). The
   range's ends are sampled only when the region reaches the outermost probe.
2. **Refine**, per line, from its settled points in x order:
   - some point qualifies: bisect every *bracket* (two neighbouring points, one qualifying and one
     not; or a qualifying outermost point and the range's end, which is sampled first) wider than
     `resolution` decades at its midpoint, widest bracket first. A bracket of width <= `resolution`
     is resolved; its qualifying end then gets more seeds (up to `seeds`) while its score is within
     2σ of L (σ: the seed-to-seed spread, below), since the noise decides that verdict. An end that
     stops qualifying opens a wider bracket, bisected in turn. (A non-qualifying end gets no extra
     seed: with two seeds, mean − std lies below both.)
   - exactly one point qualifies: it gets its second seed first, however far above L it scored:
     a region resting on one trial may be one lucky seed (on the Reuters table, Adam at 3.2e-4
     trains on one seed of two).
   - nothing qualifies but the best point beats F: bisect from its neighbours towards it down to
     `resolution` (a spot narrower than the probe spacing can only sit near it); the verdict is
     "none" if nothing qualifies there.
   - every probe is at or below F, or failed: the line is **dropped** (`dropped`, and its phase in
     `state`) and never sampled again.
3. **Done** (`suggest` returns `Searcher.FINISHED`) when no line has anything left to sample and no
   trial runs, or once `max_trials` trials were suggested.

σ is pooled over the points measured with two or more seeds, `noise` counting as one more such
point: σ² = (noise² + Σ variances) / (1 + their number).

How a trial's end counts: by the status its run record gets (`sweetspot.layout.trial_record`, the
code the records and the analysis use). Reached the budget: *scored*. Diverged, or stopped by the
collapse stopper (`collapse_patience`): *failed*, a non-qualifying point. Stopped early otherwise
(ASHA) or errored: *unknown*: its value at an earlier epoch is never used as if at the budget, and
its lr is not proposed again, so a bracket whose midpoint came back unknown stays unresolved
(`state`). Run it under FIFO; a collapse stopper saves epochs only if it never stops a healthy run
(a stopped healthy run is a failed point inside the region, and moves its edge).

Concurrency: every suggestion is a new (line, lr, seed): a running trial's lr counts as sampled, so
a bracket whose midpoint runs waits for it; with nothing to propose while trials run, `suggest`
returns None (Tune asks again later), never blocks.

Why bisection and not a level-set acquisition (the straddle rule of Bryan et al. 2005, LSE of
Gotovos et al. 2013): both need a surrogate model (a GP) per line, and with 5–10 points a line its
posterior is mostly prior (the cliff from training to collapse is not smooth); bisection needs no
model, and one trial halves an edge's uncertainty. From probes at odd half-decades its midpoints
land on whole, then half-decades: the lr grid of the ground-truth tables.

Example:
    >>> search = EdgeSearch(optimizers=["adam"], epochs=1, seeds=1)  # adam's default lr is 1e-3; one seed per lr
    >>> [search.suggest(f"t{i}")["lr"] for i in range(4)]  # the probes
    [3.16227766017e-06, 3.16227766017e-05, 0.000316227766017, 0.00316227766017]
    >>> for i, p1 in enumerate([0.30, 0.40, 0.55, 0.40]):  # only 3.2e-4 trains: F = 0.40 + 0.01
    ...     search.on_trial_complete(f"t{i}", {"epoch": 1, "val_p1": p1, "majority_p1": 0.40})
    >>> search.suggest("t4")["lr"], search.suggest("t5")["lr"]  # the two brackets' midpoints
    (0.0001, 0.001)
"""

from __future__ import annotations

import copy
import math
import pickle
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from ray.tune.search import Searcher

from sweetspot import layout
from sweetspot.trainable import collapse, keys
from sweetspot.trainable.optimizers import default_lr

__all__ = ["EdgeSearch", "LineState", "PointState"]

_EPS = 1e-9
DEFAULT_DELTA = 0.02  # the analysis's default δ (search does not import the analysis; a test pins the two)
PENDING, SCORED, FAILED, UNKNOWN = "pending", "scored", "failed", "unknown"  # a trial's (and a point's) outcome
_ROW_KEYS = collapse.SIGNALS  # what a running trial's rows keep, besides the metric: the collapse rules' inputs


@dataclass
class _Trial:
    """One suggested trial: where it samples and how it ended."""

    line: int  # index into the searcher's lines
    x: float  # log10 lr, rounded (the point's key)
    seed: int
    outcome: str = PENDING
    value: float = math.nan  # SCORED: best metric over epochs <= the budget
    rows: list[dict[str, Any]] = field(default_factory=list)  # while it runs: its reports (_ROW_KEYS + metric)


@dataclass(frozen=True)
class PointState:
    """One sampled lr of a line, over its seeds."""

    lr: float
    outcome: str  # "pending" (a seed still runs), "failed" (a seed diverged or collapsed), "scored", "unknown"
    value: float  # SCORED: mean − std over the scored seeds (sample std; 0 for one seed); else NaN
    seeds: int  # trials sampled here
    qualifies: bool


@dataclass(frozen=True)
class LineState:
    """One line (optimizer, weight decay): where the search stands on it."""

    optimizer: str
    weight_decay: float
    phase: str  # "probing", "refining", "found", "none", "dropped" (all probes at the floor) or "unknown"
    points: tuple[PointState, ...]  # in lr order; the analysis turns them into intervals
    unresolved: tuple[tuple[float, float], ...] = ()  # (lr, lr) brackets left wider than the resolution


class EdgeSearch(Searcher):
    """Ray Tune searcher for the lr region where each optimizer trains (see the module docstring).

    Args:
        optimizers: Optimizer names (`sweetspot.trainable.optimizers.OPTIMIZERS`).
        epochs: The budget, `train.epochs`: a trial is scored at it.
        lr_factor: (low, high) factors over each optimizer's default lr: the range searched.
        lr: (low, high) absolute lrs, the same for every optimizer; replaces `lr_factor`.
        weight_decays: Each value is a line of its own per optimizer (the 2-D case: its edges per decay).
        probes: lrs first sampled per line: the centres of this many equal cells of the range in
            log10 (>= 2). A spot narrower than a cell may fall between them and be missed.
        resolution: Decades; a bracket this narrow is resolved. 0.5 is the ground-truth tables' lr
            spacing; each halving costs one more trial per edge. With a collapse stopper, use 0.25:
            the analysis cannot interpolate to a stopped (failed) point, so an edge then sits on the
            bracket's qualifying end, up to `resolution` inside the true one.
        seeds: The most seeds one lr is run with (extra seeds only at resolved edges, see above).
        noise: Prior seed-to-seed standard deviation of the metric (its units), before any lr was
            measured twice.
        max_trials: Suggest at most this many trials (Tune's `num_samples`); None: until resolved.
        first_seed: Seed of a point's first trial (`train.seed`); its k-th extra seed is first_seed + k.
        delta: δ of the level (1 + δ)·F (the analysis's `--delta`).
        margin: `train.collapse_p1_margin`, the margin of F over majority_p1.
        collapse_patience: `search.stop_on_collapse`: how the collapse stopper's stops are recognised.
        early_collapse: The early collapse rule's thresholds when `search.stop_early_collapse` is on
            (`runner.early_collapse_rule`): how its stops are recognised.
        metric, mode: Must be `val_p1` and `max`: the level needs the majority-label floor.

    Raises:
        ValueError: an argument is out of range, an optimizer is unknown, or metric/mode is not val_p1/max.
    """

    def __init__(self, *, optimizers: Sequence[str], epochs: int, lr_factor: tuple[float, float] = (1e-3, 10.0),
                 lr: tuple[float, float] | None = None, weight_decays: Sequence[float] = (0.0,), probes: int = 4,
                 resolution: float = 0.5, seeds: int = 2, noise: float = 0.02, max_trials: int | None = None,
                 first_seed: int = 0, delta: float = DEFAULT_DELTA, margin: float = 0.01,
                 collapse_patience: int | None = None, early_collapse: dict[str, float] | None = None,
                 metric: str = keys.VAL_P1, mode: str = "max"):
        _check_metric(metric, mode)
        super().__init__(metric=metric, mode=mode)
        bounds = lr if lr is not None else lr_factor
        problems = [(not optimizers, "optimizers: at least one"),
                    (epochs < 1, f"epochs: {epochs} < 1"),
                    (not 0 < bounds[0] < bounds[1], f"{'lr' if lr else 'lr_factor'}: need 0 < low < high, got {bounds}"),
                    (not weight_decays, "weight_decays: at least one"),
                    (probes < 2, f"probes: {probes} < 2"),
                    (not resolution > 0, f"resolution: {resolution} decades, must be > 0"),
                    (seeds < 1, f"seeds: {seeds} < 1"),
                    (not noise >= 0, f"noise: {noise} < 0"),
                    (max_trials is not None and max_trials < 1, f"max_trials: {max_trials} < 1"),
                    (not delta >= 0, f"delta: {delta} < 0")]
        for bad, what in problems:
            if bad:
                raise ValueError(f"EdgeSearch {what}")
        self._lines = [(str(o), float(d)) for o in optimizers for d in weight_decays]
        self._ranges = []  # per line: (low, high) in log10 lr
        for optimizer, _ in self._lines:
            base = 1.0 if lr is not None else default_lr(optimizer)  # raises for an unknown optimizer
            self._ranges.append((math.log10(base * bounds[0]), math.log10(base * bounds[1])))
        self._epochs, self._probes, self._resolution, self._seeds = epochs, probes, resolution, seeds
        self._noise, self._max_trials, self._first_seed = noise, max_trials, first_seed
        self._delta, self._margin, self._collapse_patience = delta, margin, collapse_patience
        self._early_collapse = early_collapse
        self._trials: dict[str, _Trial] = {}  # by Tune's trial id, in suggestion order
        self._floor: float | None = None  # F, from the first report carrying majority_p1

    # --------------------------------------------------------------------------------------------
    # Tune's side

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        _check_metric(metric or self._metric, mode or self._mode)
        self._metric, self._mode = metric or self._metric, mode or self._mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._max_trials is not None and len(self._trials) >= self._max_trials:
            return Searcher.FINISHED
        best = None  # (rank, line, x, seed) with the lowest rank
        for i in range(len(self._lines)):
            busy = sum(t.outcome == PENDING for t in self._trials.values() if t.line == i)
            for rank, x, seed in self._plan(i)[1]:
                candidate = ((*rank, busy, i), i, x, seed)  # ties: the line with fewer running trials
                best = candidate if best is None or candidate[0] < best[0] else best
        if best is None:
            return None if any(t.outcome == PENDING for t in self._trials.values()) else Searcher.FINISHED
        _, i, x, seed = best
        self._trials[trial_id] = _Trial(line=i, x=x, seed=seed)
        optimizer, decay = self._lines[i]
        return {"optimizer": optimizer, "lr": _lr(x), "weight_decay": decay, "seed": seed}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        trial = self._trials.get(trial_id)
        if trial is None or trial.outcome != PENDING:
            return  # not ours (e.g. a point evaluated before this searcher), or already ended
        if self._floor is None and isinstance(result.get(keys.MAJORITY_P1), (int, float)):
            self._floor = float(result[keys.MAJORITY_P1]) + self._margin
        trial.rows.append({k: result[k] for k in (*_ROW_KEYS, self._metric) if k in result})

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        trial = self._trials.get(trial_id)
        if trial is None or trial.outcome != PENDING:
            return
        if result and (not trial.rows or result.get(keys.EPOCH) != trial.rows[-1].get(keys.EPOCH)):
            self.on_trial_result(trial_id, result)  # Tune passes the last result here; it may be unseen
        record = layout.trial_record(trial_id=trial_id, tune_status="ERROR" if error else "TERMINATED", config={},
                                     rows=trial.rows, metric=self._metric, mode=self._mode, max_epochs=self._epochs,
                                     collapse_patience=self._collapse_patience, early_collapse=self._early_collapse)
        values = [float(r[self._metric]) for r in trial.rows
                  if float(r.get(keys.EPOCH, math.inf)) <= self._epochs + _EPS and _finite(r.get(self._metric))]
        if record["status"] in ("diverged", "collapsed"):
            trial.outcome = FAILED
        elif record["status"] == "terminated" and values:
            trial.outcome, trial.value = SCORED, max(values)
        else:  # stopped by the scheduler, errored, or no finite metric: not a value at the budget
            trial.outcome = UNKNOWN
        trial.rows = []
        if trial.outcome != UNKNOWN and self._floor is None:
            raise ValueError(f"EdgeSearch: trial {trial_id} reported no {keys.MAJORITY_P1}; the level needs the "
                             "majority-label floor (sweetspot's trainable reports it every epoch)")

    def get_state(self) -> dict[str, Any]:
        return copy.deepcopy({"lines": self._lines, "ranges": self._ranges, "trials": self._trials, "floor": self._floor})

    def set_state(self, state: dict[str, Any]) -> None:
        for key in ("lines", "ranges"):
            if [tuple(v) for v in state[key]] != [tuple(v) for v in getattr(self, f"_{key}")]:
                raise ValueError(f"EdgeSearch: the saved search has other {key} ({state[key]}) than this one")
        self._trials, self._floor = copy.deepcopy(state["trials"]), state["floor"]

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:  # Tune writes to a temporary name and renames it
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    # --------------------------------------------------------------------------------------------
    # What the search knows

    @property
    def level(self) -> float | None:
        """L = (1 + δ)·F, the score a configuration must reach; None before the first report."""
        return None if self._floor is None else (1.0 + self._delta) * self._floor

    @property
    def state(self) -> tuple[LineState, ...]:
        """Every line: its phase, points and unresolved brackets."""
        out = []
        for i, (optimizer, decay) in enumerate(self._lines):
            phase, _, unresolved = self._plan(i)
            out.append(LineState(optimizer=optimizer, weight_decay=decay, phase=phase, points=tuple(self._points(i).values()),
                                 unresolved=tuple((_lr(a), _lr(b)) for a, b in unresolved)))
        return tuple(out)

    @property
    def dropped(self) -> tuple[tuple[str, float], ...]:
        """The (optimizer, weight decay) lines dropped because every probe sat at the floor."""
        return tuple(self._lines[i] for i in range(len(self._lines)) if self._plan(i)[0] == "dropped")

    def summary(self) -> list[str]:
        """One line of text per line of the search, for logs."""
        out = []
        for s in self.state:
            good = [p.lr for p in s.points if p.qualifies]
            where = f"qualifying lrs {min(good):.3g}..{max(good):.3g}" if good else "no qualifying lr"
            extra = f"; {len(s.unresolved)} bracket(s) unresolved" if s.unresolved else ""
            out.append(f"{s.optimizer} wd={s.weight_decay:g}: {s.phase} ({sum(p.seeds for p in s.points)} trials; {where}{extra})")
        return out

    # --------------------------------------------------------------------------------------------
    # The plan of one line

    def _qualifies(self, value: float) -> bool:
        level = self.level
        return level is not None and _finite(value) and value >= level - _EPS and value > self._floor

    def _points(self, i: int) -> dict[float, PointState]:
        """Line i's sampled points by x, in x order."""
        by_x: dict[float, list[_Trial]] = {}
        for t in self._trials.values():
            if t.line == i:
                by_x.setdefault(t.x, []).append(t)
        out = {}
        for x in sorted(by_x):
            trials = by_x[x]
            outcomes = {t.outcome for t in trials}
            values = [t.value for t in trials if t.outcome == SCORED]
            outcome = next((o for o in (PENDING, FAILED, SCORED) if o in outcomes), UNKNOWN)
            value = math.nan
            if outcome == SCORED:  # the analysis's configuration score: mean − std over seeds
                value = statistics.fmean(values) - (statistics.stdev(values) if len(values) > 1 else 0.0)
            out[x] = PointState(lr=_lr(x), outcome=outcome, value=value, seeds=len(trials),
                                qualifies=outcome == SCORED and self._qualifies(value))
        return out

    def _sigma(self) -> float:
        """The seed-to-seed standard deviation, pooled over points with >= 2 scored seeds and the prior."""
        by_point: dict[tuple[int, float], list[float]] = {}
        for t in self._trials.values():
            if t.outcome == SCORED:
                by_point.setdefault((t.line, t.x), []).append(t.value)
        variances = [statistics.variance(v) for v in by_point.values() if len(v) > 1]
        return math.sqrt((self._noise ** 2 + sum(variances)) / (1 + len(variances)))

    def _probe_xs(self, i: int) -> list[float]:
        lo, hi = self._ranges[i]
        step = (hi - lo) / self._probes  # the centres of `probes` equal cells: each stands for its cell
        return [_key(lo + (k + 0.5) * step) for k in range(self._probes)]

    def _plan(self, i: int) -> tuple[str, list[tuple[tuple, float, int]], list[tuple[float, float]]]:
        """(phase, candidates, unresolved brackets) of line i. A candidate is (rank, x, seed): lower
        ranks first, extra seeds (0) before probes (1) before bisections (2, widest first). Unresolved:
        brackets still wider than the resolution, (x, x)."""
        points = self._points(i)
        probes = self._probe_xs(i)
        todo = [((1, k), x, self._first_seed) for k, x in enumerate(probes) if x not in points]
        if todo or any(points[x].outcome == PENDING for x in probes):
            return "probing", todo, []
        known = [(x, p) for x, p in points.items() if p.outcome in (SCORED, FAILED)]
        if not known:
            return "unknown", [], []
        candidates: list[tuple[tuple, float, int]] = []
        unresolved: list[tuple[float, float]] = []

        def bisect(a: float, b: float, at: float | None = None) -> None:
            """Propose `at` (default: the midpoint) for the bracket (a, b) unless it was sampled: then
            its trial still runs, or came back unknown and the bracket stays unresolved."""
            unresolved.append((a, b))
            at = _key((a + b) / 2) if at is None else at
            if at not in points:
                candidates.append(((2, -(b - a)), at, self._first_seed))

        lo, hi = (_key(v) for v in self._ranges[i])
        region = any(p.qualifies for _, p in known)
        if region:
            sigma = self._sigma()
            lone = [(x, p) for x, p in known if p.qualifies]
            if len(lone) == 1 and lone[0][1].seeds < self._seeds:  # the verdict rests on one trial: confirm it
                candidates.append(((0, 0), lone[0][0], self._first_seed + lone[0][1].seeds))
            for (a, pa), (b, pb) in zip(known, known[1:]):
                if pa.qualifies == pb.qualifies:
                    continue
                if b - a > self._resolution + _EPS:
                    bisect(a, b)
                    continue
                x, q = (a, pa) if pa.qualifies else (b, pb)
                if q.seeds < self._seeds and q.value - self.level < 2 * sigma and len(lone) > 1:  # (a lone one: above)
                    candidates.append(((0, 0), x, self._first_seed + q.seeds))
            # The range's ends are sampled only when the region reaches the outermost point.
            if known[0][1].qualifies and known[0][0] > lo:
                bisect(lo, known[0][0], at=lo)
            if known[-1][1].qualifies and known[-1][0] < hi:
                bisect(known[-1][0], hi, at=hi)
        else:
            scored = [(x, p) for x, p in known if p.outcome == SCORED]
            best_x = max(scored, key=lambda xp: xp[1].value)[0] if scored else None
            if best_x is None or not points[best_x].value > self._floor:
                running = any(p.outcome == PENDING for p in points.values())  # an extra seed may still run
                return "refining" if running else "dropped" if set(points) == set(probes) else "none", [], []
            around = sorted({lo, hi, *points})  # towards the best point from its neighbours (or the range's ends)
            k = around.index(best_x)
            for a, b in [(around[j], around[j + 1]) for j in (k - 1, k) if 0 <= j < len(around) - 1]:
                if b - a > self._resolution + _EPS:
                    bisect(a, b)
        running = any(p.outcome == PENDING for p in points.values())
        phase = "refining" if candidates or running else "found" if region else "none"
        return phase, candidates, unresolved


def _check_metric(metric: str, mode: str) -> None:
    if (metric, mode) != (keys.VAL_P1, "max"):
        raise ValueError(f"EdgeSearch: metric/mode must be {keys.VAL_P1}/max (the level is set by the majority-label "
                         f"floor), got {metric}/{mode}")


def _key(x: float) -> float:
    return round(x, 9)  # one point, however its x was computed


def _lr(x: float) -> float:
    return float(f"{10 ** x:.12g}")  # 10 ** -3.5 and 1e-3 × 0.316227766017 are one lr


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
