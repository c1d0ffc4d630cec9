"""sweetspot's console and command-line hygiene, in process through `sweetspot.cli.main` (no Ray):
the plan and the worst case for every algorithm, verdict lines, the progress (no escapes in a file),
--version, `env`, `status` without a folder, did-you-mean, broken pipes, a wrong --address."""

from __future__ import annotations

import io
import json
import math

import pytest

from sweetspot import layout
from sweetspot.cli import main
from sweetspot.search.config import load_experiment, load_experiment_dict
from sweetspot.search.console import Console, Progress, plan_lines, trial_cap, verdict
from tests.conftest import REPO

QUICKSTART = str(REPO / "examples" / "quickstart.yaml")


def _run(capsys, *argv) -> tuple[int, str, str]:
    try:
        rc = main(list(argv))
    except SystemExit as e:  # argparse's --version and usage errors
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("algorithm, cap", [("edges", 12), ("tpe", 12), ("random", 12), ("grid", None)])
def test_dry_run_prints_the_plan_and_the_worst_case_for_every_algorithm(capsys, algorithm, cap):
    extra = ["--set", "search.scheduler.name=asha", "--set", "search.stop_early_collapse=false"] if algorithm != "edges" else []
    if algorithm == "grid":
        extra += ["--set", "search.space.lr_factor=[1, 0.1]"]
    rc, out, err = _run(capsys, "search", QUICKSTART, "--dry-run", "--set", f"search.algorithm={algorithm}", *extra)
    assert rc == 0, err
    assert "sweetspot search: quickstart" in out and "  trials  " in out
    last = out.strip().splitlines()[-1]
    expected = cap if cap is not None else 2 * 2  # grid: 2 optimizers x 2 lr factors
    assert last.startswith((f"{expected} trials", f"at most {expected} trials")) and f"{expected * 3} trial-epochs" in last
    rc, out, _ = _run(capsys, "search", QUICKSTART, "--dry-run", "--json", "--set", f"search.algorithm={algorithm}", *extra)
    data = json.loads(out)
    assert rc == 0 and (len(data) == expected if algorithm == "grid" else data["max_trial_epochs"] == expected * 3)


def test_version_and_env_name_the_installed_versions(capsys):
    rc, out, _ = _run(capsys, "--version")
    assert rc == 0 and out.startswith("sweetspot ")
    rc, out, _ = _run(capsys, "env", "--json")
    info = json.loads(out)
    assert rc == 0 and {"sweetspot", "python", "torch", "ray", "transformers", "optuna", "devices", "ray_cluster"} <= set(info)
    import ray
    import torch

    assert info["ray"] == ray.__version__ and info["torch"].split("+")[0] == torch.__version__.split("+")[0]


def test_status_without_a_folder_lists_the_searches_under_storage_path(capsys, tmp_path):
    for name, statuses in (("alpha", ["TERMINATED", "RUNNING"]), ("beta", ["ERROR"])):
        records = [
            layout.trial_record(
                trial_id=f"t{i}",
                tune_status=s,
                config={"optimizer": "adam", "lr": 1e-4},
                rows=[],
                metric="val_p1",
                mode="max",
                max_epochs=1,
            )
            for i, s in enumerate(statuses)
        ]
        (tmp_path / name).mkdir()
        (tmp_path / name / layout.SUMMARY_FILE).write_text(
            json.dumps(layout.summary_document(records, metric="val_p1", mode="max", max_epochs=1, updated="now"))
        )
    (tmp_path / "not-a-search").mkdir()
    rc, out, err = _run(capsys, "status", "--storage-path", str(tmp_path))
    assert rc == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["alpha", "beta"]
    assert "1 running" in lines[1] and "1 errored" in lines[2]
    rc, out, _ = _run(capsys, "status", "--storage-path", str(tmp_path), "--json")
    assert [r["trials"] for r in json.loads(out)] == [2, 1]


@pytest.mark.parametrize(
    "override, hint",
    [
        ("search.num_sample=4", "did you mean 'num_samples'?"),
        ("search.space.optimizer=[adma]", "did you mean 'adam'?"),
        ("search.algorithm=edge", "did you mean 'edges'?"),
    ],
)
def test_a_mistyped_key_or_name_gets_a_did_you_mean(capsys, override, hint):
    rc, _, err = _run(capsys, "search", QUICKSTART, "--dry-run", "--set", override)
    assert rc == 2 and hint in err and len(err.strip().splitlines()) == 1


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("argv", [["search", QUICKSTART, "--dry-run", "--json"], ["env"], ["status", "--storage-path", "."]])
def test_a_closed_pipe_ends_quietly(monkeypatch, capsys, argv):
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    assert main(argv) == 141  # as `| head` ends a program: no traceback
    assert "Traceback" not in capsys.readouterr().err


def test_a_wrong_address_fails_in_one_line_before_ray_starts(capsys, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, out, err = _run(capsys, "search", QUICKSTART, "--address", f"127.0.0.1:{port}", "--set", f"storage_path={tmp_path}")
    assert rc == 2 and f"cannot reach 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "quickstart").exists()
    import ray

    assert not ray.is_initialized()


def test_the_plan_names_data_trials_and_an_estimate():
    config = load_experiment(QUICKSTART)
    manifest = {
        "splits": {
            "train": {"rows": 1200, "length_p90": 30},
            "validation": {"rows": 300, "majority_p1": 0.39},
            "test": {"rows": 300},
        },
        "stats": {"num_labels": 28},
    }
    lines = plan_lines(config, folder="/r/quickstart", manifest=manifest, cpus=2)
    text = "\n".join(lines)
    assert "1,200 train / 300 validation / 300 test documents, 28 labels" in text
    assert "at most 12 x 3 epochs = at most 36 trial-epochs, 2 at a time" in text
    assert "time    at most ~" in text and len(lines) <= 8
    assert (
        trial_cap(
            load_experiment_dict({"search": {"algorithm": "tpe", "num_samples": 5, "seeds": 2, "scheduler": {"name": "fifo"}}})
        )
        == 10
    )


ROW = {"val_pred_entropy": 0.5, "val_true_entropy": 0.8, "majority_p1": 0.38, "val_top_label": 27, "collapsed": 0}


def _record(status, rows, **kw):
    return layout.trial_record(
        trial_id="a", tune_status=status, config={}, rows=rows, metric="val_p1", mode="max", max_epochs=3, **kw
    )


def test_verdicts_use_the_score_and_never_say_terminated():
    good = [{**ROW, "epoch": e, "val_p1": p} for e, p in ((1.0, 0.40), (2.0, 0.50), (3.0, 0.45))]
    words, value = verdict(_record("TERMINATED", good), good, budget=3, margin=0.01)
    assert words == "trains" and value == 0.50  # the best epoch end: trainable.score
    flat = [{**r, "val_p1": 0.385} for r in good]
    assert verdict(_record("TERMINATED", flat), flat, budget=3, margin=0.01)[0] == "fails"
    stuck = [{**r, "val_p1": 0.38, "val_pred_entropy": 0.0, "collapsed": 1} for r in good]
    words, value = verdict(_record("TERMINATED", stuck), stuck, budget=3, margin=0.01, label_names={27: "neutral"})
    assert words == "collapsed onto neutral (ran the budget)" and math.isnan(value)
    early = stuck[:1]
    words, _ = verdict(
        _record("TERMINATED", early, collapse_patience=1), early, budget=3, margin=0.01, label_names={27: "neutral"}
    )
    assert words.startswith("collapsed onto neutral: stopped at epoch 1")
    assert verdict(_record("ERROR", [], error="OOM"), [], budget=3, margin=0.01)[0] == "errored: OOM"
    for rows in (good, flat, stuck, early):
        assert "TERMINATED" not in verdict(_record("TERMINATED", rows), rows, budget=3, margin=0.01)[0]


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_file():
    progress = Progress(cap=12, budget=3, at_once=2, started=0.0, done=4, running=2, durations=[60.0] * 4, epochs=[1.0] * 4)
    assert progress.eta_s() == (240.0, 720.0)  # 4 waves of 2 trials left: ~60 s each, at most 3 epochs x 60 s
    assert "4/12 trials done, 2 running" in progress.text(now=300.0) and "ETA ~4m (at most ~12m)" in progress.text(now=300.0)
    file = io.StringIO()
    console = Console(file, tty=False)
    console.progress(progress, finished=False)  # nothing between trials in a file
    console.progress(progress, finished=True)
    console.print("[4/12] adam")
    assert file.getvalue().count("\n") == 2 and "\x1b" not in file.getvalue() and "\r" not in file.getvalue()
    term = io.StringIO()
    bar = Console(term, tty=True)
    bar.progress(progress, finished=False)
    bar.print("[5/12] adam")
    assert term.getvalue().startswith("\r\x1b[K[") and "[5/12] adam\n" in term.getvalue()


def test_a_file_gets_a_progress_line_every_few_minutes_while_no_trial_ends():
    import time

    from sweetspot.search.console_callback import QUIET_LINE_S, ConsoleCallback

    file = io.StringIO()
    console = Console(file, tty=False)
    callback = ConsoleCallback(console, load_experiment(QUICKSTART))
    callback.on_step(0, [])
    assert file.getvalue() == ""  # not yet
    console.last_line = time.monotonic() - QUIET_LINE_S - 1
    callback.on_step(1, [])
    assert file.getvalue().startswith("  progress: 0/12 trials done") and file.getvalue().count("\n") == 1


def test_verbose_hands_the_console_back_to_tune(monkeypatch):
    import os

    unset = ("RAY_AIR_NEW_OUTPUT", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S")
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    monkeypatch.setattr(os, "environ", environ)  # what quiet_ray sets stays in this test
    loud = Console(io.StringIO(), verbose=True)
    loud.quiet_ray()
    assert loud.tune_verbosity is None and loud.callback(load_experiment(QUICKSTART)) is None
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ
    quiet = Console(io.StringIO())
    quiet.quiet_ray()
    assert quiet.tune_verbosity == 0 and os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] == "0"
