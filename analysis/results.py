"""Read a results folder into per-trial records and tidy tables, with no Ray running.

A results folder is what `sweetspot search` writes to `<storage_path>/<name>/`, on a local path or
a storage URI (`s3://`, `gs://`, `file://`):

    sweetspot.yaml            the resolved experiment config (with `prepared_path`)
    summary.json              run records (status per trial), kept current by the search
    trial_<id>/params.json    the trial's sampled parameters (Tune)
    trial_<id>/result.json    one JSON object per report, i.e. per epoch (Tune)
    trial_<id>/checkpoint_*/  the latest checkpoint(s)

Either of the first two files is enough; a trial folder without `summary.json` gets status
`unknown`. How a `result.json` is parsed (a torn last line skipped, any other unreadable line an
error, a retried trial's repeated epochs counted once) is defined in sweetspot/layout.py. Values that are not finite numbers (NaN, inf, strings) stay in the history as reported;
every consumer skips them.

Example:
    >>> results = load_results("results/quickstart")  # doctest: +SKIP
    >>> results.ranked()[0].best()["val_p1"]  # doctest: +SKIP
    0.448
    >>> epoch_table(results).groupby("optimizer")["val_p1"].max()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sweetspot import layout, storage
from sweetspot.trainable import keys
from sweetspot.trainable.config import ModelConfig, TrainConfig

SEARCHED = ("optimizer", "lr", "weight_decay", "seed")
PARAMS = ("optimizer", "lr", "weight_decay")  # what a configuration is, seeds aside
TRIAL_INDEX = "__trial_index__"  # Tune's Repeater numbers the seeds of one configuration with it


class ResultsError(ValueError):
    """The folder is not a sweetspot results folder (shown as one line, exit code 2)."""


@dataclass
class TrialResult:
    """One trial: its status, sampled config and the metrics it reported each epoch."""

    trial_id: str
    status: str
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per reported epoch
    error: str | None = None
    folder: str | None = None  # the trial folder's name inside the results folder
    checkpoint: str | None = None  # the latest checkpoint folder's location

    @property
    def epochs(self) -> int:
        return max((int(row.get(keys.EPOCH, 0)) for row in self.history), default=0)

    @property
    def last_epoch(self) -> float:
        """The last reported epoch (fractional with `train.eval_every_steps`); 0 with no reports."""
        return max((float(row[keys.EPOCH]) for row in self.history if finite(row.get(keys.EPOCH))), default=0.0)

    @property
    def diverged(self) -> bool:
        """The training loss became NaN or inf (its later metrics are placeholders)."""
        return self.status == "diverged" or any(row.get(keys.DIVERGED) for row in self.history)

    def best(self, metric: str = keys.VAL_P1, mode: str = "max", *, until: float | None = None) -> dict[str, Any]:
        """The epoch row with the best finite `metric` (diverged epochs excluded, and with `until`
        epochs after it); {} if none. Ties go to the earliest epoch."""
        rows = [
            r
            for r in self.history
            if finite(r.get(metric))
            and not r.get(keys.DIVERGED)
            and (until is None or float(r.get(keys.EPOCH, 0)) <= until + 1e-9)
        ]
        if not rows:
            return {}
        pick = max if mode == "max" else min
        return pick(rows, key=lambda r: r[metric])


@dataclass
class Results:
    """A results folder read back: its trials, the search's metric and mode, the saved config."""

    folder: str
    metric: str
    mode: str
    trials: list[TrialResult]
    config: dict[str, Any]
    max_epochs: int | None = None  # the budget, train.epochs
    commit: str | None = None  # the code that produced the results, when known (ground-truth tables record it)

    @property
    def majority_p1(self) -> float | None:
        """The validation floor reported by the trials (P@1 of the most frequent train label)."""
        for trial in self.trials:
            for row in trial.history:
                if finite(row.get(keys.MAJORITY_P1)):
                    return float(row[keys.MAJORITY_P1])
        return None

    @property
    def train_config(self) -> TrainConfig:
        """The saved `train:` section (defaults for keys it lacks; unknown keys ignored)."""
        return _dataclass_from(TrainConfig, self.config.get("train"))

    @property
    def model_config(self) -> ModelConfig:
        return _dataclass_from(ModelConfig, self.config.get("model"))

    @property
    def prepared_path(self) -> str | None:
        """The prepared data folder the search trained on (from sweetspot.yaml), if recorded."""
        return self.config.get("prepared_path")

    def params(self, trial: TrialResult) -> dict[str, Any]:
        """The trial's optimizer, lr, weight_decay and seed, with the `train:` defaults for the
        ones the search did not vary (lr is None when neither set it)."""
        train = self.train_config
        reported = next((row[keys.SEED] for row in trial.history if finite(row.get(keys.SEED))), None)
        defaults = {
            "optimizer": train.optimizer,
            "lr": train.lr,
            "weight_decay": train.weight_decay,
            "seed": train.seed if reported is None else int(reported),
        }  # trials report their effective seed
        return {k: trial.config.get(k, defaults[k]) for k in SEARCHED}

    def ranked(self) -> list[TrialResult]:
        """Trials by best metric, best first; trials without a value last."""
        sign = -1.0 if self.mode == "max" else 1.0

        def key(t: TrialResult):
            value = t.best(self.metric, self.mode).get(self.metric)
            return (value is None, sign * value if value is not None else 0.0, t.trial_id)

        return sorted(self.trials, key=key)


def finite(x: Any) -> bool:
    """A real, finite number (not a bool, not NaN or inf)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _dataclass_from(cls, raw: Any):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in (raw or {}).items() if k in names})


def _parse(location: str, text: str | None, parse) -> Any:
    if text is None:
        return None
    try:
        return parse(text)
    except layout.LayoutError as e:
        raise ResultsError(str(e)) from None
    except (ValueError, yaml.YAMLError) as e:
        raise ResultsError(f"{location}: unreadable ({str(e).splitlines()[0]})") from None


def load_results(folder: str, *, metric: str | None = None, mode: str | None = None) -> Results:
    """Reads `folder` (a local results folder or a storage URI) into `Results`.

    Args:
        folder: `<storage_path>/<name>` as the search wrote it.
        metric, mode: Rank by these instead of the search's own (`search.metric`, `search.mode`).

    Raises:
        ResultsError: the folder does not exist, holds no sweetspot experiment, or a file in it is
            not the JSON/YAML it should be.
    """
    folder = str(folder)
    if not storage.is_uri(folder):
        folder = str(Path(folder).expanduser())
    if not storage.is_dir(folder):
        raise ResultsError(f"{folder}: no such results folder")
    summary_file, config_file = storage.join(folder, layout.SUMMARY_FILE), storage.join(folder, layout.CONFIG_FILE)
    summary = _parse(summary_file, storage.read_text(summary_file), lambda text: layout.read_summary(text, where=summary_file))
    config = _parse(config_file, storage.read_text(config_file), yaml.safe_load)
    if summary is None and config is None:
        raise ResultsError(f"{folder}: not a sweetspot results folder (no {layout.SUMMARY_FILE} or {layout.CONFIG_FILE})")
    summary, config = summary or {}, config or {}
    train_seed = int((config.get("train") or {}).get("seed", 0))
    trials: dict[str, TrialResult] = {}
    for record in summary.get("trials", []):
        trials[record["trial_id"]] = TrialResult(
            trial_id=record["trial_id"],
            status=record["status"],
            config=_searched(record.get("config", {}), train_seed),
            error=record.get("error"),
            folder=record.get("folder"),
        )
    for name, is_folder in storage.list_dir(folder):
        if not is_folder:
            continue
        trial_dir = storage.join(folder, name)
        result_file = storage.join(trial_dir, layout.RESULT_FILE)
        text = storage.read_text(result_file)
        if text is None:
            continue
        try:
            rows = layout.parse_result_lines(text, where=result_file)
        except layout.LayoutError as e:
            raise ResultsError(str(e)) from None
        params = _parse(trial_dir, storage.read_text(storage.join(trial_dir, layout.PARAMS_FILE)), json.loads) or {}
        trial_id = rows[0].get("trial_id") if rows and rows[0].get("trial_id") else name.removeprefix(layout.TRIAL_PREFIX)
        trial = trials.setdefault(
            trial_id, TrialResult(trial_id=trial_id, status="unknown", config=_searched(params, train_seed))
        )
        trial.folder = name
        trial.config = trial.config or _searched(params, train_seed)
        trial.history = [layout.reported(row) for row in rows]
        if text.strip() and not rows and trial.status not in ("pending", "running", "paused"):
            # An ended trial whose only report was cut short while written (a killed driver): nothing of it
            # can be read, and "terminated with 0 epochs" would hide that.
            trial.status = "errored"
            trial.error = (
                f"{result_file}: its only report is incomplete (cut short while written); nothing of this trial can be read"
            )
        checkpoints = [n for n, d in storage.list_dir(trial_dir) if d and n.startswith(layout.CHECKPOINT_PREFIX)]
        trial.checkpoint = storage.join(trial_dir, checkpoints[-1]) if checkpoints else None
    return _results(folder, list(trials.values()), config, summary, metric=metric, mode=mode)


def _results(
    folder: str,
    trials: list[TrialResult],
    config: dict[str, Any],
    summary: dict[str, Any],
    *,
    metric: str | None,
    mode: str | None,
    commit: str | None = None,
) -> Results:
    """`Results` with the metric, mode and budget the search recorded (summary.json, else the config),
    or `metric`/`mode` given by the user (a loss is minimised, anything else maximised)."""
    search = config.get("search") or {}
    default_metric = summary.get("metric") or search.get("metric") or keys.VAL_P1
    default_mode = summary.get("mode") or search.get("mode") or "max"
    metric = metric or default_metric
    mode = mode or (default_mode if metric == default_metric else _mode_of(metric))
    max_epochs = summary.get("max_epochs") or (config.get("train") or {}).get("epochs")
    return Results(
        folder=folder,
        metric=metric,
        mode=mode,
        trials=trials,
        config=config,
        max_epochs=int(max_epochs) if max_epochs else None,
        commit=commit,
    )


def results_to_table(results: Results) -> dict[str, Any]:
    """`results` as a compact table, JSON-serialisable, that `results_from_table` reads back into the
    same `Results`: {"config": the resolved experiment (as in sweetspot.yaml), "commit": the code's
    sha or None, "trials": [{"trial_id", "status", "config": {optimizer, lr, weight_decay, seed},
    "history": [one reported row per epoch, `trainable.keys` names], "error"}]}. A trial's config holds
    its effective parameters (`Results.params`), so the table needs no defaults to be read. NaN and
    inf values become null, so the table is strict JSON (every consumer skips both alike).

    Example:
        >>> r = Results(folder="x", metric="val_p1", mode="max", config={"train": {"epochs": 1}}, trials=[
        ...     TrialResult("a", "terminated", {"optimizer": "adam", "lr": 1e-4}, [{"epoch": 1, "val_p1": 0.5}])])
        >>> results_to_table(r)["trials"][0]["config"]
        {'optimizer': 'adam', 'lr': 0.0001, 'weight_decay': 0.0, 'seed': 0}
        >>> results_from_table(results_to_table(r)).trials[0].history
        [{'epoch': 1, 'val_p1': 0.5}]
    """
    trials = [
        {
            "trial_id": t.trial_id,
            "status": t.status,
            "config": {k: v for k, v in results.params(t).items() if v is not None},
            "history": [
                {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()} for row in t.history
            ],
            "error": t.error,
        }
        for t in results.trials
    ]
    return {"config": results.config, "commit": results.commit, "trials": trials}


def results_from_table(table: Any, *, metric: str | None = None, mode: str | None = None, source: str = "table") -> Results:
    """`Results` from a table written by `results_to_table` (e.g. a committed ground-truth grid);
    `metric`/`mode` as in `load_results`. `source` names the table in errors and becomes `folder`.

    Raises:
        ResultsError: the table lacks a key or has one of the wrong type (the key is named).
    """

    def need(ok: bool, where: str, what: str) -> None:
        if not ok:
            raise ResultsError(f"{source}: {where}: {what}")

    need(isinstance(table, dict), "the table", "must be a JSON object with config, commit and trials")
    need(isinstance(table.get("config"), dict), "config", "must be the experiment's resolved config (an object)")
    need(isinstance(table.get("trials"), list), "trials", "must be a list")
    need(table.get("commit") is None or isinstance(table["commit"], str), "commit", "must be a string or null")
    trials = []
    for i, t in enumerate(table["trials"]):
        where = f"trials[{i}]"
        need(isinstance(t, dict), where, "must be an object")
        for key, kind in (("trial_id", str), ("status", str), ("config", dict), ("history", list)):
            need(isinstance(t.get(key), kind), f"{where}.{key}", f"missing or not a {kind.__name__}")
        need(all(isinstance(row, dict) for row in t["history"]), f"{where}.history", "every row must be an object")
        trials.append(
            TrialResult(
                trial_id=t["trial_id"],
                status=t["status"],
                config=_searched(t["config"], 0),
                history=[layout.reported(row) for row in t["history"]],
                error=t.get("error"),
            )
        )
    return _results(source, trials, table["config"], {}, metric=metric, mode=mode, commit=table.get("commit"))


def _mode_of(metric: str) -> str:
    """`min` for losses, `max` for everything else (P@k, nDCG, F1, entropies)."""
    return "min" if metric.endswith("loss") else "max"


def _searched(config: dict[str, Any], train_seed: int) -> dict[str, Any]:
    out = {k: config[k] for k in SEARCHED if k in config}
    if "seed" not in out and TRIAL_INDEX in config:  # a Repeater's copies: seed = train.seed + index
        out["seed"] = train_seed + int(config[TRIAL_INDEX])
    return out


def trial_table(results: Results):
    """One row per trial (a pandas DataFrame): id, status, optimizer, lr, weight_decay, seed,
    epochs, the best metric and its epoch, the last metric, diverged, error."""
    import pandas as pd

    rows = []
    for t in results.ranked():
        best = t.best(results.metric, results.mode)
        last = next((r for r in reversed(t.history) if finite(r.get(results.metric))), {})
        rows.append(
            {
                "trial_id": t.trial_id,
                "status": t.status,
                **results.params(t),
                "epochs": t.last_epoch,
                f"best_{results.metric}": best.get(results.metric),
                "best_epoch": best.get(keys.EPOCH),
                f"last_{results.metric}": last.get(results.metric),
                "diverged": t.diverged,
                "error": t.error,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "trial_id",
            "status",
            *SEARCHED,
            "epochs",
            f"best_{results.metric}",
            "best_epoch",
            f"last_{results.metric}",
            "diverged",
            "error",
        ],
    )


def epoch_table(results: Results):
    """One row per (trial, report) (a pandas DataFrame): id, status, the trial's parameters and
    every reported key of `trainable.keys.REPORTED` (missing ones as NaN), then the `test_*` keys
    any trial reported (`train.eval_test`)."""
    import pandas as pd

    tested = {k for t in results.trials for row in t.history for k in row}
    metric_columns = [k for k in keys.REPORTED if k != keys.NODE_ID and k not in SEARCHED] + [
        k for k in keys.TEST_KEYS if k in tested
    ]
    rows = []
    for t in results.trials:
        params = results.params(t)
        for row in t.history:
            rows.append({"trial_id": t.trial_id, "status": t.status, **params, **{k: row.get(k) for k in metric_columns}})
    return pd.DataFrame(rows, columns=["trial_id", "status", *SEARCHED, *metric_columns])
