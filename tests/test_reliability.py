"""Reliability through the CLI, as a user meets it: every bad input is refused before anything is
written or Ray starts, in one line per problem (`<file>: <dotted.key>: <what is wrong>`), exit 2 and
no traceback; a search where every trial errored exits 1 with the first error and its log; Ctrl-C
exits 130 with the resume command and records the stopped trials as interrupted; a resume leaves no
Optuna trial RUNNING and ends without Ray's C++ shutdown trace; a killed `prepare` leaves no
temporary folder behind once the next one ran.

Each case runs `python -m sweetspot.cli ...` in a subprocess and is recorded (command, exit code,
first line of stderr, what is left on disk). With `SWEETSPOT_WRITE_RELIABILITY=1`, a run of this
whole module writes those records as the table in docs/reliability.md (between the `validate`
markers, bench/docsection.py):

    SWEETSPOT_WRITE_RELIABILITY=1 python -m pytest tests/test_reliability.py -q
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

DOCS = REPO / "docs" / "reliability.md"
SLICE = {"source": "go_emotions", "max_len": 48, "train_limit": 320, "validation_limit": 64, "test_limit": 32}
ONE_TRIAL = {
    "algorithm": "grid",
    "space": {"optimizer": ["adam"], "lr": [0.001], "weight_decay": [0.0]},
    "scheduler": {"name": "fifo"},
}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _experiment(tmp: Path, extra: dict | None = None, *, name: str = "exp.yaml") -> Path:
    """A valid experiment (the tiny model, a go_emotions slice, one 1-epoch trial) with `extra` merged in."""
    config = {
        "name": "case",
        "storage_path": str(tmp / "results"),
        "data": SLICE,
        "model": {"name": "tiny-distilbert"},
        "train": {"epochs": 1, "batch_size": 16},
        "search": ONE_TRIAL,
    }
    path = tmp / name
    path.write_text(yaml.safe_dump(_merge(config, extra or {}), sort_keys=False))
    return path


@dataclass(frozen=True)
class Case:
    """One bad input: what it is, how to build it in a fresh folder (-> CLI arguments, extra
    environment), and what the first line of stderr must say."""

    id: str
    what: str
    build: Callable[[Path], tuple[list[str], dict[str, str]]]
    message: str
    code: int = 2


def _search(extra: dict) -> Callable[[Path], tuple[list[str], dict[str, str]]]:
    return lambda tmp: (["search", str(_experiment(tmp, extra))], {})


def _raw_file(content: bytes, *, command: str = "search") -> Callable[[Path], tuple[list[str], dict[str, str]]]:
    def build(tmp: Path):
        (tmp / "exp.yaml").write_bytes(content)
        return [command, str(tmp / "exp.yaml")], {}

    return build


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines + ["name: *a9"]) + "\n"


GRID = "search: {algorithm: grid, scheduler: {name: fifo}, space: {optimizer: [adam], lr: [0.001], weight_decay: [0.0]}"


def _fifo_as_config(tmp: Path):
    os.mkfifo(tmp / "exp.yaml")
    return ["search", str(tmp / "exp.yaml")], {}


def _folder_as_config(tmp: Path):
    (tmp / "exp.yaml").mkdir()
    return ["search", str(tmp / "exp.yaml")], {}


def _bad_set(tmp: Path):
    return ["search", str(_experiment(tmp)), "--set", "train.epochs=[3"], {}


def _file_in_the_way(tmp: Path) -> Path:
    (tmp / "a-file").write_text("not a folder\n")
    return tmp / "a-file" / "sub"


def _storage_under_a_file(tmp: Path):
    return ["search", str(_experiment(tmp, {"storage_path": str(_file_in_the_way(tmp))}))], {}


_HELD: list[int] = []  # lock descriptors held by `_locked_search` until the test process ends


def _locked_search(tmp: Path):
    """A search whose results folder's lock another process holds: the lock file taken here (flock
    locks conflict between open files, in one process too), as a running search holds it."""
    import fcntl

    from sweetspot.search.results_folder import _lock_file

    path = _experiment(tmp)
    lock = _lock_file(str(tmp / "results" / "case"))
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(fd, b"4242", 0)
    _HELD.append(fd)
    return ["search", str(path)], {}


def _cache_under_a_file(tmp: Path):
    return ["prepare", str(_experiment(tmp))], {"SWEETSPOT_CACHE_DIR": str(_file_in_the_way(tmp))}


def _unknown_model(tmp: Path):
    return ["prepare", str(_experiment(tmp, {"model": {"name": "nobody-sweetspot/no-such-encoder"}}))], {}


def _validation_labels_not_in_train(tmp: Path):
    data = tmp / "data"
    data.mkdir()
    for split, label in (("train", "a"), ("validation", "b"), ("test", "a")):
        (data / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": f"{split} text {i}", "labels": [label]}) + "\n" for i in range(4))
        )
    return ["prepare", str(_experiment(tmp, {"data": {"source": "jsonl", "path": str(data)}}))], {}


def _jsonl_labels(labels_of: Callable[[int], list[str]]):
    """A jsonl dataset of 8 train, 4 validation and 4 test documents labelled by `labels_of(i)`."""

    def build(tmp: Path):
        data = tmp / "data"
        data.mkdir()
        for split, n in (("train", 8), ("validation", 4), ("test", 4)):
            rows = (json.dumps({"text": f"{split} text {i}", "labels": labels_of(i)}) + "\n" for i in range(n))
            (data / f"{split}.jsonl").write_text("".join(rows))
        return ["prepare", str(_experiment(tmp, {"data": {"source": "jsonl", "path": str(data)}}))], {}

    return build


def _summary(content: str, command: str) -> Callable[[Path], tuple[list[str], dict[str, str]]]:
    def build(tmp: Path):
        folder = tmp / "results" / "case"
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(content)
        return [command, str(folder), *(["--no-report"] if command == "analyze" else [])], {}

    return build


TORN = '{"metric": "val_p1", "mode": "max", "max_epochs": 1, "trials": [{"trial_id": "a", "sta'
ALL_ERRORED = json.dumps(
    {
        "metric": "val_p1",
        "mode": "max",
        "max_epochs": 1,
        "trials": [
            {
                "trial_id": t,
                "status": "errored",
                "config": {"lr": 1e-4},
                "epochs": 0,
                "last": {},
                "best": {},
                "error": "RuntimeError: boom\nmore",
            }
            for t in ("a", "b")
        ],
    }
)
WRONG_SHAPE = json.dumps(
    {"metric": "val_p1", "mode": "max", "max_epochs": 1, "trials": [{"trial_id": "a", "status": "terminated"}]}
)

CASES = [
    Case(
        "empty_optimizer",
        "`search.space.optimizer: []`",
        _search({"search": {"space": {"optimizer": []}}}),
        "exp.yaml: search.space.optimizer: must not be empty",
    ),
    Case(
        "grace_period_over_epochs",
        "`scheduler.grace_period: 3` with `train.epochs: 1`",
        _search({"search": {"algorithm": "tpe", "scheduler": {"name": "asha", "grace_period": 3}, "space": {"lr": None}}}),
        "exp.yaml: search.scheduler.grace_period: 3 is more than train.epochs (1)",
    ),
    Case(
        "max_len_over_positions",
        "`data.max_len: 1024` (the model has 512 positions)",
        _search({"data": {"max_len": 1024}}),
        "exp.yaml: data.max_len: 1024 is more than tiny-distilbert's 512 positions",
    ),
    Case(
        "dropout_out_of_range",
        "`model.dropout: 1.0`",
        _search({"model": {"dropout": 1.0}}),
        "exp.yaml: model.dropout: must be in [0, 1), got 1.0",
    ),
    Case(
        "grid_lr_nan",
        "grid `lr: [.nan]`",
        _search({"search": {"space": {"lr": [float("nan")]}}}),
        "exp.yaml: search.space.lr[0]: must be a finite number, got nan",
    ),
    Case(
        "grid_lr_inf",
        "grid `lr: [0.001, .inf]`",
        _search({"search": {"space": {"lr": [0.001, float("inf")]}}}),
        "exp.yaml: search.space.lr[1]: must be a finite number, got inf",
    ),
    Case(
        "grid_lr_zero",
        "grid `lr: [0]`",
        _search({"search": {"space": {"lr": [0.0]}}}),
        "exp.yaml: search.space.lr[0]: must be > 0, got 0.0",
    ),
    Case(
        "grid_lr_negative",
        "grid `lr: [-0.001]`",
        _search({"search": {"space": {"lr": [-0.001]}}}),
        "exp.yaml: search.space.lr[0]: must be > 0, got -0.001",
    ),
    Case(
        "grid_weight_decay_negative",
        "grid `weight_decay: [0, -0.01]`",
        _search({"search": {"space": {"weight_decay": [0.0, -0.01]}}}),
        "exp.yaml: search.space.weight_decay[1]: must be >= 0, got -0.01",
    ),
    Case(
        "unknown_encoding",
        "`data.encoding: utf-9`",
        _search({"data": {"encoding": "utf-9"}}),
        "exp.yaml: data.encoding: unknown text encoding 'utf-9'",
    ),
    Case(
        "zero_train_limit",
        "`data.train_limit: 0`",
        _search({"data": {"train_limit": 0}}),
        "exp.yaml: data.train_limit: must be >= 1, got 0",
    ),
    Case(
        "negative_test_limit",
        "`data.test_limit: -5`",
        _search({"data": {"test_limit": -5}}),
        "exp.yaml: data.test_limit: must be >= 1, got -5",
    ),
    Case(
        "cpus_over_machine",
        "`resources.cpus_per_trial: 4096` (embedded Ray)",
        _search({"resources": {"cpus_per_trial": 4096}}),
        "exp.yaml: resources.cpus_per_trial: 4096 CPUs per trial, but the embedded Ray has",
    ),
    Case(
        "gpus_over_machine",
        "`resources.gpus_per_trial: 64` (embedded Ray)",
        _search({"resources": {"gpus_per_trial": 64}}),
        "exp.yaml: resources.gpus_per_trial: 64 GPUs per trial, but the embedded Ray has",
    ),
    Case("storage_path_not_creatable", "`storage_path` below a regular file", _storage_under_a_file, "exp.yaml: storage_path: "),
    Case(
        "study_driver_missing",
        "`search.study_storage: postgresql+pg8000://…` (driver not installed)",
        _search({"search": {"algorithm": "tpe", "space": {"lr": None}, "study_storage": "postgresql+pg8000://u@localhost/db"}}),
        "exp.yaml: search.study_storage: the database driver for postgresql+pg8000 is not installed (no module 'pg8000')",
    ),
    Case("set_not_yaml", "`--set 'train.epochs=[3'`", _bad_set, "exp.yaml: --set 'train.epochs=[3': not valid YAML"),
    Case("config_is_a_folder", "the config path is a folder", _folder_as_config, "exp.yaml: is a folder, not an experiment file"),
    Case(
        "config_not_utf8",
        "the config file is Latin-1",
        _raw_file("name: caf\xe9\n".encode("latin-1")),
        "exp.yaml:1: not valid UTF-8",
    ),
    Case("empty_experiment_file", "an empty experiment file", _raw_file(b"# nothing yet\n"), "exp.yaml: empty experiment file"),
    Case(
        "duplicate_key",
        "`train:` given twice",
        _raw_file(b"name: a\ntrain:\n  epochs: 1\ntrain:\n  epochs: 2\n"),
        "exp.yaml:4: key 'train' given twice (first on line 2)",
    ),
    Case(
        "alias_bomb",
        "a 1 KB YAML of nested aliases (9^10 values)",
        _raw_file(_alias_bomb().encode()),
        "expands to more than 100,000 values",
    ),
    Case(
        "deep_nesting",
        "a list nested 200 levels deep",
        _raw_file(b"a: " + b"[" * 200 + b"]" * 200 + b"\n"),
        "nested deeper than 64 levels",
    ),
    Case(
        "oversized_file",
        "a 2 MB experiment file",
        _raw_file(b"name: x\n" + b"# pad\n" * 300_000),
        "more than an experiment file's limit",
    ),
    Case(
        "seeds_1e9",
        "a grid with `search.seeds: 1000000000`",
        _raw_file(f"name: x\n{GRID}, seeds: 1000000000}}\n".encode()),
        "search.seeds: must be in [1, 1000]",
    ),
    Case(
        "seed_negative",
        "`search.seed: -1`",
        _raw_file(b"name: x\nsearch: {seed: -1}\n"),
        "search.seed: must be in [0, 4.29497e+09], got -1",
    ),
    Case(
        "metric_unreported",
        "`search.metric` no trial reports",
        _raw_file(b"name: x\nsearch: {metric: val_nothing}\n"),
        "search.metric: 'val_nothing' is not a result a trial reports",
    ),
    Case(
        "storage_path_unset_var",
        "`storage_path: '${SWEETSPOT_SURELY_UNSET}/r'`, the variable not set",
        _raw_file(b"name: x\nstorage_path: '${SWEETSPOT_SURELY_UNSET}/r'\n"),
        "storage_path: the environment variable SWEETSPOT_SURELY_UNSET",
    ),
    Case(
        "model_name_unset_var",
        "`model.name: '${SWEETSPOT_SURELY_UNSET}'`, the variable not set",
        _raw_file(b"name: x\nmodel: {name: '${SWEETSPOT_SURELY_UNSET}'}\n"),
        "model.name: the environment variable SWEETSPOT_SURELY_UNSET",
    ),
    Case(
        "config_is_a_fifo",
        "the config path is a FIFO (never read: it would block)",
        _fifo_as_config,
        "not a regular file (a device, FIFO or socket); give an experiment YAML file",
    ),
    Case(
        "config_is_dev_zero",
        "the config path is /dev/zero (never read: it never ends)",
        lambda tmp: (["search", "/dev/zero"], {}),
        "/dev/zero: not a regular file (a device, FIFO or socket); give an experiment YAML file",
    ),
    Case(
        "cache_dir_not_writable",
        "`SWEETSPOT_CACHE_DIR` below a regular file",
        _cache_under_a_file,
        "exp.yaml: SWEETSPOT_CACHE_DIR: the prepared-data cache ",
    ),
    Case(
        "unknown_model",
        "`model.name: nobody-sweetspot/no-such-encoder` (offline or not)",
        _unknown_model,
        "exp.yaml: model.name: unknown model 'nobody-sweetspot/no-such-encoder'",
    ),
    Case(
        "validation_labels_missing_from_train",
        "a validation split whose only label never occurs in train",
        _validation_labels_not_in_train,
        "jsonl: the validation split is empty because its labels are missing from train",
    ),
    Case(
        "status_torn_summary",
        "`status` on a torn summary.json",
        _summary(TORN, "status"),
        "summary.json: unreadable: not valid JSON, a torn or foreign file",
    ),
    Case(
        "status_wrong_shape_summary",
        "`status` on a summary.json of another shape",
        _summary(WRONG_SHAPE, "status"),
        "summary.json: trials[0].config: expected a dict, got None",
    ),
    Case(
        "analyze_torn_summary",
        "`analyze` on a torn summary.json",
        _summary(TORN, "analyze"),
        "summary.json: unreadable: not valid JSON, a torn or foreign file",
    ),
    Case(
        "analyze_wrong_shape_summary",
        "`analyze` on a summary.json of another shape",
        _summary(WRONG_SHAPE, "analyze"),
        "summary.json: trials[0].config: expected a dict, got None",
    ),
    Case(
        "one_label",
        "a dataset whose documents all carry the same one label",
        _jsonl_labels(lambda i: ["a"]),
        "jsonl: the train split has one label ('a'); multi-label classification needs at least two",
    ),
    Case(
        "every_document_every_label",
        "a dataset where every document has every label",
        _jsonl_labels(lambda i: ["a", "b", "c"]),
        "jsonl: every train document has every label (3); there is nothing to tell documents apart by",
    ),
    Case(
        "study_password_with_slash",
        "`search.study_storage: postgresql://ann:pa/ss@db.example/s` (a password holding `/`)",
        _search({"search": {"algorithm": "tpe", "space": {"lr": None}, "study_storage": "postgresql://ann:pa/ss@db.example/s"}}),
        "search.study_storage: postgresql://ann:***@db.example/s holds a password",
    ),
    Case(
        "cache_dir_unset_var",
        "`data.cache_dir: '${SWEETSPOT_SURELY_UNSET}/c'`, the variable not set",
        _search({"data": {"cache_dir": "${SWEETSPOT_SURELY_UNSET}/c"}}),
        "data.cache_dir: the environment variable SWEETSPOT_SURELY_UNSET is not set",
    ),
    Case(
        "data_files_unset_var",
        "`data.files.train: '${SWEETSPOT_SURELY_UNSET}.jsonl'`, the variable not set",
        _search({"data": {"source": "jsonl", "path": ".", "files": {"train": "${SWEETSPOT_SURELY_UNSET}.jsonl"}}}),
        "data.files.train: the environment variable SWEETSPOT_SURELY_UNSET is not set",
    ),
    Case(
        "storage_path_under_proc",
        "`storage_path: /proc/sweetspot-results` (as root `os.access` says yes; probed by writing)",
        _search({"storage_path": "/proc/sweetspot-results"}),
        "storage_path: /proc/sweetspot-results cannot be created: ",
    ),
    Case(
        "short_signing_key",
        "`SWEETSPOT_SIGNING_KEY=k` (one byte)",
        lambda tmp: (["search", str(_experiment(tmp))], {"SWEETSPOT_SIGNING_KEY": "k"}),
        "the signing key is 1 bytes, shorter than 16",
    ),
    Case(
        "workers_over_machine",
        "`train.workers_per_trial: 4`, `resources.cpus_per_trial: 8` (embedded Ray of 2 CPUs)",
        _search({"train": {"workers_per_trial": 4}, "resources": {"cpus_per_trial": 8}}),
        "exp.yaml: resources.cpus_per_trial: 8 CPUs per trial",
    ),
    Case(
        "two_searches_at_once",
        "a second `search` of a results folder another search holds (its lock taken)",
        _locked_search,
        "another sweetspot search or resume is using this results folder (pid ",
    ),
    Case(
        "analyze_every_trial_errored",
        "`analyze` on a search whose every trial errored before its first report",
        _summary(ALL_ERRORED, "analyze"),
        "every trial errored before its first report (2 of 2); the first, a: RuntimeError: boom",
    ),
]

# The search-level cases (real Ray), in the order the table lists them after the bad inputs.
# What `analyze` makes of damaged result files, and the machine's limits, after the bad inputs.
FOLDER_CASES = ["torn_only_report", "torn_report_then_appended", "corrupt_middle_report", "report_without_epoch"]
MACHINE_CASES = ["cpu_affinity", "full_disk"]
RAY_CASES = [
    "edges_with_study_storage",
    "every_trial_errored",
    "ctrl_c",
    "resume_after_ctrl_c",
    "sigterm",
    "prepare_killed_then_prepare",
]

RECORDS: dict[str, dict[str, Any]] = {}


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) + ("/" if p.is_dir() else "") for p in folder.rglob("*")}


def _left(before: set[str], after: set[str]) -> str:
    """New paths, each shown by its top new folder (`results/case/`, not every file in it)."""
    new = sorted(after - before)
    tops = sorted({p for p in new if not any(p != q and p.startswith(q) for q in new if q.endswith("/"))})
    return ", ".join(f"`{p}`" for p in tops) if tops else "nothing"


def _cli(tmp: Path, argv: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", *argv], cwd=tmp, env=env, capture_output=True, text=True, **kwargs
    )


def _record(
    case: str,
    what: str,
    tmp: Path,
    argv: list[str],
    code: int,
    stderr: str,
    left: str,
    env_extra: dict | None = None,
    stdout: str = "",
    line: str | None = None,
) -> None:
    def plain(text: str) -> str:
        return text.replace(str(tmp), "$TMP").replace("|", "\\|")

    # the line a user reads: sweetspot's own on stderr, else (a success) the last line it printed
    lines = [line] if line is not None else None
    lines = (
        lines or [l for l in stderr.splitlines() if l.startswith("sweetspot ")] or (stdout or stderr).strip().splitlines()[-1:]
    )
    shown = " ".join(f"{k}={plain(v)}" for k, v in (env_extra or {}).items())
    command = (
        (shown + " " if shown else "") + "sweetspot " + " ".join(plain(a) if " " not in a else f"'{plain(a)}'" for a in argv)
    )
    RECORDS[case] = {
        "case": case,
        "what": what,
        "command": command,
        "exit": code,
        "stderr": plain(lines[0]) if lines else "",
        "left": plain(left),
    }


@pytest.fixture
def env(tmp_path, datasets_dir):
    return {
        **os.environ,
        "SWEETSPOT_DATA_DIR": str(datasets_dir),
        "SWEETSPOT_CACHE_DIR": str(tmp_path / "cache"),
        "RAY_ADDRESS": "",
    }


# These cases run as a user runs them, in a process of their own (a traceback or a stray print
# cannot hide in the test's process); the others run `main(argv)` in-process (the `cli` fixture),
# which checks the same lines, exit code and files without paying Python's and torch's start each.
SUBPROCESS_CASES = {"empty_optimizer", "config_not_utf8", "cache_dir_not_writable", "unknown_model", "analyze_torn_summary"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_in_one_line_per_problem_before_anything_is_written(case, tmp_path, env, cli, monkeypatch):
    argv, extra = case.build(tmp_path)
    before = _files(tmp_path)
    started = time.monotonic()
    if case.id in SUBPROCESS_CASES:
        proc = _cli(tmp_path, argv, {**env, **extra}, timeout=120)
    else:
        monkeypatch.chdir(tmp_path)
        proc = cli(*argv, env={**env, **extra})
    after = _files(tmp_path)
    _record(case.id, case.what, tmp_path, argv, proc.returncode, proc.stderr, _left(before, after), extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == case.code, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(l.startswith(f"sweetspot {argv[0]}: error: ") for l in lines), proc.stderr
    assert case.message in lines[0], proc.stderr
    assert after == before, f"left on disk: {sorted(after - before)}"
    assert proc.stdout == ""
    assert time.monotonic() - started < 60  # no minute of network retries


def test_a_config_with_several_problems_lists_each_on_its_own_line(tmp_path, env):
    path = _experiment(tmp_path, {"model": {"dropout": -0.5}, "data": {"validation_limit": 0}, "train": {"epochs": 0}})
    proc = _cli(tmp_path, ["search", str(path)], env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [l.split(": ")[3] for l in proc.stderr.splitlines()] == ["data.validation_limit", "model.dropout", "train.epochs"]


# ------------------------------------------------------------------------------------------------
# Damaged result files: a finished two-trial folder written by hand (tests/analysis_tests/folders.py),
# trial b's result.json then damaged as a killed driver or a foreign hand leaves it.


def _damaged(tmp: Path, damage: Callable[[list[str]], list[str]]) -> Path:
    from tests.analysis_tests.folders import trial, write_results

    folder = write_results(
        tmp / "results" / "case", [trial("a", "adam", 1e-4, [0.4, 0.5, 0.6]), trial("b", "adam", 1e-3, [0.4, 0.5, 0.6])]
    )
    result = folder / "trial_b" / "result.json"
    result.write_text("\n".join(damage(result.read_text().splitlines())) + "\n")
    return folder


def _without_epoch(line: str) -> str:
    row = json.loads(line)
    del row["epoch"]
    return json.dumps(row)


FOLDER_DAMAGE = {  # case -> (what, damage to trial b's report lines, exit code, what the output must say)
    "torn_only_report": (
        "trial b's only report cut short while written (a one-line torn `result.json`), the trial ended",
        lambda lines: [lines[0][:40]],
        0,
        "censored b: adam lr=1.0e-03 errored at epoch 0 ($TMP/results/case/trial_b/result.json: its only report is incomplete",
    ),
    "torn_report_then_appended": (
        "a torn report in the middle of `result.json`, Tune's next report appended to it (a resumed driver killed mid-write)",
        lambda lines: [lines[0], lines[1][:30] + lines[1], lines[2]],
        0,
        "b            terminated     adam       1.00e-03        0      3   0.6000",
    ),
    "corrupt_middle_report": (
        "a line of `result.json` that is not JSON, with reports after it",
        lambda lines: [lines[0], "{garbage", lines[2]],
        2,
        "sweetspot analyze: error: $TMP/results/case/trial_b/result.json:2: unreadable report",
    ),
    "report_without_epoch": (
        "a report without `epoch` (it would overwrite epoch 1)",
        lambda lines: [lines[0], _without_epoch(lines[1]), lines[2]],
        2,
        "sweetspot analyze: error: $TMP/results/case/trial_b/result.json:2: a report without a numeric `epoch`",
    ),
}


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_damaged_result_files_read_as_what_they_are_or_are_refused_naming_file_and_line(case, tmp_path, cli):
    what, damage, code, says = FOLDER_DAMAGE[case]
    folder = _damaged(tmp_path, damage)
    argv = ["analyze", str(folder), "--no-report", "--no-baselines"]
    before = _files(tmp_path)
    run = cli(*argv)
    plain = (run.stdout + run.stderr).replace(str(tmp_path), "$TMP")
    shown = next((l for l in plain.splitlines() if l.startswith(says)), None)
    _record(case, what, tmp_path, argv, run.returncode, run.stderr, _left(before, _files(tmp_path)), line=shown)
    assert run.returncode == code and "Traceback" not in run.stderr, run.stderr
    assert shown is not None, plain
    assert _files(tmp_path) == before
    if code == 2:
        assert run.stderr.count("\n") == 1 and run.stdout == "", run.stderr


# ------------------------------------------------------------------------------------------------
# The machine's limits, met by a real process: the CPUs it may use, a disk with no space left.


def test_the_embedded_ray_is_sized_by_the_cpus_this_process_may_use_not_the_hosts(tmp_path, env):
    path = _experiment(tmp_path, {"resources": {"cpus_per_trial": 2}})
    before = _files(tmp_path)
    proc = subprocess.run(  # as `taskset -c 0` (or a container's CPU limit) would run it
        [sys.executable, "-m", "sweetspot.cli", "search", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
    )
    _record(
        "cpu_affinity",
        "2 CPUs per trial, the process allowed 1 CPU (`taskset -c 0`, a container's CPU limit)",
        tmp_path,
        ["search", str(path)],
        proc.returncode,
        proc.stderr,
        _left(before, _files(tmp_path)),
        {"taskset": "-c 0"},
    )
    RECORDS["cpu_affinity"]["command"] = RECORDS["cpu_affinity"]["command"].replace("taskset=-c 0 ", "taskset -c 0 ")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "resources.cpus_per_trial: 2 CPUs per trial, but the embedded Ray has 1" in proc.stderr, proc.stderr
    assert _files(tmp_path) == before


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB file system (tmpfs), filled: every write to it fails with ENOSPC."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True, text=True)
    assert mounted.returncode == 0, f"this test mounts a small tmpfs as a full disk (needs root): {mounted.stderr}"
    try:
        with open(disk / "filler", "wb", buffering=0) as f:
            with pytest.raises(OSError):
                while True:
                    f.write(b"x" * 4096)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_is_refused_in_one_line_before_ray_starts(tmp_path, env, full_disk):
    path = _experiment(tmp_path, {"storage_path": str(full_disk / "results")})
    before = _files(tmp_path)
    proc = _cli(tmp_path, ["search", str(path)], env, timeout=120)
    _record(
        "full_disk",
        "`storage_path` on a full disk (a filled 64 KiB tmpfs)",
        tmp_path,
        ["search", str(path)],
        proc.returncode,
        proc.stderr,
        _left(before, _files(tmp_path)),
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert (
        proc.stderr.count("\n") == 1
        and f"storage_path: {full_disk}/results cannot be created: No space left on device" in proc.stderr
    ), proc.stderr
    assert _files(tmp_path) == before


# ------------------------------------------------------------------------------------------------
# Real searches (local Ray, the tiny model, 1 to 3 epochs on a 320-document slice).


def _broken_model(tmp: Path) -> Path:
    """A model folder with a config but no weights: found by the checks, failing in every trial."""
    from sweetspot.trainable.model import _tiny_config

    folder = tmp / "no-weights"
    _tiny_config().save_pretrained(folder)
    return folder


@pytest.mark.e2e
def test_a_search_where_every_trial_errored_exits_1_with_the_first_error_and_its_log(tmp_path, env, minilm_path):
    path = _experiment(
        tmp_path,
        {
            "model": {"name": str(_broken_model(tmp_path))},
            "data": {"tokenizer": minilm_path},
            "search": {"space": {"lr": [0.001, 0.0001]}},
        },
    )
    before = _files(tmp_path)
    proc = _cli(tmp_path, ["search", str(path)], env, timeout=600)
    _record(
        "every_trial_errored",
        "a model folder without weights: both trials error",
        tmp_path,
        ["search", str(path)],
        proc.returncode,
        proc.stderr,
        _left(before, _files(tmp_path)),
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sweetspot search: error: every trial errored (2); the first: "), last
    log = Path(last.rsplit("(log: ", 1)[1].rstrip(")"))
    assert log.is_file() and log.name == "error.txt", last
    assert "Check failed" not in proc.stderr


@pytest.mark.e2e
def test_the_region_search_keeps_no_study_so_a_study_storage_needs_no_driver_and_is_not_recorded(tmp_path, env, cli):
    path = _experiment(
        tmp_path,
        {
            "data": {"train_limit": 160},
            "search": {
                "algorithm": "edges",
                "num_samples": 2,
                "edges": {"probes": 2},
                "space": {"optimizer": ["adam"], "lr": None},
                "study_storage": "postgresql+pg8000://u@localhost/db",  # its driver is not installed
            },
        },
    )
    before = _files(tmp_path)
    run = cli("search", str(path), env=env)
    _record(
        "edges_with_study_storage",
        "`search.algorithm: edges` with `search.study_storage: postgresql+pg8000://…` (driver not installed)",
        tmp_path,
        ["search", str(path)],
        run.returncode,
        run.stderr,
        _left(before, _files(tmp_path)),
        stdout=run.stdout,
    )
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    saved = yaml.safe_load((tmp_path / "results" / "case" / "sweetspot.yaml").read_text())
    assert saved["optuna_storage"] is None and not (tmp_path / "results" / "case" / "optuna.db").exists()


def _wait_for_a_report(folder: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            trials = json.loads((folder / "summary.json").read_text())["trials"]
        except (OSError, ValueError, KeyError):
            trials = []
        if any(t["epochs"] >= 1 for t in trials):
            return
        time.sleep(0.2)  # the signal must land while the trials still run
    pytest.fail("no trial reported an epoch in time")


def _signalled_once_a_trial_reported(tmp: Path, argv: list[str], env: dict[str, str], folder: Path, sig: int):
    """Runs `sweetspot <argv>` in its own process, sends `sig` once a trial reported an epoch, and
    returns the ended process and its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweetspot.cli", *argv],
        cwd=tmp,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_a_report(folder, proc)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, stderr


@pytest.mark.e2e
def test_sigterm_ends_like_ctrl_c_with_exit_143_the_resume_command_and_the_trials_marked_interrupted(tmp_path, env):
    path = _experiment(
        tmp_path,
        {
            "data": {"train_limit": 160},
            "train": {"epochs": 20},
            "search": {"algorithm": "grid", "space": {"optimizer": ["adam"], "lr": [1e-3, 1e-4], "weight_decay": [0.0]}},
        },
    )
    folder = tmp_path / "results" / "case"
    before = _files(tmp_path)
    argv = ["search", str(path)]
    proc, stderr = _signalled_once_a_trial_reported(tmp_path, argv, env, folder, signal.SIGTERM)  # a scheduler, or `kill`
    _record(
        "sigterm",
        "SIGTERM (a scheduler, or `kill`) once a trial reported its first epoch",
        tmp_path,
        argv,
        proc.returncode,
        stderr,
        _left(before, _files(tmp_path)),
    )
    assert proc.returncode == 143, stderr[-3000:]
    assert f"sweetspot search: terminated (SIGTERM); the search is saved, continue it with: sweetspot resume {folder}" in stderr
    assert "Traceback" not in stderr and "Check failed" not in stderr, stderr[-3000:]
    statuses = [t["status"] for t in json.loads((folder / "summary.json").read_text())["trials"]]
    assert "interrupted" in statuses and "early_stopped" not in statuses and "running" not in statuses, statuses


@pytest.mark.e2e
def test_ctrl_c_exits_130_with_the_resume_command_and_a_resume_leaves_no_running_optuna_trial(tmp_path, env):
    import optuna

    # 20 epochs (about 1 s each): the Ctrl-C, sent once an epoch is reported, must land while the trials still run
    path = _experiment(
        tmp_path,
        {
            "data": {"train_limit": 160},
            "train": {"epochs": 20},
            "search": {
                "algorithm": "tpe",
                "num_samples": 2,
                "max_concurrent_trials": 2,
                "seed": 0,
                "space": {"optimizer": ["adam"], "lr": None, "lr_factor": {"low": 0.1, "high": 10.0}},
            },
        },
    )
    folder = tmp_path / "results" / "case"
    before = _files(tmp_path)
    argv = ["search", str(path)]
    proc, stderr = _signalled_once_a_trial_reported(tmp_path, argv, env, folder, signal.SIGINT)
    _record(
        "ctrl_c",
        "Ctrl-C (SIGINT) once a trial reported its first epoch",
        tmp_path,
        argv,
        proc.returncode,
        stderr,
        _left(before, _files(tmp_path)),
    )
    assert proc.returncode == 130, stderr[-3000:]
    assert f"sweetspot search: interrupted; the search is saved, continue it with: sweetspot resume {folder}" in stderr
    assert "Traceback" not in stderr
    statuses = [t["status"] for t in json.loads((folder / "summary.json").read_text())["trials"]]
    assert "interrupted" in statuses and "early_stopped" not in statuses, statuses
    study = optuna.load_study(study_name="case", storage=f"sqlite:///{folder / 'optuna.db'}")
    assert any(t.state.name == "RUNNING" for t in study.trials)  # what the resume has to settle

    before = _files(tmp_path)
    resumed = _cli(tmp_path, ["resume", str(folder)], env, timeout=600)
    _record(
        "resume_after_ctrl_c",
        "`resume` of the interrupted search",
        tmp_path,
        ["resume", str(folder)],
        resumed.returncode,
        resumed.stderr,
        _left(before, _files(tmp_path)),
        stdout=resumed.stdout,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Check failed" not in resumed.stderr and "Traceback" not in resumed.stderr
    study = optuna.load_study(study_name="case", storage=f"sqlite:///{folder / 'optuna.db'}")
    assert [t.state.name for t in study.trials if t.state.name == "RUNNING"] == []
    statuses = [t["status"] for t in json.loads((folder / "summary.json").read_text())["trials"]]
    assert statuses and set(statuses) == {"terminated"}, statuses


@pytest.mark.slow
def test_a_prepare_killed_midway_leaves_no_temporary_folder_once_the_next_prepare_ran(tmp_path, env):
    cache = tmp_path / "cache"
    big = _experiment(tmp_path, {"data": {"train_limit": None, "max_len": 64}}, name="big.yaml")  # all 43k documents
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweetspot.cli", "prepare", str(big)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not list(cache.glob(".tmp-*")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        proc.kill()  # SIGKILL: no cleanup handler runs
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(cache.glob(".tmp-*")), "the prepare ended before it wrote its temporary folder"
    small = _experiment(tmp_path)
    before = _files(tmp_path)
    again = _cli(tmp_path, ["prepare", str(small)], env, timeout=300)
    _record(
        "prepare_killed_then_prepare",
        "`prepare` killed (SIGKILL) while writing, then another `prepare`",
        tmp_path,
        ["prepare", str(small)],
        again.returncode,
        again.stderr,
        _left(before, _files(tmp_path)),
        stdout=again.stdout,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert list(cache.glob(".tmp-*")) == []
    # a temporary folder of a live prepare (here: this test's process) is left alone
    live = cache / f".tmp-go_emotions-0-{socket.gethostname().replace('-', '_')}_{os.getpid()}-abc"
    live.mkdir()
    assert _cli(tmp_path, ["prepare", str(small)], env, timeout=300).returncode == 0
    assert live.is_dir()


def _table() -> str:
    order = [c.id for c in CASES] + FOLDER_CASES + MACHINE_CASES + RAY_CASES
    rows = [
        "| case | input | command | exit | the line it ends with (stderr; on success stdout's last) | left on disk |",
        "|---|---|---|---|---|---|",
    ]
    for case in order:
        r = RECORDS[case]
        rows.append(f"| {r['case']} | {r['what']} | `{r['command']}` | {r['exit']} | {r['stderr']} | {r['left']} |")
    return "\n".join(rows)


@pytest.fixture(scope="module", autouse=True)
def _write_the_table():
    """With SWEETSPOT_WRITE_RELIABILITY=1, writes the table once every case of this module ran."""
    yield
    every_case = {c.id for c in CASES} | set(FOLDER_CASES) | set(MACHINE_CASES) | set(RAY_CASES)
    if os.environ.get("SWEETSPOT_WRITE_RELIABILITY") == "1" and set(RECORDS) >= every_case:
        sys.path.insert(0, str(REPO))
        from bench.docsection import write_section

        write_section("validate", _table(), docs=DOCS, by="tests/test_reliability.py with SWEETSPOT_WRITE_RELIABILITY=1")
