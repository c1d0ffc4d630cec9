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
     `resolution` / 2 (a spot narrower than the probe spacing can only sit near it); the verdict is
     "none" if nothing qualifies there. With no score above F, a *hint* serves as the best point: a
     point with no score whose P@1 beat F at an epoch end while its predictions were nearly constant
     (a few labels for almost every document, which never counts as training: trainable/score.py).
     Such runs sit at a region's edge; on Reuters-all AMSGrad's region (0.3 decade) lies between two
     probes and is found only this way.
   - every probe is at or below F (hints included), or failed: the line is **dropped** (`dropped`, and its phase in
     `state`) and never sampled again.
3. **Done** (`suggest` returns `Searcher.FINISHED`) when no line has anything left to sample and no
   trial runs, or once `max_trials` trials were suggested.

Twins: a line whose updates equal another line's exactly (AdamW at weight decay 0 is Adam:
`trainable.optimizers.twin`) is never run; its state is its twin's. On the ground-truth tables their
rows are identical, and that line was a fifth of the search's trials.

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

Over 400 lines on purpose: the searcher is one state machine (lines, phases, candidates, the plan) whose
policy reads top to bottom in one place.
"""

from __future__ import annotations

import copy
import enum
import math
import pickle
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ray.tune.search import Searcher

from sweetspot import layout
from sweetspot.trainable import collapse, keys, score
from sweetspot.trainable.optimizers import default_lr, relative, twin
from sweetspot.trainable.score import DEFAULT_DELTA

__all__ = ["DEFAULT_DELTA", "EdgeSearch", "LineState", "Phase", "PointState"]

_EPS = 1e-9
PENDING, SCORED, FAILED, UNKNOWN = "pending", "scored", "failed", "unknown"  # a trial's (and a point's) outcome
_ROW_KEYS = collapse.SIGNALS  # what a running trial's rows keep, besides the metric: the score's and the collapse rules' inputs


class Phase(str, enum.Enum):
    """Where the search stands on one line (a str: `phase == "found"` reads as written)."""

    PROBING = "probing"  # a probe has not come back yet
    REFINING = "refining"  # bisecting brackets or adding seeds, or trials still run
    FOUND = "found"  # a region, every bracket resolved (or left unresolved: `LineState.unresolved`)
    NONE = "none"  # some point beat the floor, none qualifies
    DROPPED = "dropped"  # every probe at or below the floor, or failed: never sampled again
    UNKNOWN = "unknown"  # nothing came back at the budget (stopped or errored)

    def __str__(self) -> str:
        return self.value


class Kind(enum.IntEnum):
    """What a candidate trial is for; lower kinds are suggested first."""

    SEED = 0  # one more seed at a point whose verdict the noise decides
    PROBE = 1  # a probe of the line
    BISECT = 2  # the midpoint (or the range's end) of a bracket


@dataclass(frozen=True)
class Candidate:
    """A trial the plan of a line proposes: at x = log10 lr, with this seed."""

    kind: Kind
    x: float
    seed: int
    order: float = 0.0  # within a kind, lower first: a probe's index, a bracket's −width (widest first)


@dataclass(frozen=True)
class Plan:
    """The plan of one line: its phase, what it proposes, and its brackets still wider than the resolution."""

    phase: Phase
    candidates: tuple[Candidate, ...] = ()
    unresolved: tuple[tuple[float, float], ...] = ()  # (x, x)


@dataclass
class _Trial:
    """One suggested trial: where it samples and how it ended."""

    line: int  # index into the searcher's lines
    x: float  # log10 lr, rounded (the point's key)
    seed: int
    outcome: str = PENDING
    value: float = math.nan  # SCORED: its score (trainable/score.py) at the budget; NaN when no epoch end counted
    hint: float = math.nan  # SCORED: the same, with only exactly constant predictions left out (`_plan`'s hint)
    rows: list[dict[str, Any]] = field(default_factory=list)  # while it runs: its reports (_ROW_KEYS + metric)


@dataclass(frozen=True)
class PointState:
    """One sampled lr of a line, over its seeds."""

    lr: float
    outcome: str  # over its ended seeds: "failed" (one diverged or collapsed), "scored", "unknown"; "pending": none ended
    value: float  # SCORED: mean − std over the scored seeds (sample std; 0 for one seed); else NaN
    seeds: int  # trials sampled here, running ones included
    qualifies: bool  # on the seeds ended so far
    running: int = 0  # of its trials, those still running
    hint: float = math.nan  # the best of its scored seeds' hints: P@1 reached with nearly constant predictions counted


@dataclass(frozen=True)
class LineState:
    """One line (optimizer, weight decay): where the search stands on it."""

    optimizer: str
    weight_decay: float
    phase: Phase
    points: tuple[PointState, ...]  # in lr order; the analysis turns them into intervals
    unresolved: tuple[tuple[float, float], ...] = ()  # (lr, lr) brackets left wider than the resolution
    next_lr: float | None = None  # the lr one more trial on this line would sample (None: nothing left to sample)
    same_as: str | None = None  # a twin line (`twins`): not run; its phase and points are this optimizer's line's


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
        entropy_fraction: `train.collapse_entropy_fraction`: an evaluation whose predictions are this
            constant never counts towards a score (trainable/score.py).
        relatives: A line whose optimizer has a relative in the search (`OptimizerSpec.relative`, e.g.
            AMSGrad and AdamW: Adam) waits for the relative's line to settle, then probes first at its
            edges instead of across the range.
        twins: A line whose updates equal another line's of the search exactly
            (`trainable.optimizers.twin`: AdamW at weight decay 0 is Adam) is never run; its state is
            its twin's (`LineState.same_as`).
        metric, mode: Must be `val_p1` and `max`: the level needs the majority-label floor.

    Raises:
        ValueError: an argument is out of range, an optimizer is unknown, or metric/mode is not val_p1/max.
    """

    def __init__(
        self,
        *,
        optimizers: Sequence[str],
        epochs: int,
        lr_factor: tuple[float, float] = (1e-3, 10.0),
        lr: tuple[float, float] | None = None,
        weight_decays: Sequence[float] = (0.0,),
        probes: int = 4,
        resolution: float = 0.5,
        seeds: int = 2,
        noise: float = 0.02,
        max_trials: int | None = None,
        first_seed: int = 0,
        delta: float = DEFAULT_DELTA,
        margin: float = 0.01,
        collapse_patience: int | None = None,
        early_collapse: dict[str, float] | None = None,
        entropy_fraction: float = score.DEFAULT_ENTROPY_FRACTION,
        relatives: bool = True,
        twins: bool = True,
        metric: str = keys.VAL_P1,
        mode: str = "max",
    ):
        _check_metric(metric, mode)
        super().__init__(metric=metric, mode=mode)
        bounds = lr if lr is not None else lr_factor
        problems = [
            (not optimizers, "optimizers: at least one"),
            (epochs < 1, f"epochs: {epochs} < 1"),
            (not 0 < bounds[0] < bounds[1], f"{'lr' if lr else 'lr_factor'}: need 0 < low < high, got {bounds}"),
            (not weight_decays, "weight_decays: at least one"),
            (probes < 2, f"probes: {probes} < 2"),
            (not resolution > 0, f"resolution: {resolution} decades, must be > 0"),
            (seeds < 1, f"seeds: {seeds} < 1"),
            (not noise >= 0, f"noise: {noise} < 0"),
            (max_trials is not None and max_trials < 1, f"max_trials: {max_trials} < 1"),
            (not delta >= 0, f"delta: {delta} < 0"),
        ]
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
        self._early_collapse, self._entropy_fraction = early_collapse, entropy_fraction
        self._relative: dict[int, int] = {}  # line -> the line of its optimizer's relative at the same weight decay
        if relatives:
            for i, (optimizer, decay) in enumerate(self._lines):
                for j, line in enumerate(self._lines):
                    if line == (relative(optimizer), decay):
                        self._relative[i] = j
        self._twin: dict[int, int] = {}  # line -> the line it is a twin of (never run itself)
        if twins:
            for i, (optimizer, decay) in enumerate(self._lines):
                same = twin(optimizer, decay)
                if same is not None and (same, decay) in self._lines:
                    self._twin[i] = self._lines.index((same, decay))
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
        best: tuple[tuple, int, Candidate] | None = None  # (rank, line, candidate) with the lowest rank
        for i in range(len(self._lines)):
            if i in self._twin:  # never run: its twin's trials answer for it
                continue
            busy = sum(t.outcome == PENDING for t in self._trials.values() if t.line == i)
            for c in self._plan(i).candidates:
                rank = (c.kind, c.order, busy, i)  # ties: the line with fewer running trials
                best = (rank, i, c) if best is None or rank < best[0] else best
        if best is None:
            return None if any(t.outcome == PENDING for t in self._trials.values()) else Searcher.FINISHED
        _, i, c = best
        self._trials[trial_id] = _Trial(line=i, x=c.x, seed=c.seed)
        optimizer, decay = self._lines[i]
        return {"optimizer": optimizer, "lr": _lr(c.x), "weight_decay": decay, "seed": c.seed}

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
        record = layout.trial_record(
            trial_id=trial_id,
            tune_status="ERROR" if error else "TERMINATED",
            config={},
            rows=trial.rows,
            metric=self._metric,
            mode=self._mode,
            max_epochs=self._epochs,
            collapse_patience=self._collapse_patience,
            early_collapse=self._early_collapse,
        )
        # The score the analysis gives it (trainable/score.py): scored once it reached the budget's last
        # epoch end, whatever happened after; a failure (diverged, stopped collapsed) never qualifies.
        at_budget = score.score(
            trial.rows, budget=self._epochs, metric=self._metric, mode=self._mode, entropy_fraction=self._entropy_fraction
        )
        if record["status"] in ("diverged", "collapsed"):
            trial.outcome = FAILED
        elif at_budget.reached >= self._epochs:
            trial.outcome, trial.value = SCORED, at_budget.value  # NaN: no epoch end counted (constant predictions)
            trial.hint = score.score(
                trial.rows, budget=self._epochs, metric=self._metric, mode=self._mode, entropy_fraction=0.0
            ).value
        else:  # stopped by the scheduler or errored before the budget: no value at the budget
            trial.outcome = UNKNOWN
        trial.rows = []
        if trial.outcome == SCORED and self._floor is None:
            raise ValueError(
                f"EdgeSearch: trial {trial_id} reported no {keys.MAJORITY_P1}; the level needs the "
                "majority-label floor (sweetspot's trainable reports it every epoch)"
            )

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
        return None if self._floor is None else score.level(self._floor, delta=self._delta)

    @property
    def state(self) -> tuple[LineState, ...]:
        """Every line: its phase, points and unresolved brackets."""
        out = []
        for i, (optimizer, decay) in enumerate(self._lines):
            j = self._twin.get(i, i)
            plan = self._plan(j)
            first = min(plan.candidates, key=lambda c: (c.kind, c.order), default=None)
            out.append(
                LineState(
                    optimizer=optimizer,
                    weight_decay=decay,
                    phase=plan.phase,
                    points=tuple(self._points(j).values()),
                    unresolved=tuple((_lr(a), _lr(b)) for a, b in plan.unresolved),
                    next_lr=None if i in self._twin else (_lr(first.x) if first else None),
                    same_as=self._lines[j][0] if i in self._twin else None,
                )
            )
        return tuple(out)

    @property
    def dropped(self) -> tuple[tuple[str, float], ...]:
        """The (optimizer, weight decay) lines dropped because every probe sat at the floor."""
        return tuple(self._lines[i] for i in range(len(self._lines)) if self._plan(self._twin.get(i, i)).phase is Phase.DROPPED)

    def summary(self) -> list[str]:
        """One line of text per line of the search, for logs."""
        out = []
        for s in self.state:
            good = [p.lr for p in s.points if p.qualifies]
            where = f"qualifying lrs {min(good):.3g}..{max(good):.3g}" if good else "no qualifying lr"
            extra = f"; {len(s.unresolved)} bracket(s) unresolved" if s.unresolved else ""
            if s.same_as:
                out.append(f"{s.optimizer} wd={s.weight_decay:g}: as {s.same_as} (identical updates; not run)")
                continue
            out.append(
                f"{s.optimizer} wd={s.weight_decay:g}: {s.phase.value} ({sum(p.seeds for p in s.points)} trials; {where}{extra})"
            )
        return out

    # --------------------------------------------------------------------------------------------
    # The plan of one line

    def _qualifies(self, value: float) -> bool:
        return self._floor is not None and score.qualifies(value, floor=self._floor, delta=self._delta)

    def _points(self, i: int) -> dict[float, PointState]:
        """Line i's sampled points by x, in x order. A point's verdict reads its ended seeds only: a
        seed still running leaves it where it stands (its bracket stays resolved while it runs)."""
        by_x: dict[float, list[_Trial]] = {}
        for t in self._trials.values():
            if t.line == i:
                by_x.setdefault(t.x, []).append(t)
        out = {}
        for x in sorted(by_x):
            trials = by_x[x]
            outcomes = {t.outcome for t in trials}
            values = [t.value for t in trials if t.outcome == SCORED]
            hints = [t.hint for t in trials if t.outcome == SCORED and _finite(getattr(t, "hint", math.nan))]
            outcome = next((o for o in (FAILED, SCORED, UNKNOWN) if o in outcomes), PENDING)
            value = math.nan  # also when a seed scored nothing (every epoch end predicted one label): it never trained
            if outcome == SCORED and all(_finite(v) for v in values):  # the analysis's configuration score: mean − std
                value = statistics.fmean(values) - (statistics.stdev(values) if len(values) > 1 else 0.0)
            out[x] = PointState(
                lr=_lr(x),
                outcome=outcome,
                value=value,
                seeds=len(trials),
                qualifies=outcome == SCORED and self._qualifies(value),
                running=sum(t.outcome == PENDING for t in trials),
                hint=max(hints, default=math.nan),
            )
        return out

    def _sigma(self) -> float:
        """The seed-to-seed standard deviation, pooled over points with >= 2 scored seeds and the prior."""
        by_point: dict[tuple[int, float], list[float]] = {}
        for t in self._trials.values():
            if t.outcome == SCORED and _finite(t.value):
                by_point.setdefault((t.line, t.x), []).append(t.value)
        variances = [statistics.variance(v) for v in by_point.values() if len(v) > 1]
        return math.sqrt((self._noise**2 + sum(variances)) / (1 + len(variances)))

    def _probe_xs(self, i: int) -> list[float] | None:
        """Line i's probes: the centres of `probes` equal cells of its range, each standing for its
        cell; or, for a line with a relative in the search (`relatives`), the ends of the relative's
        resolved edges, moved by the two default lrs' ratio (the cell centres are added when none of
        those qualifies). None: wait for the relative to settle."""
        lo, hi = self._ranges[i]
        step = (hi - lo) / self._probes
        cells = [_key(lo + (k + 0.5) * step) for k in range(self._probes)]
        j = self._relative.get(i)
        if j is None:
            return cells
        plan = self._plan(j)
        if plan.phase in (Phase.PROBING, Phase.REFINING):
            return None
        known = [(x, p) for x, p in self._points(j).items() if p.outcome in (SCORED, FAILED)]
        shift = self._ranges[i][0] - self._ranges[j][0]
        ends = sorted(
            {_key(x + shift) for (a, pa), (b, pb) in zip(known, known[1:]) if pa.qualifies != pb.qualifies for x in (a, b)}
            | {_key(x + shift) for x, p in known[:1] + known[-1:] if p.qualifies}
        )
        ends = [x for x in ends if lo - _EPS <= x <= hi + _EPS]
        if not ends:
            return cells
        points = self._points(i)
        if all(x in points and points[x].outcome in (SCORED, FAILED) and not points[x].qualifies for x in ends):
            return sorted({*ends, *cells})  # the relative's edges are not this line's: probe the whole range
        return ends

    def _plan(self, i: int) -> Plan:
        """The plan of line i, in the order of the module docstring: probe, then refine around a
        region (or towards the best point when none qualifies), else done."""
        points = self._points(i)
        running = any(p.running for p in points.values())

        # 1. Probe: wait until every probe has an ended trial (a probe's extra seed does not hold the line).
        probes = self._probe_xs(i)
        if probes is None:  # its relative is still searched
            return Plan(Phase.PROBING)
        unsampled = tuple(Candidate(Kind.PROBE, x, self._first_seed, order=k) for k, x in enumerate(probes) if x not in points)
        if unsampled or any(points[x].outcome == PENDING for x in probes):
            return Plan(Phase.PROBING, unsampled)
        known = [(x, p) for x, p in points.items() if p.outcome in (SCORED, FAILED)]
        if not known:
            return Plan(Phase.REFINING if running else Phase.UNKNOWN)

        # 2. Refine.
        if any(p.qualifies for _, p in known):
            candidates, unresolved = self._refine_region(i, points, known)
            return Plan(Phase.REFINING if candidates or running else Phase.FOUND, candidates, unresolved)
        scored = [(x, p) for x, p in known if p.outcome == SCORED and _finite(p.value)]
        best = max(scored, key=lambda xp: xp[1].value, default=None)
        if best is None or not best[1].value > self._floor:
            # A hint: a point that reached the level while its predictions were nearly constant (a few labels
            # for every document: not counted as training) sits next to a region narrower than the probes' spacing.
            hinted = [(x, p) for x, p in known if not _finite(p.value) and _finite(p.hint) and p.hint > self._floor]
            best = max(hinted, key=lambda xp: xp[1].hint, default=None)
        if best is None:  # nothing beat the floor, no hint: no spot to look for
            phase = Phase.REFINING if running else Phase.DROPPED if set(points) == set(probes) else Phase.NONE
            return Plan(phase)
        candidates, unresolved = self._towards(i, points, best[0])
        return Plan(Phase.REFINING if candidates or running else Phase.NONE, candidates, unresolved)

    def _bisect(
        self, points: dict[float, PointState], a: float, b: float, at: float | None = None
    ) -> tuple[Candidate | None, tuple[float, float]]:
        """(a candidate or None, the bracket): `at` (default: the midpoint) of the unresolved bracket
        (a, b), unless a point inside it was sampled: then its trial still runs, or came back unknown
        and the bracket stays unresolved."""
        at = _key((a + b) / 2) if at is None else at
        inside = at in points or any(a < x < b for x in points)
        return (None if inside else Candidate(Kind.BISECT, at, self._first_seed, order=-(b - a))), (a, b)

    def _refine_region(
        self, i: int, points: dict[float, PointState], known: list[tuple[float, PointState]]
    ) -> tuple[tuple[Candidate, ...], tuple[tuple[float, float], ...]]:
        """Some point qualifies: bisect every bracket wider than the resolution (and sample the range's
        end next to a qualifying outermost point); give more seeds where the noise decides a verdict."""
        candidates: list[Candidate] = []
        unresolved: list[tuple[float, float]] = []

        def propose(candidate: Candidate | None, bracket: tuple[float, float]) -> None:
            unresolved.append(bracket)
            if candidate is not None:
                candidates.append(candidate)

        def another_seed(x: float, p: PointState) -> None:
            if p.seeds < self._seeds and not p.running:
                candidates.append(Candidate(Kind.SEED, x, self._first_seed + p.seeds))

        sigma, level = self._sigma(), self.level
        qualifying = [(x, p) for x, p in known if p.qualifies]
        undecided = any(p.outcome == PENDING for p in points.values())  # a point with no ended trial may qualify too
        if len(qualifying) == 1 and not undecided:  # a region resting on one point may be one lucky seed: confirm it
            another_seed(*qualifying[0])
        for (a, pa), (b, pb) in zip(known, known[1:]):
            if pa.qualifies == pb.qualifies:
                continue
            if b - a > self._resolution + _EPS:
                propose(*self._bisect(points, a, b))
                continue
            x, q = (a, pa) if pa.qualifies else (b, pb)  # a resolved edge: its qualifying end, if within the noise
            if len(qualifying) > 1 and q.value - level < 2 * sigma:
                another_seed(x, q)
        lo, hi = (_key(v) for v in self._ranges[i])  # the range's ends only when the region reaches the outermost point
        if known[0][1].qualifies and known[0][0] > lo:
            propose(*self._bisect(points, lo, known[0][0], at=lo))
        if known[-1][1].qualifies and known[-1][0] < hi:
            propose(*self._bisect(points, known[-1][0], hi, at=hi))
        return tuple(dict.fromkeys(candidates)), tuple(unresolved)

    def _towards(
        self, i: int, points: dict[float, PointState], best: float
    ) -> tuple[tuple[Candidate, ...], tuple[tuple[float, float], ...]]:
        """Nothing qualifies but the best point beats the floor: bisect from its neighbours (or the
        range's ends) towards it, down to the resolution."""
        lo, hi = (_key(v) for v in self._ranges[i])
        around = sorted({lo, hi, *points})
        k = around.index(best)
        out = [
            self._bisect(points, around[j], around[j + 1])
            for j in (k - 1, k)
            if 0 <= j < len(around) - 1 and around[j + 1] - around[j] > self._resolution / 2 + _EPS
        ]
        return tuple(c for c, _ in out if c is not None), tuple(bracket for _, bracket in out)


def _check_metric(metric: str, mode: str) -> None:
    if (metric, mode) != (keys.VAL_P1, "max"):
        raise ValueError(
            f"EdgeSearch: metric/mode must be {keys.VAL_P1}/max (the level is set by the majority-label "
            f"floor), got {metric}/{mode}"
        )


def _key(x: float) -> float:
    return round(x, 9)  # one point, however its x was computed


def _lr(x: float) -> float:
    return float(f"{10**x:.12g}")  # 10 ** -3.5 and 1e-3 × 0.316227766017 are one lr


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
