"""Replay search methods against a ground-truth table: how well, and at what cost, does each one
recover the table's sweet spots? (A tabular benchmark in the manner of Syne Tune's simulator backend
over its blackbox repository, NAS-Bench-201 or LCBench: the expensive trials ran once, in
bench/ground_truth.py; a replay reads a surrogate of their results.)

    python bench/replay.py reuters_r90 go_emotions reuters_all [--replays 30] [--methods grid tpe-asha ...]
    python bench/replay.py go_emotions --real          # one replay per method through `sweetspot search`
    python bench/replay.py go_emotions --score FOLDER  # a real search's results folder against the truth

Replay v2 (docs/benchmarks.md, "Sweet-spot recovery"):
- **Surrogate.** A trial at any lr reads, for its seed, the table's two runs at the neighbouring
  table lrs, every report (epoch row, mid-epoch rows included) interpolated linearly in log10 lr
  between the two rows of the same epoch; at a table lr it is the table's row itself. Categorical
  keys (epoch, step, seed, top label, node) come from the nearer run; `collapsed` is recomputed by
  the collapse rule from the interpolated signals; a row that diverged on either side is the nearer
  run's row. Outside the table's lr range the end run answers (constant extrapolation); the answer's
  intervals are clipped to that range before scoring, since the truth knows nothing beyond it.
- **Truth**, per table seed: the same surrogate read on a lattice of `LATTICE_STEP` decades over the
  table's range (the table lrs included), each point scored by trainable/score.py (best `val_p1` over
  epoch ends <= the budget, constant-prediction evaluations left out) and the sweet spots by the
  analysis's `lr_intervals` and qualification rule (`spots`, applied alike to every answer). Truth
  and replays read one function, so they cannot disagree by construction.
- **Seed rule: a per-seed truth.** Each replay lives in one *world*, a table seed (replay r: seed
  r mod 2); a trial's first seed reads the world's runs, a configuration's k-th extra seed the next
  table seed (the only other run-to-run noise the table holds), and the answer is scored against the
  world's truth. The same rule for every method. The noise floor: seed 0's truth scored against seed 1's.
- **Shifted ranges.** Replay r shifts every method's lr range (grid factors and sampled ranges alike)
  by an offset drawn uniformly in [-`MAX_SHIFT`, +`MAX_SHIFT`] decades (the same for every method:
  paired comparisons); the robustness table replays at the fixed `SHIFTS`.
- **Cost.** Trial-epochs (epochs trained, summed over trials) and evaluation passes; one pass over V
  validation and T test documents (T when `train.eval_test`) costs (V + T) / N_train ×
  `FORWARD_SHARE` epochs of training (a forward pass is about a third of a training step's compute:
  the backward pass costs about twice the forward). Reported as a % of the 2-seed grid's trial-epochs.
- **Twin lines.** A line whose table rows equal another line's on every lr and seed (AdamW at weight
  decay 0 is Adam) is counted once: it is left out of the verdict and edge figures (its trials' cost
  stays).

The search itself is sweetspot's own: the experiment config of each method (METHODS) goes through
`sweetspot.search.runner.search_components`. Two paths drive those components:
- `simulate`: a discrete-event loop with no Ray (Tune's order of calls, time in epochs), Optuna in
  memory; fast enough for hundreds of replays per method.
- `replay_real`: the real `sweetspot search` path (a Ray Tune Tuner built by the runner, records and
  all) with a trainable that reports the surrogate's rows instead of training.
With one trial at a time both are deterministic and must agree trial for trial (tested).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO / "bench" / "tables"
OUT = REPO / "docs" / "benchmarks-recovery.json"
FIGURE = "benchmarks-recovery-{name}.png"  # in docs/, one anytime figure per table

TUNING_TABLES = ("go_emotions", "reuters_all")  # constants of the search may be chosen on these
HELD_OUT_TABLES = ("reuters_r90",)  # never: the headline numbers
LATTICE_STEP = 0.05  # decades between the truth's lattice points (at most; the table lrs are on it)
MAX_SHIFT = 0.5  # decades: each replay's range offset is uniform in [-MAX_SHIFT, MAX_SHIFT]
SHIFTS = (0.0, -0.15, 0.15, -0.3, 0.3)  # the robustness table's fixed offsets
FORWARD_SHARE = 1 / 3  # an evaluated document's compute against a trained one's (forward vs forward + backward)
ANYTIME_STEP = 6.0  # trial-epochs between the anytime curves' points

# Each method is a set of `--set` overrides of the table's own experiment (its data, model, budget).
STUDY_FACTORS = [10.0, 1.0, 0.1, 0.01, 0.001]
TABLE_EVALS = "table"  # train.eval_every_steps as the table's own (the evaluations the table recorded)
METHODS: dict[str, dict[str, Any]] = {
    # the study's protocol: 5 optimizers x default lr x [10 .. 0.001], every trial to the budget
    "grid": {
        "search.algorithm": "grid",
        "search.seeds": 1,
        "search.space.lr_factor": STUDY_FACTORS,
        "search.scheduler.name": "fifo",
    },
    "random-asha": {"search.algorithm": "random", "search.num_samples": 25, "search.scheduler.name": "asha"},
    "tpe-asha": {"search.algorithm": "tpe", "search.num_samples": 25, "search.scheduler.name": "asha"},
    "tpe-asha-collapse": {
        "search.algorithm": "tpe",
        "search.num_samples": 25,
        "search.scheduler.name": "asha",
        "search.stop_on_collapse": 2,
    },
    # the early collapse stop decides within epoch 1 from evaluations within the epoch
    "tpe-asha-early": {
        "search.algorithm": "tpe",
        "search.num_samples": 25,
        "search.scheduler.name": "asha",
        "search.stop_early_collapse": True,
        "train.eval_every_steps": TABLE_EVALS,
    },
    # the region search (search/edges.py), alone and with the early collapse stop
    "edges": {"search.algorithm": "edges", "search.num_samples": 60, "search.scheduler.name": "fifo"},
    "edges-early": {
        "search.algorithm": "edges",
        "search.num_samples": 60,
        "search.scheduler.name": "fifo",
        "search.stop_early_collapse": True,
        "train.eval_every_steps": TABLE_EVALS,
    },
}
SAMPLED_RANGE = (0.001, 10.0)  # the study's range of lr factors, for the sampling methods (before the shift)
COMMON = {
    "search.seeds": 1,
    "search.max_concurrent_trials": 2,
    "search.stop_on_diverged": True,
    "search.scheduler.grace_period": 1,
    "search.scheduler.reduction_factor": 2,
    "search.space.weight_decay": [0.0],
}
_CATEGORICAL = {
    "epoch",
    "step",
    "seed",
    "val_top_label",
    "test_top_label",
    "node_id",
    "diverged",
    "collapsed",
    "majority_p1",
    "prior_bce",
}  # from the nearer run, never interpolated


def _x(lr: float) -> float:
    return math.log10(float(lr))


def _epoch_key(row: dict[str, Any]) -> float:
    return round(float(row.get("epoch", 0.0)), 3)


def _measured(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """A run's rows without where it ran (the Ray node)."""
    return None if rows is None else [{k: v for k, v in r.items() if k != "node_id"} for r in rows]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# --- the table and its surrogate ------------------------------------------------------------------


class Table:
    """A ground-truth table (bench/tables/<name>.json): its surrogate, truths and cost units."""

    def __init__(self, doc: dict[str, Any], name: str | None = None):
        from sweetspot.analysis.results import results_from_table

        self.doc = doc
        self.name = name or doc.get("name", "table")
        self.results = results_from_table(doc)
        self.rows: dict[tuple[str, float, int], list[dict[str, Any]]] = {}
        for trial in self.results.trials:
            params = self.results.params(trial)
            self.rows[(params["optimizer"], float(params["lr"]), int(params["seed"]))] = trial.history
        self.lrs = {opt: sorted({lr for o, lr, _ in self.rows if o == opt}) for opt, _, _ in self.rows}
        self.seeds = sorted({s for _, _, s in self.rows})
        self.budget = int(self.results.max_epochs)
        train = self.results.train_config
        self.entropy_fraction, self.margin = train.collapse_entropy_fraction, train.collapse_p1_margin
        self.floor = self.results.majority_p1 + self.margin
        self.twins = self._twins()
        self._truths: dict[int, Any] = {}

    @classmethod
    def load(cls, name: str) -> Table:
        path = TABLES / f"{name}.json"
        if not path.is_file():
            raise SystemExit(f"{name}: no table at {path.relative_to(REPO)} (bench/ground_truth.py {name} makes it)")
        return cls(json.loads(path.read_text()), name=name)

    @property
    def role(self) -> str:
        return "held-out" if self.name in HELD_OUT_TABLES else "tuning" if self.name in TUNING_TABLES else "other"

    def _twins(self) -> tuple[str, ...]:
        """Lines whose rows equal an earlier line's (alphabetically) at every lr and seed."""
        names, out = sorted(self.lrs), []
        for i, b in enumerate(names):
            for a in names[:i]:
                if (
                    a not in out
                    and self.lrs[a] == self.lrs[b]
                    and all(
                        _measured(self.rows.get((a, lr, s))) == _measured(self.rows.get((b, lr, s)))
                        for lr in self.lrs[b]
                        for s in self.seeds
                    )
                ):
                    out.append(b)
                    break
        return tuple(out)

    def lr_range(self, optimizer: str) -> tuple[float, float]:
        return self.lrs[optimizer][0], self.lrs[optimizer][-1]

    # the surrogate
    def answer(self, optimizer: str, lr: float, seed: int) -> list[dict[str, Any]]:
        """The surrogate's reports of a run of `optimizer` at `lr` with table seed `seed` (the module
        docstring): the table's rows at a table lr, else the log10-lr interpolation of its two
        neighbours' rows, epoch by epoch."""
        lrs, x = self.lrs[optimizer], _x(lr)
        xs = [_x(v) for v in lrs]
        exact = next((v for v, xv in zip(lrs, xs) if abs(xv - x) <= 1e-9), None)
        if exact is not None or x < xs[0] or x > xs[-1]:
            at = exact if exact is not None else lrs[0] if x < xs[0] else lrs[-1]
            return [dict(r) for r in self.rows[(optimizer, at, seed)]]
        i = max(k for k, xv in enumerate(xs) if xv < x)
        t = (x - xs[i]) / (xs[i + 1] - xs[i])
        return self._blend(self.rows[(optimizer, lrs[i], seed)], self.rows[(optimizer, lrs[i + 1], seed)], t)

    def _blend(self, lo: list[dict[str, Any]], hi: list[dict[str, Any]], t: float) -> list[dict[str, Any]]:
        from sweetspot.trainable.collapse import is_collapsed_row

        near, far = (lo, hi) if t <= 0.5 else (hi, lo)
        far_at = {_epoch_key(r): r for r in far}
        out = []
        for r in near:
            f = far_at.get(_epoch_key(r))
            if f is None or r.get("diverged") or f.get("diverged"):
                out.append(dict(r))
                continue
            a, b = (r, f) if near is lo else (f, r)
            row = dict(r)
            for k in r:
                if k not in _CATEGORICAL and _number(a.get(k)) and _number(b.get(k)):
                    row[k] = a[k] if a[k] == b[k] else a[k] + t * (b[k] - a[k])
            flag = is_collapsed_row(row, entropy_fraction=self.entropy_fraction, p1_margin=self.margin)
            if flag is not None:
                row["collapsed"] = int(flag)
            out.append(row)
        return out

    def table_seed(self, world: int, trial_seed: int) -> int:
        """The table seed a trial reads: the world's for its first seed, the next ones for extra seeds."""
        k = int(trial_seed) - int(self.results.train_config.seed)
        return self.seeds[(self.seeds.index(world) + k) % len(self.seeds)]

    def lookup(self, world: int, config: dict[str, Any], experiment=None) -> list[dict[str, Any]]:
        """The reports of a trial of `config` in `world`, as `experiment` would make them: the epoch
        ends only, unless it evaluates within epochs (`train.eval_every_steps`) too."""
        seed = self.table_seed(world, config.get("seed", self.results.train_config.seed))
        rows = self.answer(config["optimizer"], float(config["lr"]), seed)
        if experiment is None or experiment.train.eval_every_steps is None:
            rows = epoch_ends(rows)
        return rows

    # the truth
    def lattice(self, optimizer: str) -> list[float]:
        """The truth's lrs: every table lr and evenly spaced points between neighbours, <= LATTICE_STEP apart."""
        xs = [_x(v) for v in self.lrs[optimizer]]
        out = [self.lrs[optimizer][0]]
        for a, b, hi in zip(xs, xs[1:], self.lrs[optimizer][1:]):
            n = max(1, math.ceil((b - a) / LATTICE_STEP - 1e-9))
            out += [10 ** (a + (b - a) * k / n) for k in range(1, n)] + [hi]
        return out

    def truth(self, world: int):
        """The sweet spots of table seed `world`'s surrogate on the lattice (`spots`), cached."""
        if world not in self._truths:
            from sweetspot.analysis.results import TrialResult

            trials = [
                TrialResult(
                    trial_id=f"{o}-{k}",
                    status="terminated",
                    config={"optimizer": o, "lr": lr, "weight_decay": 0.0},
                    history=self.answer(o, lr, world),
                )
                for o in sorted(self.lrs)
                for k, lr in enumerate(self.lattice(o))
            ]
            self._truths[world] = self.spots(trials)
        return self._truths[world]

    def spots(self, trials, *, clip: bool = True):
        """`spots` with this table's budget, floor and collapse threshold, intervals clipped to its lr range."""
        return spots(
            trials,
            budget=self.budget,
            floor=self.floor,
            entropy_fraction=self.entropy_fraction,
            ranges={o: self.lr_range(o) for o in self.lrs} if clip else None,
        )

    # the cost units
    @property
    def eval_docs(self) -> int:
        data, train = self.doc["config"]["data"], self.doc["config"]["train"]
        return int(data["validation_limit"]) + (int(data["test_limit"]) if train.get("eval_test") else 0)

    @property
    def train_docs(self) -> int:
        """Documents an epoch trains on: the table's steps at epoch 1 × the batch size (within one batch)."""
        row = next(r for r in self.results.trials[0].history if _epoch_key(r) == 1.0)
        return int(row["step"]) * int(self.doc["config"]["train"]["batch_size"])

    def eval_epochs(self, passes: float, eval_test: bool = True) -> float:
        """Evaluation passes in epochs of training (the module docstring's cost)."""
        docs = self.eval_docs if eval_test else int(self.doc["config"]["data"]["validation_limit"])
        return passes * docs / self.train_docs * FORWARD_SHARE

    @property
    def grid_trial_epochs(self) -> float:
        """The 2-seed grid's trial-epochs (every table trial to the budget): the cost reference."""
        return float(len(self.rows) * self.budget)

    def experiment(self, method: str, *, storage: str, replay_seed: int, shift: float = 0.0, extra: dict[str, Any] | None = None):
        """The method's experiment config: the table's own, with the method's overrides and its lr
        range shifted by `shift` decades."""
        from sweetspot.search.config import load_experiment_dict

        raw = json.loads(json.dumps(self.doc["config"]))  # a deep copy
        for recorded in ("prepared_path", "prepared_data", "optuna_storage"):  # what the run recorded, not config keys
            raw.pop(recorded, None)
        factor = 10.0**shift
        overrides = {**COMMON, "train.eval_every_steps": None, **METHODS[method]}
        if overrides["search.algorithm"] == "grid":
            overrides["search.space.lr_factor"] = [f * factor for f in overrides["search.space.lr_factor"]]
        else:
            overrides["search.space.lr_factor"] = {"low": SAMPLED_RANGE[0] * factor, "high": SAMPLED_RANGE[1] * factor}
        if overrides["train.eval_every_steps"] == TABLE_EVALS:
            overrides["train.eval_every_steps"] = self.doc["config"]["train"]["eval_every_steps"]
        for dotted, value in {
            **overrides,
            "search.seed": replay_seed,
            "storage_path": storage,
            "name": f"replay-{method}-{replay_seed}",
            **(extra or {}),
        }.items():
            node = raw
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        return load_experiment_dict(raw)


def epoch_ends(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reports at whole epochs (what a search without `train.eval_every_steps` sees)."""
    from sweetspot.trainable.score import is_epoch_end

    return [r for r in rows if is_epoch_end(r) or r.get("diverged")]


def world_of(table: Table, replay: int) -> int:
    """Replay `replay`'s world: the table seeds in turn."""
    return table.seeds[replay % len(table.seeds)]


def shift_of(replay: int) -> float:
    """Replay `replay`'s range offset in decades: uniform in [-MAX_SHIFT, MAX_SHIFT], the same for every
    method and table."""
    return random.Random(f"shift-{replay}").uniform(-MAX_SHIFT, MAX_SHIFT)


# --- sweet spots with the one score ---------------------------------------------------------------


def spots(
    trials,
    *,
    budget: int,
    floor: float,
    entropy_fraction: float,
    delta: float | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    metric: str = "val_p1",
):
    """The sweet spots of `trials` (TrialResults with optimizer, lr, weight_decay in their config) as a
    `SweetSpots` that `sweetspot.analysis.recovery.score` reads.

    Trials and configurations are scored by the analysis's own functions (`compare_at_budget`,
    `config_scores`), so a replay's answer and the truth cannot disagree with `sweetspot analyze`: a
    run that diverged at or before the budget, was stopped as collapsed before it, or had constant
    predictions at every epoch end *failed* (its configuration never qualifies); one that reached the
    budget is scored by trainable/score.py; any other is censored (left out); a configuration is
    mean − std over its scored seeds. Per optimizer the best
    configuration per lr goes to the analysis's `lr_intervals` with score.py's qualification rule;
    verdicts as the analysis gives them (`unknown`: no trial of it reached the budget and some were
    censored). `ranges` clips each optimizer's intervals to its lr range."""
    from sweetspot.analysis.results import Results
    from sweetspot.analysis.sweetspot import (
        CENSORED,
        SweetSpot,
        SweetSpots,
        _profile,
        compare_at_budget,
        config_scores,
        lr_intervals,
    )
    from sweetspot.trainable import score as one_score

    delta = one_score.DEFAULT_DELTA if delta is None else delta
    at = float(budget)
    # the analysis's own rules, on these trials: each trial's score at the budget, then each configuration's
    results = Results(
        folder="",
        metric=metric,
        mode="max",
        trials=list(trials),
        config={"train": {"collapse_entropy_fraction": entropy_fraction}},
        max_epochs=budget,
    )
    comparison = compare_at_budget(results, metric=metric, mode="max", epoch=at)
    scores = comparison.scores
    configs = config_scores(results, comparison, mode="max")
    finite = [c for c in configs if math.isfinite(c.value)]
    best = max(finite, key=lambda c: c.value, default=None)
    level = one_score.level(floor, delta=delta)

    def qualifies(v: float) -> bool:
        return one_score.qualifies(v, floor=floor, delta=delta)

    optimizers = []
    names = sorted({str(t.config["optimizer"]) for t in trials})
    for name in names:
        mine = [c for c in configs if c.optimizer == name]
        found = lr_intervals(_profile(mine, "max"), level=level, mode="max", qualifies=qualifies)
        if ranges and name in ranges:
            found = _clip(found, *ranges[name])
        reached = any(scores[t.trial_id].outcome != CENSORED for t in trials if t.config["optimizer"] == name)
        censored = tuple(t.trial_id for t in trials if t.config["optimizer"] == name and scores[t.trial_id].outcome == CENSORED)
        verdict = "found" if found else "unknown" if censored and not reached else "none"
        own = [c for c in mine if math.isfinite(c.value)]
        optimizers.append(
            SweetSpot(
                optimizer=name,
                intervals=found,
                lrs=tuple(c.lr for c in _profile(mine, "max")),
                best=max(own, key=lambda c: c.value, default=None),
                verdict=verdict,
                censored=censored,
            )
        )
    return SweetSpots(
        metric=metric,
        mode="max",
        delta=delta,
        threshold=level,
        floor=floor,
        best=best,
        comparison=comparison,
        configs=tuple(configs),
        optimizers=tuple(optimizers),
        regions=(),
        rule="trains",
    )


def _clip(intervals, low: float, high: float):
    """`intervals` cut to [low, high] (lr); those wholly outside dropped."""
    out = []
    for i in intervals:
        lo, hi = max(i.lower_lr, low), min(i.upper_lr, high)
        if lo <= hi * (1 + 1e-12):
            out.append(dataclasses.replace(i, lower_lr=lo, upper_lr=hi, width_decades=_x(hi) - _x(lo)))
    return tuple(out)


# --- the fast path: Tune's order of calls without Ray --------------------------------------------


@dataclass
class _Running:
    trial_id: str
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    started: float  # the time (in epochs) it started at
    order: int  # start order, to break ties as Tune's event loop would
    done: int = 0  # rows reported

    @property
    def epoch(self) -> float:
        return float(self.rows[self.done - 1]["epoch"]) if self.done else 0.0


@dataclass(frozen=True)
class Cost:
    """What a replay spent: epochs trained (summed over trials) and evaluation passes (reports)."""

    trial_epochs: float
    eval_passes: int


@contextlib.contextmanager
def _optuna_in_memory():
    """The searchers' Optuna study in memory instead of SQLite (the replay's answer is the same; the
    study's SQL round trips were 90 % of a TPE replay's time)."""
    import optuna

    import sweetspot.search.study as study

    saved = study.StudyStorage
    study.StudyStorage = lambda template: optuna.storages.InMemoryStorage()
    try:
        yield
    finally:
        study.StudyStorage = saved


def simulate(
    table: Table,
    config,
    world: int,
    *,
    workdir: str,
    checkpoints: list[float] = (),
    on_checkpoint: Callable[[float, list], None] | None = None,
):
    """Runs the search of `config` against the table's surrogate in `world`; returns its `Results`
    (trial histories cut where the search stopped them) and its `Cost`. When the trial-epochs spent
    first reach each of `checkpoints`, `on_checkpoint(spent, trials)` gets the trials so far (a
    running one with status `running` and its reports until then)."""
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import Searcher

    from sweetspot import layout
    from sweetspot.analysis.results import Results, TrialResult
    from sweetspot.search.runner import early_collapse_rule, experiment_dir, search_components

    Path(experiment_dir(config)).mkdir(parents=True, exist_ok=True)
    with _optuna_in_memory():
        parts = search_components(config)
    metric, budget = config.search.metric, config.train.epochs
    parts.scheduler.set_search_properties(metric, config.search.mode)  # what TuneConfig tells it in a real search
    searcher = None if parts.grid is not None else parts.searcher
    pending = list(parts.grid) if parts.grid is not None else None
    suggested, running, finished = 0, [], []
    clock, order, spent, passes = 0.0, 0, 0.0, 0
    todo = sorted(checkpoints)
    finished_early: list[bool] = []

    def start(now: float) -> bool:
        nonlocal suggested, order
        if len(running) >= config.search.max_concurrent_trials or suggested >= parts.num_samples or finished_early:
            return False
        trial_id = f"{suggested:05d}"
        if pending is not None:
            trial_config = pending.pop(0)
        else:
            trial_config = searcher.suggest(trial_id)
            if trial_config is None:  # waiting for running trials (a Repeater's group, the edges search)
                return False
            if trial_config == Searcher.FINISHED:  # the searcher is done before num_samples
                finished_early.append(True)
                return False
        trial_config = {**trial_config}
        trial_config.setdefault("seed", config.train.seed)
        suggested += 1
        parts.scheduler.on_trial_add(None, _Trial(trial_id))
        running.append(_Running(trial_id, trial_config, table.lookup(world, trial_config, config), now, order))
        order += 1
        return True

    def record(r: _Running, status: str) -> TrialResult:
        history = [layout.reported(row) for row in r.rows[: r.done]]
        if status == "running":
            return TrialResult(trial_id=r.trial_id, status=status, config=r.config, history=history)
        rec = layout.trial_record(
            trial_id=r.trial_id,
            tune_status=status,
            config=r.config,
            rows=history,
            metric=metric,
            mode=config.search.mode,
            max_epochs=budget,
            collapse_patience=config.search.stop_on_collapse,
            early_collapse=early_collapse_rule(config),
        )
        return TrialResult(trial_id=r.trial_id, status=rec["status"], config=r.config, history=history)

    def complete(r: _Running, result: dict[str, Any]) -> None:
        running.remove(r)
        parts.scheduler.on_trial_complete(None, _Trial(r.trial_id), result)
        if searcher is not None:
            searcher.on_trial_complete(r.trial_id, result)
        finished.append(record(r, "TERMINATED"))

    while True:
        while start(clock):
            pass
        if not running:
            break
        # the next report: the running trial whose next report comes first (ties: started first)
        r = min(running, key=lambda x: (x.started + float(x.rows[x.done]["epoch"]), x.order))
        clock = r.started + float(r.rows[r.done]["epoch"])
        before = r.epoch
        row = {**r.rows[r.done], "training_iteration": r.done + 1, "trial_id": r.trial_id}
        r.done += 1
        spent += r.epoch - before
        passes += 1
        # Tune's order (TuneController._process_trial_result): the stoppers, then the scheduler; the
        # searcher hears the result unless the trial stops; a stopped or finished trial completes.
        if any(stop(r.trial_id, row) for stop in parts.stoppers):
            decision = TrialScheduler.STOP
        else:
            decision = parts.scheduler.on_trial_result(None, _Trial(r.trial_id), row)
        if decision != TrialScheduler.STOP and searcher is not None:
            searcher.on_trial_result(r.trial_id, row)
        if decision == TrialScheduler.STOP or r.done >= len(r.rows):
            complete(r, row)
        while todo and spent >= todo[0] - 1e-9 and on_checkpoint is not None:
            on_checkpoint(todo.pop(0), [*finished, *(record(x, "running") for x in running)])
    results = Results(
        folder=workdir,
        metric=metric,
        mode=config.search.mode,
        trials=sorted(finished, key=lambda t: t.trial_id),
        config=table.doc["config"],
        max_epochs=budget,
    )
    return results, Cost(trial_epochs=spent, eval_passes=passes)


@dataclass(frozen=True)
class _Trial:
    """What Tune's schedulers read of a trial: its id."""

    trial_id: str

    def __hash__(self) -> int:
        return hash(self.trial_id)


# --- the real path: `sweetspot search` with a trainable that replays the surrogate ------------------


def _replay_fn(config: dict[str, Any], *, table: Table, world: int, experiment) -> None:
    """A Tune function trainable that reports the surrogate's rows for its configuration."""
    from ray import tune

    full = {**config}
    full.setdefault("seed", experiment.train.seed)
    for row in table.lookup(world, full, experiment):
        tune.report(dict(row))


def replay_real(table: Table, config, world: int):
    """The same replay through the real search path: the runner's Tuner (searcher, scheduler,
    stoppers, run records), trials reporting the surrogate's rows. Returns (Results, Cost)."""
    from ray import cloudpickle, tune

    from sweetspot.analysis.results import load_results
    from sweetspot.search.runner import build_tuner, experiment_dir

    # This file is no package the trial workers can import: send its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    folder = experiment_dir(config)
    trainable = tune.with_parameters(_replay_fn, table=table, world=world, experiment=config)
    Path(folder).mkdir(parents=True, exist_ok=True)
    build_tuner(config, tune.with_resources(trainable, {"cpu": 0.01}), folder).fit()
    results = load_results(folder)
    # results.trials keeps summary.json's order: Tune's list of trials, in the order they were created
    return results, folder_cost(results)


def folder_cost(results) -> Cost:
    """A results folder's cost: each trial's last reported epoch, and its reports."""
    return Cost(trial_epochs=sum(t.last_epoch for t in results.trials), eval_passes=sum(len(t.history) for t in results.trials))


def trial_sequence(results) -> list[tuple]:
    """What a replay did, trial by trial in start order: optimizer, lr, epochs reported, status."""
    return [(t.config["optimizer"], round(float(t.config["lr"]), 12), len(t.history), t.status) for t in results.trials]


def compare_paths(table: Table, method: str, replay: int, work: str) -> dict[str, Any]:
    """One replay of `method` through both paths, one trial at a time (so both are deterministic)."""
    import ray

    one_at_a_time = {"search.max_concurrent_trials": 1}
    world, shift = world_of(table, replay), shift_of(replay)
    fast_config = table.experiment(method, storage=f"{work}/fast", replay_seed=replay, shift=shift, extra=one_at_a_time)
    real_config = table.experiment(method, storage=f"{work}/real", replay_seed=replay, shift=shift, extra=one_at_a_time)
    fast, fast_cost = simulate(table, fast_config, world, workdir=f"{work}/fast")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    real, real_cost = replay_real(table, real_config, world)
    a, b = score_replay(table, world, fast, fast_cost), score_replay(table, world, real, real_cost)
    return {"fast": trial_sequence(fast), "real": trial_sequence(real), "fast_score": a, "real_score": b}


# --- scoring ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """One replay's answer scored against its world's truth, twin lines left out."""

    found: tuple[bool, ...]  # per line where the truth has a region: the verdicts agree
    none: tuple[bool, ...]  # per line where the truth has none
    edge_errors: tuple[float, ...]
    ious: tuple[float, ...]
    regret: float | None
    trial_epochs: float
    eval_passes: int
    eval_epochs: float

    @property
    def agreement(self) -> float:
        both = self.found + self.none
        return sum(both) / len(both) if both else 1.0


def score_replay(table: Table, world: int, results, cost: Cost) -> Replay:
    """The answer (`spots` of the replay's trials) against the world's truth (`recovery.score`)."""
    return score_against(
        table, table.spots(results.trials), world, cost, eval_test=bool(results.config.get("train", {}).get("eval_test", True))
    )


def regret(table: Table, answer, world: int) -> float | None:
    """(G − v) / G: G the world's truth's best score, v the one score of the world's surrogate at the
    answer's best configuration, read at its own lr (not at the nearest lattice point, which may sit on
    the other side of a collapse); inf when that run diverges or never counts; never below 0 (the
    lattice's best may lie a little under the best between its points); None without a best."""
    from sweetspot.trainable.score import score

    truth = table.truth(world)
    if answer.best is None or truth.best is None:
        return None
    rows = table.answer(answer.best.optimizer, answer.best.lr, world)
    value = score(rows, budget=table.budget, entropy_fraction=table.entropy_fraction).value
    if any(r.get("diverged") and float(r.get("epoch", 0)) <= table.budget for r in rows) or not math.isfinite(value):
        return math.inf
    return max(0.0, (truth.best.value - value) / abs(truth.best.value))


def score_against(table: Table, answer, world: int, cost: Cost, *, eval_test: bool = True) -> Replay:
    """`answer` against table seed `world`'s truth: `recovery.score`'s verdicts and edges, twin lines
    left out, and `regret`."""
    from sweetspot.analysis.recovery import score

    r = score(answer, table.truth(world))
    lines = [o for o in r.optimizers if o.optimizer not in table.twins]
    edges = tuple(e for o in lines for e in (o.lower_error, o.upper_error) if e is not None)
    return Replay(
        found=tuple(o.agree for o in lines if o.truth == "found"),
        none=tuple(o.agree for o in lines if o.truth != "found"),
        edge_errors=edges,
        ious=tuple(o.iou for o in lines if o.iou is not None),
        regret=regret(table, answer, world),
        trial_epochs=cost.trial_epochs,
        eval_passes=cost.eval_passes,
        eval_epochs=table.eval_epochs(cost.eval_passes, eval_test),
    )


def noise_floor(table: Table) -> dict[str, Any]:
    """Seed 0's truth scored as an answer against seed 1's (and the reverse): what no search can beat."""
    out = {}
    for a, b in ((table.seeds[0], table.seeds[-1]), (table.seeds[-1], table.seeds[0])):
        r = score_against(table, table.truth(a), b, Cost(0.0, 0))
        out[f"seed {a} vs seed {b}"] = {**summarise([r], grid=0.0), "trial_epochs": None, "eval_passes": None}
    return out


def _quantile(xs: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of xs; inf counts as the largest value."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))] if xs else None


def _mean(xs) -> float | None:
    xs = list(xs)
    return statistics.fmean(xs) if xs else None


def summarise(replays: list[Replay], *, grid: float) -> dict[str, Any]:
    """Over replays: verdict agreement on the truth's found lines and on its none lines (and both),
    the median and p90 of the edge errors (every edge of every replay), the median IoU, the median and
    p90 regret, and the mean cost (trial-epochs, evaluation passes, and both as a % of `grid`)."""
    edges = [e for r in replays for e in r.edge_errors]
    regrets = [r.regret if r.regret is not None else math.inf for r in replays]
    epochs, evals = _mean(r.trial_epochs for r in replays), _mean(r.eval_epochs for r in replays)
    return {
        "replays": len(replays),
        "agreement_found": _mean(a for r in replays for a in r.found),
        "agreement_none": _mean(a for r in replays for a in r.none),
        "verdict_agreement": _mean(r.agreement for r in replays),
        "edge_error_median": _quantile(edges, 0.5),
        "edge_error_p90": _quantile(edges, 0.9),
        "iou_median": _quantile([i for r in replays for i in r.ious], 0.5),
        "regret_median": _quantile(regrets, 0.5),
        "regret_p90": _quantile(regrets, 0.9),
        "trial_epochs": epochs,
        "eval_passes": _mean(r.eval_passes for r in replays),
        "eval_epochs": evals,
        "cost_pct": 100 * (epochs + evals) / grid if grid and epochs is not None else None,
        "trial_epochs_pct": 100 * epochs / grid if grid and epochs is not None else None,
    }


def run_method(table: Table, method: str, replays: list[tuple[int, float]], *, anytime: bool = False) -> dict[str, Any]:
    """Replays `method` at (replay index, shift) each; its summary, with the anytime curve if asked."""
    finals, curve = [], {}
    points = [ANYTIME_STEP * k for k in range(1, int(table.grid_trial_epochs / ANYTIME_STEP) + 1)] if anytime else []
    for replay, shift in replays:
        world = world_of(table, replay)
        seen: dict[float, Replay] = {}

        def at(spent: float, trials, world=world, seen=seen) -> None:
            done = sum(t.last_epoch for t in trials)
            seen[spent] = score_against(table, table.spots(trials), world, Cost(done, 0))

        with tempfile.TemporaryDirectory() as work:
            config = table.experiment(method, storage=work, replay_seed=replay, shift=shift)
            results, cost = simulate(table, config, world, workdir=work, checkpoints=points, on_checkpoint=at)
        final = score_replay(table, world, results, cost)
        finals.append(final)
        for p in points:  # a search that ended before p answers with its final answer there
            curve.setdefault(p, []).append(seen.get(p, final))
    out = summarise(finals, grid=table.grid_trial_epochs)
    if anytime:
        out["anytime"] = [
            [
                p,
                _quantile([e for r in rs for e in r.edge_errors], 0.5),
                _mean(r.agreement for r in rs),
                _mean(a for r in rs for a in r.found),
            ]
            for p, rs in sorted(curve.items())
            if any(x.trial_epochs >= p - 1e-9 for x in finals)
        ]
    return out


def _truth_summary(truth) -> dict[str, Any]:
    """A truth's sweet spots, per optimizer, for the benchmark's JSON."""
    return {
        s.optimizer: {"verdict": s.verdict, "intervals": [[i.lower_lr, i.upper_lr] for i in s.intervals]}
        for s in truth.optimizers
    }


def _strict(x: Any) -> Any:
    """The report with non-finite floats as strings ("inf"), so the file is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    return x


def _num(x: Any) -> float | None:
    return None if x is None else float(x)  # a string is "inf" read back from the JSON


def _fmt(x: Any, spec: str) -> str:
    x = _num(x)
    if x is None:
        return "–"
    return "inf" if math.isinf(x) else format(x, spec)


# --- the report ------------------------------------------------------------------------------------


def _row(name: str, m: dict[str, Any]) -> str:
    return (
        f"| {name} | {m['replays']} | {_fmt(m['agreement_found'], '.2f')} | {_fmt(m['agreement_none'], '.2f')} "
        f"| {_fmt(m['edge_error_median'], '.2f')} | {_fmt(m['edge_error_p90'], '.2f')} "
        f"| {_fmt(m['regret_median'], '.3f')} | {_fmt(m['regret_p90'], '.3f')} | {_fmt(m['trial_epochs'], '.0f')} "
        f"| {_fmt(m['eval_passes'], '.0f')} | {_fmt(m['cost_pct'], '.0f')}{' %' if m['cost_pct'] is not None else ''} |"
    )


_HEADER = [
    "| method | replays | agreement (found) | agreement (none) | edge error median | edge error p90 | regret median "
    "| regret p90 | trial-epochs | eval passes | cost |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def markdown(report: dict[str, Any]) -> str:
    """The "Sweet-spot recovery" section of docs/benchmarks.md, from the benchmark's JSON."""
    lines = [
        "## Sweet-spot recovery (`bench/replay.py`, replay v2)",
        "",
        "Search methods replayed against a surrogate of each ground-truth table (`bench/tables/`): a trial at any lr",
        "reads its seed's two table runs at the neighbouring table lrs, every report interpolated in log10 lr (the",
        "table's own rows at a table lr). The truth is the same surrogate on a lattice of "
        f"{LATTICE_STEP} decade, per table seed,",
        "scored by trainable/score.py and cut into intervals by the analysis's `lr_intervals`; every answer is",
        "scored the same way (`spots` in bench/replay.py) against its world's truth. Each replay lives in one table",
        "seed (a configuration's extra seed reads the other) and shifts every method's lr range by a uniform offset",
        f"in ±{MAX_SHIFT} decade. Agreement is given apart on the lines where the truth has a region and where it",
        "has none; lines that duplicate another (AdamW at weight decay 0 is Adam, identical rows) count once, as",
        "the first name. Edge errors in decades over every edge of every replay; regret: the truth's best score less the",
        "world's score at the answer's best configuration (its own lr), relative (inf: that run never counts).",
        "Cost: trial-epochs, evaluation passes, and *cost* = (trial-epochs + evaluation passes ×",
        f"(V + T) / N_train × {FORWARD_SHARE:.2f}) as a % of the 2-seed grid's trial-epochs (the grid's own",
        "evaluations not counted): a forward pass over an evaluated document costs about a third of a trained one.",
        "The study's 25-run protocol is the `grid` method at shift 0.",
        "",
    ]
    order = sorted(report, key=lambda n: (report[n].get("role") != "held-out", report[n].get("role") != "tuning", n))
    for name in HELD_OUT_TABLES:
        if name not in report:
            lines += [
                f"### {name} (HELD OUT): not measured yet",
                "",
                f"`bench/tables/{name}.json` is not in this commit (its grid was still running); "
                f"`python bench/replay.py {name}` adds it here.",
                "",
            ]
    for name in order:
        entry = report[name]
        if "methods" not in entry or not entry["methods"]:
            continue
        role = {"held-out": "HELD OUT: no constant was chosen on it", "tuning": "a tuning table"}.get(entry.get("role"), "")
        lines += [f"### {name} ({role}; table at commit {str(entry.get('table_commit'))[:10]})", ""]
        for world, truth in entry.get("truth", {}).items():
            text = ", ".join(
                f"{o} {' ∪ '.join(f'{a:.2g}–{b:.2g}' for a, b in v['intervals']) if v['intervals'] else 'none'}"
                for o, v in truth.items()
            )
            lines.append(f"Truth, seed {world}: {text}.  ")
        if entry.get("twins"):
            lines.append(f"Counted once (rows identical to another line's): {', '.join(entry['twins'])}.  ")
        cost = entry.get("cost_units", {})
        if cost:
            lines.append(
                f"2-seed grid: {cost['grid_trial_epochs']:.0f} trial-epochs; one evaluation pass = "
                f"{cost['eval_pass_epochs']:.3f} epoch ({cost['eval_docs']} evaluated / {cost['train_docs']} "
                "trained documents × the forward share)."
            )
        lines += ["", f"Random shifts (uniform in ±{MAX_SHIFT} decade), replays alternating the table's seeds:", "", *_HEADER]
        for method, m in entry["methods"].items():
            lines.append(_row(method, m))
        if entry.get("study_protocol"):
            lines.append(_row("study protocol (grid, shift 0)", entry["study_protocol"]))
        for label, m in entry.get("noise_floor", {}).items():
            lines.append(_row(f"noise floor: {label}", m))
        robust = entry.get("robustness", {})
        if robust:
            shifts = list(next(iter(robust.values())))
            lines += [
                "",
                "Robustness at fixed shifts (decades): agreement on found lines / on none lines, median edge error.",
                "",
                "| method | " + " | ".join(f"shift {s}" for s in shifts) + " |",
                "|---|" + "---|" * len(shifts),
            ]
            for method, by_shift in robust.items():
                cells = [
                    f"{_fmt(m['agreement_found'], '.2f')} / {_fmt(m['agreement_none'], '.2f')} / "
                    f"{_fmt(m['edge_error_median'], '.2f')}"
                    for m in by_shift.values()
                ]
                lines.append(f"| {method} | " + " | ".join(cells) + " |")
        if entry.get("figure"):
            lines += [
                "",
                f"![anytime curves, {name}]({entry['figure']})",
                "",
                f"Anytime: the median edge error and the verdict agreement of each method's answer after every "
                f"{ANYTIME_STEP:g} trial-epochs (a finished search keeps its answer); the star is the study's "
                "25-run protocol.",
            ]
        real = entry.get("real_path", {})
        if real:
            agree = ", ".join(f"{m} {'agrees' if r['agrees'] else 'DISAGREES'}" for m, r in real.items())
            lines += [
                "",
                f"One replay per method through the real `sweetspot search` path (a Tuner built by the runner, "
                f"trials reporting the surrogate's rows), one trial at a time, against the fast path: {agree}.",
            ]
        for folder, r in entry.get("real_searches", {}).items():
            lines += [
                "",
                f"A real search scored against seed {r['world']}'s truth: `{r['command']}` ({folder}): {r['trials']} "
                f"trials, {r['trial_epochs']:.1f} trial-epochs and {r['eval_passes']} evaluation passes = "
                f"{_fmt(r['cost_pct'], '.0f')} % of the grid's trial-epochs; agreement (found) "
                f"{_fmt(r['agreement_found'], '.2f')}, (none) {_fmt(r['agreement_none'], '.2f')}, regret "
                f"{_fmt(r['regret_median'], '.3f')}, edge errors {', '.join(f'{e:.2f}' for e in r['edge_errors'])}.",
            ]
        lines.append("")
    return "\n".join(lines)


def figure(name: str, entry: dict[str, Any], docs: Path) -> str | None:
    """The anytime figure of one table (docs/benchmarks-recovery-<name>.png); its file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = {m: v["anytime"] for m, v in entry.get("methods", {}).items() if v.get("anytime")}
    if not methods:
        return None
    grid = entry["cost_units"]["grid_trial_epochs"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, curve in methods.items():
        xs = [100 * p / grid for p, *_ in curve]
        ax1.plot(xs, [_num(e) if e is not None else math.nan for _, e, *_ in curve], label=method)
        ax2.plot(xs, [_num(a) for _, _, a, _ in curve], label=method)
    study = entry.get("study_protocol")
    if study:
        x = study["trial_epochs_pct"]
        if study["edge_error_median"] is not None:
            ax1.plot([x], [_num(study["edge_error_median"])], "k*", markersize=12, label="study protocol (25 runs)")
        ax2.plot([x], [_num(study["verdict_agreement"])], "k*", markersize=12, label="study protocol (25 runs)")
    ax1.set(xlabel="trial-epochs spent (% of the 2-seed grid's)", ylabel="median edge error (decades)", title=f"{name}: edges")
    ax2.set(
        xlabel="trial-epochs spent (% of the 2-seed grid's)",
        ylabel="verdict agreement (all counted lines)",
        title=f"{name}: verdicts",
        ylim=(0, 1.05),
    )
    ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    file = FIGURE.format(name=name)
    fig.savefig(docs / file, dpi=90)
    plt.close(fig)
    return file


def write_docs(report: dict[str, Any], out: str) -> None:
    """The docs tables, from the committed figures only (a run with `--out` elsewhere leaves them)."""
    from docsection import write_section  # bench/docsection.py

    if Path(out).resolve() == OUT.resolve():
        write_section("replay", markdown(report))


def score_folder(table: Table, folder: str, *, command: str) -> dict[str, Any]:
    """A real search's results folder scored against the truth of the table seed its first seed ran
    (`train.seed`): the same `spots` and scoring as a replay."""
    from sweetspot.analysis.results import load_results

    results = load_results(folder)
    world = int(results.train_config.seed)
    if world not in table.seeds:
        raise SystemExit(f"{folder}: train.seed {world} is none of the table's seeds {table.seeds}")
    cost = folder_cost(results)
    r = score_against(table, table.spots(results.trials), world, cost, eval_test=bool(results.train_config.eval_test))
    return {
        "command": command,
        "world": world,
        "trials": len(results.trials),
        "eval_passes": cost.eval_passes,
        **summarise([r], grid=table.grid_trial_epochs),
        "edge_errors": list(r.edge_errors),
    }


def measure(table: Table, methods: list[str], *, replays: int, robust: int, anytime: bool) -> dict[str, Any]:
    """The table's entry of the report: truths, noise floor, each method's replays, robustness, anytime."""
    entry: dict[str, Any] = {
        "role": table.role,
        "table_commit": table.doc.get("commit"),
        "twins": list(table.twins),
        "truth": {str(w): _truth_summary(table.truth(w)) for w in table.seeds},
        "cost_units": {
            "grid_trial_epochs": table.grid_trial_epochs,
            "eval_docs": table.eval_docs,
            "train_docs": table.train_docs,
            "eval_pass_epochs": table.eval_epochs(1),
        },
        "noise_floor": noise_floor(table),
        "methods": {},
        "robustness": {},
    }
    for method in methods:
        start = time.time()
        entry["methods"][method] = {
            **run_method(table, method, [(r, shift_of(r)) for r in range(replays)], anytime=anytime),
            "seconds": round(time.time() - start, 1),
        }
        print(f"{table.name} {method}: {_brief(entry['methods'][method])}", flush=True)
        if robust:
            entry["robustness"][method] = {
                f"{s:+.2f}": run_method(table, method, [(r, s) for r in range(robust)]) for s in SHIFTS
            }
    if "grid" in methods:
        entry["study_protocol"] = run_method(table, "grid", [(r, 0.0) for r in range(len(table.seeds))])
    return entry


def _brief(m: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {_fmt(m[k], '.3f')}"
        for k in (
            "agreement_found",
            "agreement_none",
            "edge_error_median",
            "edge_error_p90",
            "regret_median",
            "cost_pct",
            "seconds",
        )
        if k in m
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+")
    parser.add_argument("--replays", type=int, default=30)
    parser.add_argument("--robust-replays", type=int, default=20, help="replays per fixed shift (0: no robustness table)")
    parser.add_argument("--no-anytime", action="store_true", help="no anytime curves (faster)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--real",
        action="store_true",
        help="one replay per method through the real search path, compared with the fast path at one trial at a time",
    )
    parser.add_argument(
        "--score", metavar="FOLDER", help="score a real search's results folder against the (one) table and add it to the report"
    )
    parser.add_argument("--search-command", default="sweetspot search", help="with --score: the command that ran it")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per study created is noise here
    tables = [Table.load(name) for name in args.tables]  # every table first: a missing one stops before any work
    report = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    if args.score:
        if len(tables) != 1:
            raise SystemExit("--score takes exactly one table")
        real = score_folder(tables[0], args.score, command=args.search_command)
        report.setdefault(tables[0].name, {}).setdefault("real_searches", {})[Path(args.score).name] = real
        print(f"{tables[0].name}: {real}")
    elif args.real:
        for table in tables:
            for method in args.methods:
                with tempfile.TemporaryDirectory() as work:
                    both = compare_paths(table, method, 0, work)
                agree = both["fast"] == both["real"] and both["fast_score"] == both["real_score"]
                report.setdefault(table.name, {}).setdefault("real_path", {})[method] = {
                    "agrees": agree,
                    "trials": len(both["real"]),
                }
                print(
                    f"{table.name} {method}: the real search path {'agrees' if agree else 'DISAGREES'} with the fast path "
                    f"({len(both['real'])} trials)",
                    flush=True,
                )
    else:
        for table in tables:
            old = report.get(table.name, {})
            entry = measure(table, args.methods, replays=args.replays, robust=args.robust_replays, anytime=not args.no_anytime)
            entry.update({k: old[k] for k in ("real_path", "real_searches") if k in old})
            if Path(args.out).resolve() == OUT.resolve():
                entry["figure"] = figure(table.name, entry, OUT.parent)
            report[table.name] = entry
    text = json.dumps(_strict(report), indent=1)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)  # never a half-written report
    write_docs(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
