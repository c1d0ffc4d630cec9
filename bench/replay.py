"""Replay search methods against a ground-truth table: how well, and at what cost, does each one
recover the table's sweet spots? (A tabular benchmark in the manner of Syne Tune's simulator backend
over its blackbox repository, NAS-Bench-201 or LCBench: the expensive trials ran once, in
bench/ground_truth.py; a replay looks their results up.)

    python bench/replay.py go_emotions reuters_all [--replays 30] [--methods grid tpe-asha ...]
    python bench/replay.py go_emotions --real        # one replay per method through `sweetspot search`

A replayed trial returns the table's recorded epochs for the configuration drawn:
- lr -> the table's nearest lr in log10 (ties to the lower one); the same rule for every method;
- seed -> the table's seeds hold the run-to-run noise: a trial draws one of them, from a hash of the
  replay's seed and its configuration (so both replay paths below draw the same one).
The search itself is sweetspot's own: the experiment config of each method (METHODS) goes through
`sweetspot.search.runner.search_components`, which builds the searcher, the scheduler and the
stoppers that a real search uses. Cost is counted in trial-epochs, not seconds.

Two paths drive those components:
- `simulate`: a discrete-event loop with no Ray (Tune's order of calls, one time unit per epoch);
  fast enough for 30+ replays per method.
- `replay_real`: the real `sweetspot search` path (a Ray Tune Tuner built by the runner, records and
  all) with a trainable that reports the table's rows instead of training.
With one trial at a time both are deterministic and must agree trial for trial (tested).

Every replay's answer is the analysis's own sweet spots of its trials, scored against the sweet
spots of the whole table by `sweetspot.analysis.recovery.score`. Results: docs/benchmarks-recovery.json
and the "Sweet-spot recovery" tables of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO / "bench" / "tables"
OUT = REPO / "docs" / "benchmarks-recovery.json"

# Each method is a set of `--set` overrides of the table's own experiment (its data, model, budget).
STUDY_FACTORS = [10.0, 1.0, 0.1, 0.01, 0.001]
METHODS: dict[str, dict[str, Any]] = {
    # the study's protocol: 5 optimizers x default lr x [10 .. 0.001], every trial to the budget
    "grid": {"search.algorithm": "grid", "search.seeds": 1, "search.space.lr_factor": STUDY_FACTORS,
             "search.scheduler.name": "fifo"},
    "random-asha": {"search.algorithm": "random", "search.num_samples": 25, "search.scheduler.name": "asha"},
    "tpe-asha": {"search.algorithm": "tpe", "search.num_samples": 25, "search.scheduler.name": "asha"},
    "tpe-asha-collapse": {"search.algorithm": "tpe", "search.num_samples": 25, "search.scheduler.name": "asha",
                          "search.stop_on_collapse": 2},
    # the early collapse stop decides within epoch 1 from evaluations every third of an epoch
    "tpe-asha-early": {"search.algorithm": "tpe", "search.num_samples": 25, "search.scheduler.name": "asha",
                       "search.stop_early_collapse": True, "train.eval_every_steps": 50},
    # the region search (search/edges.py), alone and with the early collapse stop
    "edges": {"search.algorithm": "edges", "search.num_samples": 60, "search.scheduler.name": "fifo"},
    "edges-early": {"search.algorithm": "edges", "search.num_samples": 60, "search.scheduler.name": "fifo",
                    "search.stop_early_collapse": True, "train.eval_every_steps": 50},
}
SAMPLED_RANGE = {"low": 0.001, "high": 10.0}  # the study's range of lr factors, for the sampling methods
COMMON = {"search.seeds": 1, "search.max_concurrent_trials": 2, "search.stop_on_diverged": True, "search.scheduler.grace_period": 1,
          "search.scheduler.reduction_factor": 2, "search.space.weight_decay": [0.0]}


# --- the table ----------------------------------------------------------------------------------

class Table:
    """A ground-truth table (bench/tables/<name>.json) indexed for lookups."""

    def __init__(self, doc: dict[str, Any]):
        from sweetspot.analysis.results import results_from_table

        self.doc = doc
        self.results = results_from_table(doc)
        self.rows: dict[tuple[str, float, int], list[dict[str, Any]]] = {}
        for trial in self.results.trials:
            params = self.results.params(trial)
            self.rows[(params["optimizer"], float(params["lr"]), int(params["seed"]))] = trial.history
        self.lrs = {opt: sorted({lr for o, lr, _ in self.rows if o == opt}) for opt, _, _ in self.rows}
        self.seeds = sorted({s for _, _, s in self.rows})
        self.budget = int(self.results.max_epochs)

    def truth(self, rule: str = "trains"):
        """The table's sweet spots read as the replayed methods report: at epoch ends."""
        from sweetspot.analysis.sweetspot import find_sweet_spots

        return find_sweet_spots(at_epoch_ends(self.results), rule=rule)

    @classmethod
    def load(cls, name: str) -> "Table":
        return cls(json.loads((TABLES / f"{name}.json").read_text()))

    def nearest_lr(self, optimizer: str, lr: float) -> float:
        """The table's lr nearest to `lr` in log10 (ties to the lower)."""
        return min(self.lrs[optimizer], key=lambda x: (abs(math.log10(x) - math.log10(lr)), x))

    def seed_for(self, replay_seed: int, config: dict[str, Any]) -> int:
        """The table seed a trial draws: a stable hash of the replay's seed and the configuration,
        offset by the trial's own seed (so a configuration's second seed reads the other table seed)."""
        key = json.dumps([replay_seed, config["optimizer"], f"{float(config['lr']):.12g}",
                          f"{float(config.get('weight_decay', 0.0)):.12g}"])
        drawn = int(hashlib.sha256(key.encode()).hexdigest(), 16) + int(config.get("seed", 0))
        return self.seeds[drawn % len(self.seeds)]

    def lookup(self, replay_seed: int, config: dict[str, Any], experiment=None) -> list[dict[str, Any]]:
        """The reports of the table's trial nearest to `config`, as `experiment` would make them:
        the epoch ends only, unless it evaluates every `train.eval_every_steps` steps too."""
        seed = self.seed_for(replay_seed, config)
        rows = self.rows[(config["optimizer"], self.nearest_lr(config["optimizer"], float(config["lr"])), seed)]
        if experiment is None or experiment.train.eval_every_steps is None:
            rows = epoch_ends(rows)
        return rows

    def experiment(self, method: str, *, storage: str, replay_seed: int, extra: dict[str, Any] | None = None):
        """The method's experiment config: the table's own, with the method's overrides."""
        from sweetspot.search.config import load_experiment_dict

        raw = json.loads(json.dumps(self.doc["config"]))  # a deep copy
        raw.pop("prepared_path", None)
        sampled = {"search.space.lr_factor": SAMPLED_RANGE} if METHODS[method]["search.algorithm"] != "grid" else {}
        for dotted, value in {**COMMON, **sampled, "train.eval_every_steps": None, **METHODS[method],
                              "search.seed": replay_seed, "storage_path": storage, "name": f"replay-{method}-{replay_seed}",
                              **(extra or {})}.items():
            node = raw
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        return load_experiment_dict(raw)


def epoch_ends(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reports at whole epochs (what a search without `train.eval_every_steps` sees)."""
    return [r for r in rows if float(r.get("epoch", 0)).is_integer() or r.get("diverged")]


def at_epoch_ends(results):
    """`results` with every trial's history cut to its epoch ends."""
    return dataclasses.replace(results, trials=[dataclasses.replace(t, history=epoch_ends(t.history)) for t in results.trials])


# --- the fast path: Tune's order of calls without Ray --------------------------------------------

@dataclass
class _Running:
    trial_id: str
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    started: int  # time unit (epoch) it started at
    order: int  # start order, to break ties as Tune's event loop would
    done: int = 0  # epochs reported


def simulate(table: Table, config, replay_seed: int, *, workdir: str):
    """Runs the search of `config` against the table; returns its `Results` (trial histories cut
    where the search stopped them) and the trial-epochs it used."""
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import Searcher

    from sweetspot import layout
    from sweetspot.analysis.results import Results, TrialResult
    from sweetspot.search.runner import early_collapse_rule, experiment_dir, search_components

    Path(experiment_dir(config)).mkdir(parents=True, exist_ok=True)  # where the Optuna study lives
    parts = search_components(config)
    metric, budget = config.search.metric, config.train.epochs
    parts.scheduler.set_search_properties(metric, config.search.mode)  # what TuneConfig tells it in a real search
    searcher = None if parts.grid is not None else parts.searcher
    pending = list(parts.grid) if parts.grid is not None else None
    suggested, running, finished = 0, [], []
    clock, order, used = 0, 0, 0

    finished_early: list[bool] = []

    def start(now: int) -> bool:
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
        running.append(_Running(trial_id, trial_config, table.lookup(replay_seed, trial_config, config), now, order))
        order += 1
        return True

    def complete(r: _Running, result: dict[str, Any]) -> None:
        running.remove(r)
        parts.scheduler.on_trial_complete(None, _Trial(r.trial_id), result)
        if searcher is not None:
            searcher.on_trial_complete(r.trial_id, result)
        history = [layout.reported(row) for row in r.rows[: r.done]]
        record = layout.trial_record(trial_id=r.trial_id, tune_status="TERMINATED", config=r.config, rows=history,
                                     metric=metric, mode=config.search.mode, max_epochs=budget,
                                     collapse_patience=config.search.stop_on_collapse,
                                     early_collapse=early_collapse_rule(config))
        finished.append(TrialResult(trial_id=r.trial_id, status=record["status"], config=r.config, history=history))

    while True:
        while start(clock):
            pass
        if not running:
            break
        # the next report: the running trial whose next epoch ends first (ties: started first)
        r = min(running, key=lambda x: (x.started + x.done + 1, x.order))
        clock = r.started + r.done + 1
        row = {**r.rows[r.done], "training_iteration": r.done + 1, "trial_id": r.trial_id}
        r.done += 1
        used += 1
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
    results = Results(folder=workdir, metric=metric, mode=config.search.mode,
                      trials=sorted(finished, key=lambda t: t.trial_id), config=table.doc["config"],
                      max_epochs=budget)
    return results, used


@dataclass(frozen=True)
class _Trial:
    """What Tune's schedulers read of a trial: its id."""

    trial_id: str

    def __hash__(self) -> int:
        return hash(self.trial_id)


# --- the real path: `sweetspot search` with a trainable that replays the table ---------------------

def _replay_fn(config: dict[str, Any], *, rows_by_key: dict[str, list[dict[str, Any]]], replay_seed: int,
               table_lrs: dict[str, list[float]], seeds: list[int], experiment) -> None:
    """A Tune function trainable that reports the table's rows for its configuration."""
    from ray import tune

    table = Table.__new__(Table)  # the lookup needs only these three fields
    table.lrs, table.seeds = table_lrs, seeds
    table.rows = {tuple(json.loads(k)): v for k, v in rows_by_key.items()}
    full = {**config}
    full.setdefault("seed", experiment.train.seed)
    for row in table.lookup(replay_seed, full, experiment):
        tune.report(dict(row))


def replay_real(table: Table, config, replay_seed: int):
    """The same replay through the real search path: the runner's Tuner (searcher, scheduler,
    stoppers, run records), trials reporting the table's rows. Returns (Results, trial-epochs)."""
    from ray import tune

    from sweetspot.analysis.results import load_results
    from sweetspot.search.runner import build_tuner, experiment_dir

    from ray import cloudpickle

    # This file is no package the trial workers can import: send its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    folder = experiment_dir(config)
    rows_by_key = {json.dumps(list(k)): v for k, v in table.rows.items()}
    trainable = tune.with_parameters(_replay_fn, rows_by_key=rows_by_key, replay_seed=replay_seed,
                                     table_lrs=table.lrs, seeds=table.seeds, experiment=config)
    Path(folder).mkdir(parents=True, exist_ok=True)
    build_tuner(config, tune.with_resources(trainable, {"cpu": 0.01}), folder).fit()
    results = load_results(folder)
    # results.trials keeps summary.json's order: Tune's list of trials, in the order they were created
    return results, sum(len(t.history) for t in results.trials)


def trial_sequence(results) -> list[tuple]:
    """What a replay did, trial by trial in start order: optimizer, lr, epochs reported, status."""
    return [(t.config["optimizer"], round(float(t.config["lr"]), 12), len(t.history), t.status) for t in results.trials]


def compare_paths(table: Table, method: str, replay_seed: int, work: str) -> dict[str, Any]:
    """One replay of `method` through both paths, one trial at a time (so both are deterministic)."""
    import ray

    one_at_a_time = {"search.max_concurrent_trials": 1}
    fast_config = table.experiment(method, storage=f"{work}/fast", replay_seed=replay_seed, extra=one_at_a_time)
    real_config = table.experiment(method, storage=f"{work}/real", replay_seed=replay_seed, extra=one_at_a_time)
    fast, _ = simulate(table, fast_config, replay_seed, workdir=f"{work}/fast")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    real, _ = replay_real(table, real_config, replay_seed)
    truth = table.truth()
    a, b = score_replay(truth, fast), score_replay(truth, real)
    return {"fast": trial_sequence(fast), "real": trial_sequence(real), "fast_score": summarise([a]),
            "real_score": summarise([b])}


# --- scoring ---------------------------------------------------------------------------------------

def score_replay(truth, results):
    """The replay's answer (the analysis's own sweet spots of its trials) scored against the truth.

    Both are read at epoch ends: a method that evaluates mid-epoch (the early collapse stop's
    signals) would otherwise score its trials by a best over more evaluations than the truth's, and
    disagree with it where a mid-epoch peak crosses the level. Its cost counts every epoch it ran."""
    from sweetspot.analysis.recovery import score
    from sweetspot.analysis.sweetspot import find_sweet_spots

    r = score(find_sweet_spots(at_epoch_ends(results), rule=truth.rule), truth)
    ran = find_sweet_spots(results, rule=truth.rule).comparison.scores.values()
    return dataclasses.replace(r, trial_epochs=sum(s.last_epoch for s in ran))


def _quantile(xs: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of xs; inf counts as the largest value."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))] if xs else None


def summarise(recoveries: list) -> dict[str, Any]:
    """Over replays: the median and 90th percentile of the edge errors (every edge of every replay), the
    mean verdict agreement, the median IoU (per optimizer where either found a sweet spot), the median
    and 90th percentile of the regret, and the mean trial-epochs fraction."""
    edges = [e for r in recoveries for e in r.edge_errors]
    ious = [o.iou for r in recoveries for o in r.optimizers if o.iou is not None]
    regrets = [r.regret if r.regret is not None else math.inf for r in recoveries]
    return {
        "replays": len(recoveries),
        "edge_error_median": _quantile(edges, 0.5), "edge_error_p90": _quantile(edges, 0.9),
        "verdict_agreement": statistics.fmean(r.agreement for r in recoveries),
        "iou_median": _quantile(ious, 0.5),
        "regret_median": _quantile(regrets, 0.5), "regret_p90": _quantile(regrets, 0.9),
        "trial_epochs_fraction": statistics.fmean(r.trial_epochs_fraction for r in recoveries),
    }


def _truth_summary(truth) -> dict[str, Any]:
    """The table's sweet spots, per optimizer, for the benchmark's JSON."""
    return {s.optimizer: {"verdict": s.verdict, "intervals": [[i.lower_lr, i.upper_lr] for i in s.intervals]}
            for s in truth.optimizers}


def _json_default(x):
    return str(x)


def _strict(x: Any) -> Any:
    """The report with non-finite floats as strings ("inf"), so the file is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    return x


def _fmt(x: Any, spec: str) -> str:
    if x is None:
        return "–"
    return str(x) if isinstance(x, str) or math.isinf(x) else format(x, spec)


def markdown(report: dict[str, Any]) -> str:
    """The "Sweet-spot recovery" section of docs/benchmarks.md, from the benchmark's JSON."""
    lines = ["## Sweet-spot recovery (`bench/replay.py`)", "",
             "Search methods replayed against the ground-truth tables (`bench/tables/`, from `bench/ground_truth.py`):",
             "each replayed trial returns the table's recorded epochs for the nearest table lr (in log10) and a seed",
             "drawn per configuration; the answer is the analysis's own sweet spots (`trains` rule) of the replay's",
             "trials, scored against the table's by `sweetspot.analysis.recovery.score`. Edge errors in decades over",
             "every edge of every replay; IoU in log10 lr; regret relative to the table's best configuration;",
             "trial-epochs as a fraction of the full grid's (5 optimizers × 9 lrs × 2 seeds × 3 epochs).", ""]
    for name, entry in report.items():
        truth = ", ".join(f"{o} {'–'.join(f'{lo:.2g}' for lo in v['intervals'][0]) if v['intervals'] else v['verdict']}"
                          for o, v in entry.get("truth", {}).items())
        lines += [f"### {name} (table at commit {str(entry.get('table_commit'))[:10]})", "", f"Truth: {truth}.", "",
                  "| method | replays | edge error median | edge error p90 | verdict agreement | IoU median | regret median | regret p90 | trial-epochs | s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for method, m in entry.get("methods", {}).items():
            lines.append(f"| {method} | {m['replays']} | {_fmt(m['edge_error_median'], '.2f')} | {_fmt(m['edge_error_p90'], '.2f')} "
                         f"| {_fmt(m['verdict_agreement'], '.2f')} | {_fmt(m['iou_median'], '.2f')} "
                         f"| {_fmt(m['regret_median'], '.3f')} | {_fmt(m['regret_p90'], '.3f')} "
                         f"| {_fmt(m['trial_epochs_fraction'], '.2f')} | {m['seconds']:.0f} |")
        real = entry.get("real_path", {})
        if real:
            agree = ", ".join(f"{m} {'agrees' if r['agrees'] else 'DISAGREES'}" for m, r in real.items())
            lines += ["", f"One replay per method through the real `sweetspot search` path (a Tuner built by the runner, "
                          f"trials reporting the table's rows), one trial at a time, against the fast path: {agree}."]
        lines.append("")
    for name, entry in report.items():
        for folder, real in entry.get("real_searches", {}).items():
            lines += [f"### A real search on {name}: `{real['command']}`", "",
                      f"Scored against the {name} table: {real['trials']} trials, trial-epochs "
                      f"{real['trial_epochs']:.1f} = {real['trial_epochs_fraction']:.0%} of the grid's, wall "
                      f"{real['wall_s'] / 60:.1f} min; verdict agreement {real['verdict_agreement']:.2f}, regret "
                      f"{_fmt(real['regret'], '.3f')}, edge errors (decades) "
                      f"{', '.join(f'{e:.3f}' for e in real['edge_errors'])}.", ""]
    return "\n".join(lines)


def write_docs(report: dict[str, Any], out: str) -> None:
    """The docs tables, from the committed figures only (a run with `--out` elsewhere leaves them)."""
    from docsection import write_section  # bench/docsection.py

    if Path(out).resolve() == OUT.resolve():
        write_section("replay", markdown(report))


def score_folder(table: Table, folder: str, *, command: str, wall_s: float) -> dict[str, Any]:
    """A real search's results folder scored against the table (all its reports: a real search with
    train.eval_every_steps reports mid-epoch too, as the grid did)."""
    from sweetspot.analysis.recovery import score
    from sweetspot.analysis.results import load_results
    from sweetspot.analysis.sweetspot import find_sweet_spots

    results = load_results(folder)
    r = score(find_sweet_spots(results), find_sweet_spots(table.results))
    return {"command": command, "wall_s": wall_s,
            "trials": len(results.trials), "trial_epochs": r.trial_epochs, "trial_epochs_fraction": r.trial_epochs_fraction,
            "verdict_agreement": r.agreement, "regret": r.regret, "edge_errors": list(r.edge_errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+")
    parser.add_argument("--replays", type=int, default=30)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--real", action="store_true", help="one replay per method through the real search path, "
                                                             "compared with the fast path at one trial at a time")
    parser.add_argument("--score", metavar="FOLDER", help="score a real search's results folder against the (one) table "
                                                           "and add it to the report")
    parser.add_argument("--search-command", default="sweetspot search", help="with --score: the command that ran it")
    parser.add_argument("--wall-s", type=float, default=math.nan, help="with --score: its wall time, as it measured it")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per study created is noise here

    report = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    if args.score:
        (name,) = args.tables
        real = score_folder(Table.load(name), args.score, command=args.search_command, wall_s=args.wall_s)
        report.setdefault(name, {"methods": {}}).setdefault("real_searches", {})[Path(args.score).name] = real
        print(f"{name}: {real}")
        Path(args.out).write_text(json.dumps(_strict(report), indent=1, default=_json_default))
        write_docs(json.loads(Path(args.out).read_text()), args.out)
        return
    if args.real:
        for name in args.tables:
            table = Table.load(name)
            for method in args.methods:
                with tempfile.TemporaryDirectory() as work:
                    both = compare_paths(table, method, 0, work)
                agree = both["fast"] == both["real"] and both["fast_score"] == both["real_score"]
                report.setdefault(name, {"methods": {}}).setdefault("real_path", {})[method] = {
                    "agrees": agree, "trials": len(both["real"]), "score": both["real_score"]}
                print(f"{name} {method}: the real search path {'agrees' if agree else 'DISAGREES'} with the fast path "
                      f"({len(both['real'])} trials)", flush=True)
        Path(args.out).write_text(json.dumps(_strict(report), indent=1, default=_json_default))
        write_docs(json.loads(Path(args.out).read_text()), args.out)
        return
    for name in args.tables:
        table = Table.load(name)
        truth = table.truth()
        entry = report.setdefault(name, {"methods": {}})
        entry.update(table_commit=table.doc.get("commit"), truth=_truth_summary(truth))
        for method in args.methods:
            start = time.time()
            recoveries = []
            for seed in range(args.replays):
                with tempfile.TemporaryDirectory() as work:
                    config = table.experiment(method, storage=work, replay_seed=seed)
                    results, _ = simulate(table, config, seed, workdir=work)
                    recoveries.append(score_replay(truth, results))
            entry["methods"][method] = {**summarise(recoveries), "seconds": round(time.time() - start, 1)}
            print(f"{name} {method}: {entry['methods'][method]}", flush=True)
    Path(args.out).write_text(json.dumps(_strict(report), indent=1, default=_json_default))
    write_docs(json.loads(Path(args.out).read_text()), args.out)


if __name__ == "__main__":
    sys.exit(main())
