"""End to end through the CLI, as a user runs it: `sweetspot search` on a real local Ray
(Optuna TPE + ASHA, 2 concurrent trials on this machine's CPUs, Ray Data inside the trials),
then `sweetspot analyze --json` on the results folder, and the Optuna study beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest

from sweetspot.trainable import score as score_rules
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def _sweetspot(*args, env, timeout):
    return subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout
    )


def test_search_then_analyze_with_tiny_distilbert(tmp_path, datasets_dir):
    config = tmp_path / "e2e.yaml"
    config.write_text(f"""
name: e2e
storage_path: {tmp_path / "results"}
data: {{source: go_emotions, max_len: 48, train_limit: 320, validation_limit: 96, test_limit: 32}}
model: {{name: tiny-distilbert}}
train: {{epochs: 2, batch_size: 16}}
search:
  num_samples: 8
  max_concurrent_trials: 2
  # val_loss never ties (val_p1 often does, at the floor), so ASHA's rung always ranks the trials;
  # reduction factor 4 keeps the top quarter at epoch 1: ASHA stops a trial that reaches the rung
  # below that quantile of those before it, so all 8 continue with probability about 4e-4.
  metric: val_loss
  mode: min
  space: {{optimizer: [adam, adamw], lr: {{low: 1.0e-4, high: 1.0e-2}}}}
  scheduler: {{name: asha, grace_period: 1, reduction_factor: 4}}
resources: {{cpus_per_trial: 1}}
""")
    env = {
        **os.environ,
        "SWEETSPOT_DATA_DIR": str(datasets_dir),
        "SWEETSPOT_CACHE_DIR": str(tmp_path / "cache"),
        "RAY_ADDRESS": "",
    }
    # A hang (e.g. Ray Data starved by two 1-CPU trials on 2 CPUs) fails here instead of blocking CI.
    search = _sweetspot("search", str(config), env=env, timeout=600)
    assert search.returncode == 0, search.stdout[-3000:] + search.stderr[-3000:]
    folder = tmp_path / "results" / "e2e"

    analyze = _sweetspot("analyze", str(folder), "--json", env=env, timeout=120)
    assert analyze.returncode == 0, analyze.stderr
    summary = json.loads(analyze.stdout)
    trials = summary["trials"]
    assert len(trials) == 8
    assert 0.0 < summary["majority_p1"] < 1.0
    for trial in trials:
        assert trial["status"] in ("terminated", "early_stopped"), trial
        assert trial["config"]["optimizer"] in ("adam", "adamw") and 1e-4 <= trial["config"]["lr"] <= 1e-2
        # One report per epoch, numbered 1..n, each with the shared result keys.
        assert [row["epoch"] for row in trial["history"]] == list(range(1, trial["epochs"] + 1))
        for row in trial["history"]:
            assert {"train_loss", "val_loss", "val_p1", "val_p3", "val_p5"} <= set(row)
        # its score is trainable/score.py's: the best val_p1 over the epoch ends that count
        counted = [row["val_p1"] for row in trial["history"] if score_rules.counts(row)]
        if trial["status"] == "terminated":  # reached the budget (ASHA's early stops are censored: no score)
            assert trial["score"] == (max(counted) if counted else None)
        # The latest checkpoint is real: weights, optimizer state and trainer state; beside it at most
        # the best one (checkpoints_to_keep = 1: the best, plus the latest), without optimizer state.
        checkpoints = sorted((folder / f"trial_{trial['trial_id']}").glob("checkpoint_*"))
        assert 1 <= len(checkpoints) <= 2, checkpoints
        assert {p.name for p in checkpoints[-1].iterdir()} >= {"model.safetensors", "optimizer.pt", "trainer_state.json"}
        assert all(not (p / "optimizer.pt").exists() for p in checkpoints[:-1])
        state = json.loads((checkpoints[-1] / "trainer_state.json").read_text())
        assert state["epoch"] == trial["epochs"] and state["step"] == trial["epochs"] * 20  # 320 docs / 16
    assert any(t["epochs"] == 2 for t in trials)
    assert (folder / "sweetspot.yaml").is_file()

    # ASHA stopped at least one trial at its epoch-1 rung.
    stopped = [t for t in trials if t["status"] == "early_stopped"]
    assert stopped and all(t["epochs"] == 1 for t in stopped), [(t["status"], t["epochs"]) for t in trials]
    # The Optuna study holds every trial, each with the parameters the trial ran and the value of
    # its last report (what OptunaSearch tells it when the trial ends, stopped or not).
    study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{folder / 'optuna.db'}")
    assert len(study.trials) == 8 and {t.state for t in study.trials} == {optuna.trial.TrialState.COMPLETE}
    ran = []
    for trial in trials:
        params = json.loads((folder / f"trial_{trial['trial_id']}" / "params.json").read_text())
        ran.append((params["optimizer"], params[f"lr_{params['optimizer']}"], trial["history"][-1]["val_loss"]))
    told = [(t.params["optimizer"], t.params[f"lr_{t.params['optimizer']}"], t.value) for t in study.trials]
    assert sorted(told) == sorted(ran), (told, ran)

    # Two trials really ran at the same time on the two CPUs (and neither hung).
    spans = []
    for trial in trials:
        rows = [json.loads(l) for l in (folder / f"trial_{trial['trial_id']}" / "result.json").read_text().splitlines()]
        spans.append((rows[0]["timestamp"] - rows[0]["time_this_iter_s"], rows[-1]["timestamp"]))
    spans.sort()
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), spans

    # A second search into the same folder is refused in one line instead of mixing results.
    again = _sweetspot("search", str(config), env=env, timeout=120)
    assert again.returncode == 2 and "already holds results" in again.stderr and again.stderr.count("\n") == 1
