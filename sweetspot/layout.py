"""The results folder's layout, defined once: file names, trial folder names, and how a trial's
`result.json` is read back. The search writes this layout (through Ray Tune and its run records),
`sweetspot status` and the analysis read it, and the tests build fixtures with it. Pure Python.

    <storage_path>/<name>/
        sweetspot.yaml                 CONFIG_FILE: the resolved experiment config (with `prepared_path`)
        summary.json                   SUMMARY_FILE: run records, rewritten while the search runs
        run.json                       RUN_FILE: the search's own state (running / finished / ...), see `run_document`
        trial_<id>/params.json         PARAMS_FILE: the trial's sampled parameters (Tune)
        trial_<id>/result.json         RESULT_FILE: one JSON object per report (Tune)
        trial_<id>/checkpoint_<n>/     the trial's best checkpoint (`best_checkpoint`) and its latest (a resume's);
                                       only the latest keeps its optimizer state
        lost/trial_<id>/               LOST_FOLDER: trials a killed driver started after Tune last saved its state;
                                       a resume cannot continue them and sets them aside here (`search.resume`)
        state-signature.json           SIGNATURE_FILE: HMACs of Tune's state files (sweetspot/signing.py)
        tuner.pkl, experiment_state-*.json, search*-state-*, trial_<id>/error.pkl
                                       Tune's state: pickles that only `resume` reads, after verifying them

Example:
    >>> trial_folder("a1b2c3")
    'trial_a1b2c3'
    >>> parse_result_lines('{"epoch": 1, "val_p1": 0.3}\\n{"epoch": 2, "val_p', where="result.json")
    [{'epoch': 1, 'val_p1': 0.3}]
"""

from __future__ import annotations

import json
import re
from typing import Any

from sweetspot.trainable import keys
from sweetspot.trainable.collapse import collapsed_epochs, early_verdict

CONFIG_FILE = "sweetspot.yaml"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"
PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
TRIAL_PREFIX = "trial_"
CHECKPOINT_PREFIX = "checkpoint_"
SIGNATURE_FILE = "state-signature.json"
LOST_FOLDER = "lost"
CHECKPOINT_DIR_KEY = "checkpoint_dir_name"  # Tune's key in a result row: the checkpoint reported with it
TRIAL_STATE_FILES = ("error.pkl",)  # a trial folder's files that Tune unpickles (an errored trial's error)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class LayoutError(ValueError):
    """A file of a results folder is not what the layout says (shown as one line)."""


def trial_folder(trial_id: str) -> str:
    """The folder name of a trial inside the results folder."""
    return f"{TRIAL_PREFIX}{trial_id}"


def check_name(name: str, *, key: str = "name") -> str:
    """An experiment name must be one plain folder name (no `/`, not `.` or `..`): the results
    folder is `<storage_path>/<name>` and nothing outside it is ever written or deleted."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise LayoutError(
            f"{key}: {name!r} is not a plain folder name (letters, digits, '.', '_', '-'; not starting with '.' or '-')"
        )
    return name


def reported(row: dict[str, Any]) -> dict[str, Any]:
    """The keys of a Tune result that sweetspot records: `trainable.keys.REPORTED` and their
    `test_*` twins (`train.eval_test`)."""
    return {k: v for k, v in row.items() if k in keys.REPORTED or k in keys.TEST_KEYS}


def best_checkpoint(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The report whose checkpoint is the trial's best, kept by the keep-best policy: the one with the
    highest `keys.IMPROVEMENT` (the trial loop counts the improvements of trainable/score.py's score),
    with the checkpoint folder's name under `CHECKPOINT_DIR_KEY`. None when no report improved it.

    Example:
        >>> rows = [{"epoch": 1, "improvement": 1, "checkpoint_dir_name": "checkpoint_000000"},
        ...         {"epoch": 2, "improvement": 0, "checkpoint_dir_name": "checkpoint_000001"}]
        >>> best_checkpoint(rows)["checkpoint_dir_name"]
        'checkpoint_000000'
    """
    best = None
    for row in rows:
        count = row.get(keys.IMPROVEMENT)
        if (
            isinstance(count, int)
            and count > 0
            and row.get(CHECKPOINT_DIR_KEY)
            and (best is None or count > best[keys.IMPROVEMENT])
        ):
            best = row
    return best


def parse_result_lines(text: str, *, where: str) -> list[dict[str, Any]]:
    """The rows of a `result.json`, one per report, in epoch order.

    Only a torn *last* line (a report being written, or cut short by a killed driver) is skipped;
    an unreadable line anywhere else raises `LayoutError` naming the file and line. When a trial was
    retried after a failure it reports its epochs again from its checkpoint: the later report of an
    epoch replaces the earlier one, so no epoch is counted twice.
    """
    lines = text.splitlines()
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if all(not later.strip() for later in lines[number:]):
                break  # the torn last line
            row = _after_a_torn_report(line)
            if row is None:
                raise LayoutError(f"{where}:{number}: unreadable report ({e.msg})") from None
        if not isinstance(row, dict):
            raise LayoutError(f"{where}:{number}: a report must be a JSON object")
        if not isinstance(row.get(keys.EPOCH), (int, float)) or isinstance(row.get(keys.EPOCH), bool):
            raise LayoutError(f"{where}:{number}: a report without a numeric `{keys.EPOCH}`")
        rows.append(row)
    by_epoch: dict[Any, dict[str, Any]] = {}
    for row in rows:  # a retried trial's repeated epoch: the later report wins
        by_epoch[row[keys.EPOCH]] = row
    return sorted(by_epoch.values(), key=lambda r: _epoch_order(r.get(keys.EPOCH)))


def _after_a_torn_report(line: str) -> dict[str, Any] | None:
    """The report Tune appended to a torn one: a driver killed mid-write leaves a report without its
    newline, and the resumed run appends its next report to it on the same line. The first `{`
    from which the rest of the line is one JSON object is where that report starts; None when
    there is none (the line is corrupt, not torn).

        >>> _after_a_torn_report('{"epoch": 2, "val_p{"epoch": 2, "val_p1": 0.4, "config": {"lr": 0.1}}')
        {'epoch': 2, 'val_p1': 0.4, 'config': {'lr': 0.1}}
        >>> _after_a_torn_report("{garbage") is None
        True
    """
    start = line.find("{", 1)
    while start != -1:
        try:
            row = json.loads(line[start:])
        except json.JSONDecodeError:
            start = line.find("{", start + 1)
            continue
        return row if isinstance(row, dict) else None
    return None


def _epoch_order(epoch: Any) -> float:
    return float(epoch) if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) else float("inf")


# ------------------------------------------------------------------------------------------------
# summary.json: the run records. search/records.py writes them from Tune's trial objects while the
# search runs; the test fixtures write them with the same two functions.

RECORD_STATUS = {"PENDING": "pending", "RUNNING": "running", "PAUSED": "paused", "ERROR": "errored"}  # else: ended
INTERRUPTED = "interrupted"  # stopped by Ctrl-C; a resume continues it (set by the runner after Tune returns)


def trial_record(
    *,
    trial_id: str,
    tune_status: str,
    config: dict[str, Any],
    rows: list[dict[str, Any]],
    metric: str,
    mode: str,
    max_epochs: int,
    collapse_patience: int | None = None,
    folder: str | None = None,
    error: str | None = None,
    early_collapse: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One trial's run record, from Tune's status (`PENDING`, `RUNNING`, `PAUSED`, `ERROR`,
    `TERMINATED`) and its reported rows (`reported` keys, epoch order).

    Statuses: `pending`, `running`, `paused`, `errored` (with `error`, the error's last line), and for
    an ended trial: `diverged` (its last report says so), `collapsed` (stopped after
    `collapse_patience` collapsed epochs in a row, or doomed by the early collapse rule
    `trainable.collapse.early_verdict` called with `early_collapse` as its thresholds, before
    `max_epochs`), `early_stopped`
    (stopped by the scheduler before `max_epochs`), else `terminated`.

    Example:
        >>> rows = [{"epoch": 1, "val_p1": 0.3}, {"epoch": 2, "val_p1": 0.4}]
        >>> r = trial_record(trial_id="a", tune_status="TERMINATED", config={}, rows=rows, metric="val_p1", mode="max", max_epochs=3)
        >>> r["status"], r["epochs"], r["best"]["val_p1"]
        ('early_stopped', 2, 0.4)
    """
    last = rows[-1] if rows else {}
    scored = [r for r in rows if metric in r and not r.get(keys.DIVERGED)]
    pick = max if mode == "max" else min
    best = pick(scored, key=lambda r: r[metric]) if scored else {}
    streak = collapsed_epochs(rows)  # epoch ends the trial has stayed collapsed through, up to the last report
    epochs = int(last.get(keys.EPOCH, 0))
    status = RECORD_STATUS.get(tune_status, "terminated")
    error = error if status == "errored" else None
    if status == "terminated":
        if last.get(keys.DIVERGED):
            status, error = "diverged", "stopped: the training loss became NaN or inf"
        elif collapse_patience and streak >= collapse_patience and epochs < max_epochs:
            status, error = "collapsed", f"stopped: collapsed for {streak} consecutive epochs"
        elif early_collapse and epochs < max_epochs and (verdict := early_verdict(rows, **early_collapse)).doomed:
            status, error = "collapsed", f"stopped early: {verdict.reason}"
        elif epochs < max_epochs:
            status = "early_stopped"
    return {
        "trial_id": trial_id,
        "status": status,
        "config": dict(config),
        "folder": folder,
        "epochs": epochs,
        "last": last,
        "best": best,
        "collapsed_streak": streak,
        "error": error,
    }


def summary_document(records: list[dict[str, Any]], *, metric: str, mode: str, max_epochs: int, updated: str) -> dict[str, Any]:
    """The content of summary.json: the search's metric, mode and budget (`max_epochs` =
    `train.epochs`), when it was written, and one `trial_record` per trial."""
    return {"metric": metric, "mode": mode, "max_epochs": max_epochs, "updated": updated, "trials": list(records)}


# ------------------------------------------------------------------------------------------------
# run.json: the search's own state. search/live.py writes it (the driver, while `tuner.fit()` runs);
# analysis/live.py reads it to tell a running search from a finished or interrupted one.

RUN_STATES = ("running", "finished", "interrupted", "failed")
HEARTBEAT_S = 15.0  # how often a running driver rewrites run.json's `heartbeat`
STALE_AFTER_S = 120.0  # a `running` run.json whose heartbeat is older than this: the driver is gone


def run_document(
    *,
    state: str,
    pid: int,
    host: str,
    started: float,
    heartbeat: float,
    ended: float | None = None,
    report_every: float | None = None,
    reports: int = 0,
    last_report_s: float | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The content of run.json. Times are Unix seconds (UTC): `started` when the driver began
    `tuner.fit()`, `heartbeat` its latest sign of life, `ended` when it left it. `pid` and `host`
    name the driver; `report_every` is the period of its report refresh (None: no refresh),
    `reports` how many it has written and `last_report_s` what the last one took. `error` says why a
    `failed` or `interrupted` run ended.

    Example:
        >>> run_document(state="running", pid=7, host="h", started=1.0, heartbeat=2.0)["state"]
        'running'
    """
    if state not in RUN_STATES:
        raise ValueError(f"run state {state!r}: not one of {', '.join(RUN_STATES)}")
    return {
        "state": state,
        "pid": pid,
        "host": host,
        "started": started,
        "heartbeat": heartbeat,
        "ended": ended,
        "report_every": report_every,
        "reports": reports,
        "last_report_s": last_report_s,
        "error": error,
    }


def read_summary(text: str, *, where: str) -> dict[str, Any]:
    """`summary.json`'s text as the document `summary_document` writes, or `LayoutError` naming
    `where` and what is wrong: torn (not JSON) or of another shape. Readers (`status`, `analyze`)
    rely on the shape checked here."""
    import json

    try:
        doc = json.loads(text)
    except ValueError as e:
        raise LayoutError(f"{where}: unreadable: not valid JSON, a torn or foreign file ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise LayoutError(f"{where}: expected a JSON object with metric, mode and trials, got {type(doc).__name__}")
    for key, kind in (("metric", str), ("mode", str), ("trials", list)):
        if not isinstance(doc.get(key), kind):
            raise LayoutError(f"{where}: {key}: expected a {kind.__name__}, got {doc.get(key)!r:.60}")
    fields = (("trial_id", str), ("status", str), ("config", dict), ("epochs", int), ("last", dict), ("best", dict))
    for i, record in enumerate(doc["trials"]):
        if not isinstance(record, dict):
            raise LayoutError(f"{where}: trials[{i}]: expected an object, got {record!r:.60}")
        for key, kind in fields:
            if not isinstance(record.get(key), kind):
                raise LayoutError(f"{where}: trials[{i}].{key}: expected a {kind.__name__}, got {record.get(key)!r:.60}")
    return doc
