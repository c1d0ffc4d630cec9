"""sweetspot's own console for a search: the plan before Ray starts, one line per finished trial with
its verdict and score, a progress line with an ETA, and (from the command line) the answer at the end
(sweetspot/cli.py).

Tune's own output (status tables, per-trial result boxes, its "Current best trial" line, which ranks
by the last report rather than by the score) is silenced unless `--verbose`. The verdict and the score
come from the one definition each: `sweetspot.layout.trial_record` (how a trial ended) and
`sweetspot.trainable.score` (its score at the budget and whether it qualifies).

On a terminal the progress is one bar redrawn in place; written to a file or a pipe it is a plain line
after each finished trial, and no escape sequence is ever written there.

Example (the plan is pure Python, no Ray):
    >>> from sweetspot.search.config import load_experiment_dict
    >>> c = load_experiment_dict({"search": {"algorithm": "edges", "num_samples": 12, "scheduler": {"name": "fifo"},
    ...                                      "space": {"optimizer": ["adam"]}}})
    >>> trial_cap(c), c.train.epochs * trial_cap(c)
    (12, 36)
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from sweetspot.search.config import ExperimentConfig, Range
from sweetspot.trainable import keys
from sweetspot.trainable.collapse import WINDOW_FRACTION

# What `--verbose` keeps and the quiet console turns off. Tune forces a snapshot of the experiment
# whenever a trial has written `num_to_keep` checkpoints since the last one (so that a resume never
# points at a deleted checkpoint); a trial that checkpoints at every report sets that off several
# times a minute, and Tune warns each time. The snapshot is what keeps resuming correct, so the
# warning, not the snapshot, is turned off.
# Tune's newer output engine prints its experiment box and a TensorBoard hint whatever the verbosity;
# the older one at verbosity 0 prints nothing.
QUIET_ENV = {
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
}
QUIET_LOGGERS = {
    "ray": logging.WARNING,
    "ray.tune": logging.ERROR,
    "ray.data": logging.ERROR,
    "ray.train": logging.ERROR,
    "mlflow": logging.WARNING,
    "alembic": logging.WARNING,
}

# A rough rate for the plan's estimate: all-MiniLM-L6-v2 training on CPU at 64 tokens a document
# (docs/benchmarks.md, the loop benchmark: 86.5 docs/s on 2 threads), per core, and the fixed start of a trial.
DOCS_PER_CORE_S = {"minilm-l6": 43.0}
TRIAL_START_S = 6.4
RATE_TOKENS = 64


def trial_cap(config: ExperimentConfig) -> int:
    """The most trials the search can run: a grid's size; `edges` stops at `num_samples` at the latest;
    `tpe`/`random` run `num_samples` configurations × `seeds`."""
    search = config.search
    if search.algorithm == "grid":
        from sweetspot.search.space import grid

        return len(grid(search.space, seeds=search.seeds, first_seed=config.train.seed))
    if search.algorithm == "edges":
        return search.num_samples
    return search.num_samples * search.seeds


def concurrency(config: ExperimentConfig, cpus: float | None = None) -> int:
    """Trials running at once: `max_concurrent_trials`, and no more than the CPUs hold (a local run)."""
    at_once = config.search.max_concurrent_trials if config.search.algorithm != "grid" else trial_cap(config)
    if cpus and config.resources.gpus_per_trial == 0:
        at_once = min(at_once, max(1, int(cpus // config.resources.cpus_per_trial)))
    return max(1, min(at_once, trial_cap(config)))


def _range(value: Any) -> str:
    if isinstance(value, Range):
        return f"{value.low:g}..{value.high:g}"
    if isinstance(value, tuple):
        return ", ".join(f"{v:g}" for v in value)
    return f"{value:g}"


def _n(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def estimate_s(config: ExperimentConfig, manifest: dict[str, Any] | None, *, cpus: float | None = None) -> float | None:
    """The worst case (every trial runs the whole budget) in wall seconds on this machine's CPUs, for the
    models with a measured rate; `None` otherwise (GPU trials, other models, no manifest)."""
    rate = DOCS_PER_CORE_S.get(config.model.name)
    if rate is None or manifest is None or config.resources.gpus_per_trial > 0:
        return None
    splits = manifest["splits"]
    docs = splits["train"]["rows"] + splits["validation"]["rows"]  # an epoch trains, then evaluates
    tokens = min(config.data.max_len, splits["train"].get("length_p90", config.data.max_len) or config.data.max_len)
    per_epoch = docs / (rate * config.resources.cpus_per_trial) * max(0.25, tokens / RATE_TOKENS)
    trials = trial_cap(config)
    return math.ceil(trials / concurrency(config, cpus)) * (config.train.epochs * per_epoch + TRIAL_START_S)


def plan_lines(
    config: ExperimentConfig, *, folder: str, manifest: dict[str, Any] | None = None, cpus: float | None = None
) -> list[str]:
    """What the search will do, before Ray starts: data, model, search, stops and an estimate."""
    search, train, space = config.search, config.train, config.search.space
    lines = [f"sweetspot search: {config.name} -> {folder}"]
    if manifest is not None:
        s = manifest["splits"]
        sizes = " / ".join(f"{s[k]['rows']:,} {k}" for k in ("train", "validation", "test") if k in s)
        floor = s["validation"].get("majority_p1")
        lines.append(
            f"  data    {config.data.source}: {sizes} documents, {manifest['stats']['num_labels']:,} labels, "
            f"max_len {config.data.max_len}" + (f", majority-label P@1 {floor:.3f}" if floor is not None else "")
        )
    else:
        lines.append(f"  data    {config.data.source}, max_len {config.data.max_len} (sizes once prepared)")
    every = f", evaluated every {train.eval_every_steps} steps" if train.eval_every_steps else ""
    lines.append(f"  model   {config.model.name}: {_n(train.epochs, 'epoch')}, batch {train.batch_size}{every}")
    lr = f"lr {_range(space.lr)}" if space.lr is not None else f"lr = default x {_range(space.lr_factor)}"
    what = f"{', '.join(space.optimizer)}; {lr}; weight decay {_range(space.weight_decay)}"
    cap, at_once = trial_cap(config), concurrency(config, cpus)
    bound = {"edges": "at most ", "grid": ""}.get(search.algorithm, "")
    lines.append(f"  search  {search.algorithm} over {what}")
    lines.append(
        f"  trials  {bound}{cap} x {_n(train.epochs, 'epoch')} = {bound}{cap * train.epochs} trial-epochs, "
        f"{at_once} at a time ({config.resources.cpus_per_trial:g} CPU"
        + (f", {config.resources.gpus_per_trial:g} GPU" if config.resources.gpus_per_trial else "")
        + " each)"
    )
    stops = [
        name
        for on, name in (
            (search.stop_early_collapse, f"early collapse (within the first {WINDOW_FRACTION * train.epochs:g} epochs)"),
            (search.stop_on_collapse, f"collapse ({search.stop_on_collapse} epochs)"),
            (search.stop_on_diverged, "divergence"),
            (search.scheduler.name == "asha", "ASHA"),
        )
        if on
    ]
    lines.append(f"  stops   {', '.join(stops) or 'none: every trial runs the budget'}")
    est = estimate_s(config, manifest, cpus=cpus)
    lines.append(
        f"  time    at most ~{_duration(est)} if no trial stops early, at {config.model.name}'s rate on an idle CPU "
        "(busy: longer)"
        if est is not None
        else "  time    no estimate for this model/device; the ETA follows the first finished trials"
    )
    return lines


def verdict(
    record: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    budget: int,
    metric: str = keys.VAL_P1,
    mode: str = "max",
    margin: float,
    label_names: dict[int, str] | None = None,
) -> tuple[str, float]:
    """A finished trial's verdict in words and its score (`trainable.score.score`; NaN when none):
    `trains` / `fails` (the qualification rule on the majority-label floor + `margin`), `collapsed onto X`,
    `diverged`, `stopped early by ASHA`, `errored: …`."""
    from sweetspot.trainable.score import DEFAULT_DELTA, qualifies, score

    s = score(rows, budget=budget, metric=metric, mode=mode)
    status = record["status"]
    last = rows[-1] if rows else {}
    at = f" at epoch {last.get(keys.EPOCH, 0):.2g}"
    if status == "errored":
        return f"errored: {record.get('error') or 'unknown error'}", s.value
    if status == "diverged":
        return f"diverged{at} (loss NaN/inf)", s.value
    if status == "collapsed":
        onto = _onto(last, label_names)
        why = (record.get("error") or "").removeprefix("stopped early: ").removeprefix("stopped: ")
        if "too slow" in why:
            return f"fails: stopped{at}, too slow to leave the floor in {budget} epochs", s.value
        return f"collapsed {onto}: stopped{at}".replace("  ", " "), s.value
    floor = last.get(keys.MAJORITY_P1)
    trains = mode == "max" and floor is not None and qualifies(s.value, floor=floor + margin, delta=DEFAULT_DELTA)
    if status == "terminated" and not trains and last.get(keys.COLLAPSED):
        return f"collapsed {_onto(last, label_names)} (ran the budget)".replace("  ", " "), s.value
    if status == "early_stopped":
        return f"stopped early by the scheduler{at}" + (" (trains)" if trains else ""), s.value
    if status == "interrupted":
        return f"interrupted{at}", s.value
    if mode != "max" or floor is None:
        return "finished", s.value
    return ("trains" if trains else "fails"), s.value


def _onto(row: dict[str, Any], label_names: dict[int, str] | None) -> str:
    """ "onto neutral" (the label a collapsed run predicts for every document), or "" when not reported."""
    label = row.get(keys.VAL_TOP_LABEL)
    if not (isinstance(label, (int, float)) and math.isfinite(label)):
        return ""
    name = (label_names or {}).get(int(label))
    return f"onto {name}" if name else f"onto label {int(label)}"


def _config_text(config: dict[str, Any]) -> str:
    parts = [f"{config.get('optimizer', '?'):<9}"]
    if "lr" in config:
        parts.append(f"lr {float(config['lr']):.1e}")
    if config.get("weight_decay"):
        parts.append(f"wd {float(config['weight_decay']):g}")
    return " ".join(parts)


@dataclass
class Progress:
    """Trials done of the cap, and an ETA from the finished ones (pure: the callback feeds it)."""

    cap: int
    budget: int
    at_once: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    running: int = 0
    durations: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)

    def eta_s(self, now: float | None = None) -> tuple[float, float] | None:
        """(expected, worst case) seconds left: the mean finished trial for the trials left, and the worst
        case where every trial left runs the whole budget; `None` before the first trial finishes."""
        if not self.durations:
            return None
        left = max(0, self.cap - self.done)
        waves = math.ceil(left / max(1, self.at_once))
        mean = sum(self.durations) / len(self.durations)
        per_epoch = sum(self.durations) / max(1e-9, sum(self.epochs))
        return waves * mean, waves * per_epoch * self.budget

    def text(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        eta = self.eta_s(now)
        left = (
            "ETA after the first trial"
            if eta is None
            else ("done" if self.done >= self.cap else f"ETA ~{_duration(eta[0])} (at most ~{_duration(max(eta))})")
        )
        return f"{self.done}/{self.cap} trials done, {self.running} running, {_duration(now - self.started)} elapsed, {left}"


class Console:
    """Where the search's console goes, and how: `verbose` hands the console back to Tune."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False, tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.tty = self.stream.isatty() if tty is None else tty
        self._bar = ""
        self.last_line = time.monotonic()  # when the last whole line was written

    def quiet_ray(self) -> None:
        """Before Ray and Tune start: their warnings and INFO lines off (unless verbose)."""
        if self.verbose:
            return
        for k, v in QUIET_ENV.items():
            os.environ.setdefault(k, v)
        for name, level in QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(level)

    @property
    def tune_verbosity(self) -> int | None:
        return None if self.verbose else 0

    def print(self, line: str) -> None:
        if self.tty and self._bar:
            self.stream.write("\r\x1b[K")
        self.stream.write(line + "\n")
        self.last_line = time.monotonic()
        if self.tty and self._bar:
            self.stream.write(self._bar)
        self.stream.flush()

    def progress(self, progress: Progress, *, finished: bool) -> None:
        """On a terminal: redraw the bar in place. In a file: a plain line, only when a trial finished."""
        text = progress.text()
        if self.tty:
            width = 24
            filled = round(width * min(1.0, progress.done / max(1, progress.cap)))
            self._bar = f"[{'#' * filled}{'.' * (width - filled)}] {text}"
            self.stream.write("\r\x1b[K" + self._bar)
            self.stream.flush()
        elif finished:
            self.stream.write(f"  progress: {text}\n")
            self.stream.flush()
            self.last_line = time.monotonic()

    def end_progress(self) -> None:
        if self.tty and self._bar:
            self.stream.write("\n")
            self.stream.flush()
        self._bar = ""

    def callback(
        self,
        config: ExperimentConfig,
        *,
        label_names: dict[int, str] | None = None,
        early_collapse: dict[str, float] | None = None,
        cpus: float | None = None,
    ):
        """The Tune callback that writes a line per finished trial and the progress (None when verbose)."""
        if self.verbose:
            return None
        from sweetspot.search.console_callback import ConsoleCallback

        return ConsoleCallback(self, config, label_names=label_names, early_collapse=early_collapse, cpus=cpus)


def label_names(prepared_path: str | os.PathLike) -> dict[int, str]:
    """Label id -> name from a prepared folder's labels.json (empty when it cannot be read)."""
    import json
    from pathlib import Path

    try:
        return {int(x["id"]): str(x["name"]) for x in json.loads((Path(prepared_path) / "labels.json").read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
