"""The experiment driver through the CLI on a real local Ray: the study's grid, the collapse
stopper, a storage URI, run records, the Optuna study database, schedulers counting epochs,
--overwrite deleting only the experiment, and resuming after the driver was killed with SIGKILL
(from the newest checkpoint, on the same data)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import optuna
import pytest
import yaml

from sweetspot import layout
from sweetspot.trainable.optimizers import default_lr
from tests.conftest import REPO, SLICE, sweetspot_subprocess, wait_for

ONE_TRIAL = {"algorithm": "grid", "space": {"optimizer": ["adam"], "lr": [0.001], "weight_decay": [0.0]}}


def _experiment(tmp_path, name, *, train, search, storage_path=None, data=SLICE, file=None):
    """Writes `<file or name>.yaml`: the tiny model on a go_emotions slice (320 documents: 20 steps
    an epoch at batch 16), results in tmp_path/results unless `storage_path` says otherwise."""
    path = tmp_path / f"{file or name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "storage_path": storage_path or str(tmp_path / "results"),
                "data": data,
                "model": {"name": "tiny-distilbert"},
                "train": train,
                "search": search,
            }
        )
    )
    return path


def _cli(*args, env, timeout=600):
    """A search (or resume) in a process of its own, as a user runs it; messages and exit codes of the
    commands that train nothing are read in this process (the `cli` fixture)."""
    return sweetspot_subprocess(*args, env=env, timeout=timeout)


@pytest.fixture
def env(search_env):
    return dict(search_env)


def test_seed_protocol_preset_expands_to_the_studys_25_trials(cli):
    run = cli("search", REPO / "examples" / "eurlex4k-seed-protocol.yaml", "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    trials = json.loads(run.stdout)
    assert len(trials) == 25
    for optimizer in ("adagrad", "adadelta", "adam", "amsgrad", "adamw"):
        lrs = sorted(t["lr"] for t in trials if t["optimizer"] == optimizer)
        assert lrs == pytest.approx(sorted(default_lr(optimizer) * f for f in (10, 1, 0.1, 0.01, 0.001)))
    assert {t["weight_decay"] for t in trials} == {0.0} and {t["seed"] for t in trials} == {0}
    # The ablation preset: Adam vs AdamW × 5 weight decays at lr 1e-4; seeds multiply a grid.
    run = cli("search", REPO / "examples" / "eurlex4k-wd-ablation.yaml", "--dry-run", "--json", "--set", "search.seeds=3")
    ablation = json.loads(run.stdout)
    assert len(ablation) == 2 * 5 * 3 and {t["lr"] for t in ablation} == {1e-4} and {t["seed"] for t in ablation} == {0, 1, 2}


@pytest.mark.e2e
def test_collapse_stopper_ends_collapsed_trials_and_says_why_with_a_storage_uri(tmp_path, env, cli):
    config = _experiment(
        tmp_path,
        "collapse",
        storage_path=f"file://{tmp_path / 'results'}",
        train={"epochs": 4, "batch_size": 16},
        search={
            "algorithm": "grid",
            "space": {"optimizer": ["adam"], "lr": [0.5], "weight_decay": [0.0]},
            "scheduler": {"name": "fifo"},
            "stop_on_collapse": 2,
        },
    )
    run = _cli("search", str(config), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = f"file://{tmp_path / 'results' / 'collapse'}"
    status = json.loads(cli("status", folder, "--json").stdout)
    (trial,) = status["trials"]
    assert trial["status"] == "collapsed" and trial["epochs"] == 2  # of 4: stopped after 2 collapsed epochs
    assert trial["error"] == "stopped: collapsed for 2 consecutive epochs"
    rows = [
        json.loads(l)
        for l in (tmp_path / "results" / "collapse" / f"trial_{trial['trial_id']}" / "result.json").read_text().splitlines()
    ]
    assert [r["collapsed"] for r in rows] == [1, 1] and rows[-1]["val_pred_entropy"] <= 0.2 * rows[-1]["val_true_entropy"]
    table = cli("status", folder).stdout
    assert "collapsed" in table and "stopped: collapsed for 2 consecutive epochs" in table


def _wait_for(predicate, timeout, interval=1.0):
    return wait_for(predicate, timeout, interval)


def _summary(folder):
    try:
        return json.loads((folder / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


@pytest.mark.e2e
def test_killed_driver_resumes_without_losing_or_rerunning_finished_trials(tmp_path, env, cli):
    config = _experiment(
        tmp_path,
        "kill",
        train={"epochs": 2, "batch_size": 16},
        search={
            "algorithm": "tpe",
            "num_samples": 6,
            "max_concurrent_trials": 2,
            "scheduler": {"name": "fifo"},
            "space": {"optimizer": ["adam", "adamw"], "lr": {"low": 1e-4, "high": 1e-2}},
        },
    )
    folder = tmp_path / "results" / "kill"
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweetspot.cli", "search", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def two_done():
            s = _summary(folder)
            return s if s and sum(t["status"] == "terminated" for t in s["trials"]) >= 2 else None

        running = _wait_for(two_done, timeout=300)
        # While it runs: run records and the Optuna study are readable.
        assert {t["status"] for t in running["trials"]} <= {"pending", "running", "terminated"}
        live = cli("status", folder, "--json")
        assert live.returncode == 0 and len(json.loads(live.stdout)["trials"]) >= 2
        study = optuna.load_study(study_name="kill", storage=f"sqlite:///{folder / 'optuna.db'}")
        assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) >= 2
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the embedded Ray it started
        driver.wait()
    finished = {p.parent.name: p.read_bytes() for p in folder.glob("trial_*/result.json") if len(p.read_text().splitlines()) == 2}
    assert len(finished) >= 2
    # The killed driver left run.json saying `running`; its pid is gone, so the analysis says interrupted.
    assert json.loads((folder / "run.json").read_text())["state"] == "running"
    killed = cli("analyze", folder, "--json", "--no-report", "--no-baselines", env=env)
    partial = json.loads(killed.stdout)["partial"]
    assert partial["state"] == "interrupted" and "is gone" in partial["reason"] and partial["reload_s"] is None

    resumed = _cli("search", str(config), "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    status = json.loads(cli("status", folder, "--json").stdout)
    assert len(status["trials"]) == 6 and {t["status"] for t in status["trials"]} == {"terminated"}
    for name, content in finished.items():  # kept, and not run again
        assert (folder / name / "result.json").read_bytes() == content
    # Trials the killed driver started after Tune last saved its state cannot be continued: the resume
    # sets them aside (nothing deleted, none of them finished) and new trials take their place.
    assert len(list(folder.glob("trial_*"))) == 6
    lost = {p.name for p in (folder / layout.LOST_FOLDER).glob("trial_*")}
    assert not lost & set(finished) and len(lost) <= 2
    assert ("set aside in" in resumed.stderr) == bool(lost)
    study = optuna.load_study(study_name="kill", storage=f"sqlite:///{folder / 'optuna.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 6 - 2  # trials in flight at the kill may be recorded again when they rerun
    # Each optimizer's lr is its own parameter (search/space.py).
    assert {round(t.params[f"lr_{t.params['optimizer']}"], 12) for t in complete} <= {
        round(t["config"]["lr"], 12) for t in status["trials"]
    }


def test_resume_refuses_an_empty_folder_and_a_different_config(tmp_path, env, cli):
    config = tmp_path / "exp.yaml"
    config.write_text(f"name: nothing\nstorage_path: {tmp_path / 'results'}\n")
    run = _cli("search", str(config), "--resume", env=env, timeout=120)  # kept in a process of its own: no traceback
    assert run.returncode == 2 and "holds no experiment to resume" in run.stderr and run.stderr.count("\n") == 1
    run = cli("resume", tmp_path / "results" / "nothing", env=env)
    assert run.returncode == 2 and "holds no experiment to resume" in run.stderr


@pytest.mark.e2e
def test_tpe_with_seeds_runs_every_sampled_configuration_once_per_seed(tmp_path, env, cli):
    config = _experiment(
        tmp_path,
        "seeds",
        train={"epochs": 1, "batch_size": 16, "seed": 7},
        search={
            "algorithm": "tpe",
            "num_samples": 2,
            "seeds": 2,
            "scheduler": {"name": "fifo"},
            "space": {"optimizer": ["adam", "adamw"], "lr": {"low": 1e-4, "high": 1e-2}},
        },
    )
    run = _cli("search", str(config), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = tmp_path / "results" / "seeds"
    trials = json.loads(cli("status", folder, "--json").stdout)["trials"]
    assert len(trials) == 4 and {t["status"] for t in trials} == {"terminated"}
    runs: dict[tuple, list[int]] = {}
    for t in trials:
        (params,) = [json.loads(p.read_text()) for p in folder.glob(f"trial_{t['trial_id']}/params.json")]
        runs.setdefault((params["optimizer"], params["lr"]), []).append(params["__trial_index__"])
    # 2 sampled configurations, each run with seeds train.seed + 0 and train.seed + 1.
    assert len(runs) == 2 and all(sorted(indices) == [0, 1] for indices in runs.values()), runs
    # Each run reports the seed it really used: train.seed + its index among the configuration's runs.
    for t in trials:
        (row,) = [json.loads(l) for l in (folder / f"trial_{t['trial_id']}" / "result.json").read_text().splitlines()]
        assert row["seed"] == 7 + row["config"]["__trial_index__"]
    # Optuna saw one value per configuration: the mean over its seeds.
    study = optuna.load_study(study_name="seeds", storage=f"sqlite:///{folder / 'optuna.db'}")
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 2


def test_overwrite_keeps_the_old_results_when_the_new_search_cannot_start(tmp_path, env, cli):
    old = tmp_path / "results" / "exp"
    old.mkdir(parents=True)
    (old / "summary.json").write_text("{}")
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"name: exp\nstorage_path: {tmp_path / 'results'}\n"
        f"data: {{source: go_emotions, path: {tmp_path / 'nowhere'}}}\nmodel: {{name: tiny-distilbert}}\n"
    )
    run = cli("search", config, "--overwrite", env=env)
    assert run.returncode == 2 and "no such folder" in run.stderr and run.stderr.count("\n") == 1
    assert (old / "summary.json").read_text() == "{}"


@pytest.mark.parametrize("name", ["..", "."])
def test_overwrite_with_a_name_outside_the_experiment_deletes_nothing(tmp_path, env, cli, name):
    # Seen before names were checked: `name: ..` with --overwrite deleted storage_path's parent.
    (tmp_path / "results" / "other").mkdir(parents=True)
    (tmp_path / "results" / "other" / "summary.json").write_text("{}")
    (tmp_path / "beside.txt").write_text("keep")
    config = _experiment(tmp_path, name, file="exp", train={"epochs": 1}, search=ONE_TRIAL)
    run = cli("search", config, "--overwrite", env=env)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr[-3000:]
    assert f"exp.yaml: name: '{name}' is not a plain folder name" in run.stderr
    assert (tmp_path / "results" / "other" / "summary.json").read_text() == "{}"
    assert (tmp_path / "beside.txt").read_text() == "keep" and config.is_file()


@pytest.mark.e2e  # finished_search: one search, shared
def test_asha_counts_epochs_when_trials_report_several_times_an_epoch(finished_search, cli):
    # 320 documents / 16 = 20 steps an epoch: a report every 3 steps gives 7 reports an epoch. With
    # ASHA on training_iteration (max_t = epochs = 2) the trial stopped after 2 reports.
    folder = finished_search  # one trial, 2 epochs, a report every 3 steps, ASHA (grace 1, reduction 2)
    (trial,) = json.loads(cli("status", folder, "--json").stdout)["trials"]
    rows = [json.loads(l) for l in (folder / f"trial_{trial['trial_id']}" / "result.json").read_text().splitlines()]
    assert len(rows) >= 2 * 7 and rows[-1]["epoch"] == 2 and rows[-1]["step"] == 40
    assert trial["status"] == "terminated" and trial["epochs"] == 2


@pytest.mark.e2e
def test_overwrite_with_a_uri_storage_path_starts_a_new_optuna_study(tmp_path, env, cli):
    config = _experiment(
        tmp_path,
        "uri-study",
        storage_path=f"file://{tmp_path / 'results'}",
        train={"epochs": 1, "batch_size": 16},
        search={
            "num_samples": 1,
            "scheduler": {"name": "fifo"},
            "space": {"optimizer": ["adam", "adamw"], "lr_factor": {"low": 0.1, "high": 1.0}},
        },
    )
    env = {**env, "HOME": str(tmp_path / "home")}  # the study of URI results lives under ~/.cache/sweetspot/optuna
    folder = tmp_path / "results" / "uri-study"

    def study_trials():
        (db,) = (tmp_path / "home" / ".cache" / "sweetspot" / "optuna").glob("uri-study*.db")
        return db, optuna.load_study(study_name="uri-study", storage=f"sqlite:///{db}").trials

    first = _cli("search", str(config), env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(study_trials()[1]) == 1
    # --overwrite starts a new study: TPE does not continue from the replaced search's trials.
    second = _cli("search", str(config), "--overwrite", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    db, (trial,) = study_trials()
    (record,) = json.loads(cli("status", f"file://{folder}", "--json").stdout)["trials"]
    assert trial.params["optimizer"] == record["config"]["optimizer"]
    # The study is named by the whole results location, and sweetspot.yaml says where it is.
    assert (
        db.name.startswith("uri-study-")
        and yaml.safe_load((folder / "sweetspot.yaml").read_text())["optuna_storage"] == f"sqlite:///{db}"
    )
    # With the results folder gone (or on another machine), a new search refuses the old study.
    shutil.rmtree(folder)
    again = cli("search", config, env=env)
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr[-3000:]
    assert "already holds an Optuna study named 'uri-study'" in again.stderr and not folder.exists()


@pytest.mark.e2e
def test_resume_refuses_when_the_input_files_changed(tmp_path, env, cli, datasets_dir):
    # A one-trial search on a copy of the data (a results folder resumes only where it was written,
    # so the search runs here), then one document added to that copy.
    data = tmp_path / "go_emotions"
    shutil.copytree(datasets_dir / "go_emotions", data)
    config = _experiment(
        tmp_path,
        "changed",
        train={"epochs": 1, "batch_size": 16},
        search={**ONE_TRIAL, "scheduler": {"name": "fifo"}},
        data={**SLICE, "path": str(data)},
    )
    first = _cli("search", str(config), env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    folder = tmp_path / "results" / "changed"
    summary = (folder / "summary.json").read_bytes()
    with open(data / "train.tsv", "a") as f:  # one more labelled document
        f.write("a document added after the search started\t3\tzzzzzzz\n")
    resumed = cli("resume", folder, env=env)
    assert resumed.returncode == 2 and resumed.stderr.count("\n") == 1, resumed.stderr[-3000:]
    assert "the data changed since this search started (changed: train.tsv;" in resumed.stderr
    assert "sweetspot.yaml" in resumed.stderr and (folder / "summary.json").read_bytes() == summary


@pytest.mark.e2e
def test_killed_driver_resumes_a_trial_from_its_newest_checkpoint(tmp_path, env):
    # Tune resumes a trial from the checkpoint its experiment snapshot names, and the snapshot (with
    # result.json) is uploaded every ~10 s (at once after `checkpoints_to_keep` checkpoints), while
    # the trial writes its checkpoints as it goes. TUNE_GLOBAL_CHECKPOINT_S and checkpoints_to_keep
    # widen that window so that the driver is always killed inside it: the snapshot knows no
    # checkpoint, the disk holds several.
    config = _experiment(
        tmp_path,
        "ckpt",
        train={"epochs": 2, "batch_size": 16, "eval_every_steps": 3},
        search={**ONE_TRIAL, "scheduler": {"name": "fifo"}, "checkpoints_to_keep": 20},
    )
    folder = tmp_path / "results" / "ckpt"

    def checkpoint_steps():  # 20 steps an epoch, a report and a checkpoint every 3 steps
        steps = {}
        for state in folder.glob("trial_*/checkpoint_*/trainer_state.json"):
            try:
                steps[state.parent.name] = json.loads(state.read_text())["step"]
            except (OSError, json.JSONDecodeError):
                pass  # being written
        return steps

    driver = subprocess.Popen(
        [sys.executable, "-m", "sweetspot.cli", "search", str(config)],
        cwd=REPO,
        env={**env, "TUNE_GLOBAL_CHECKPOINT_S": "3600"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: max(checkpoint_steps().values(), default=0) >= 9, timeout=300, interval=0.05)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the embedded Ray it started
        driver.wait()
    (trial_dir,) = folder.glob("trial_*")
    names = sorted(p.name for p in trial_dir.glob("checkpoint_*"))

    # The newest checkpoint may have been cut short by the kill (its report was never recorded): then
    # the trial redoes it from the one before. It is complete when every file its trainer state lists
    # is there at its size (trainable/checkpoint.py writes that list last).
    def complete(name: str) -> bool:
        try:
            listed = json.loads((trial_dir / name / "trainer_state.json").read_text()).get("files")
        except (OSError, ValueError):
            return False
        sizes = {p.name: p.stat().st_size for p in (trial_dir / name).iterdir() if p.is_file()}
        return bool(listed) and all(sizes.get(f) == size for f, size in listed.items())

    resume_from = json.loads((trial_dir / (names[-1] if complete(names[-1]) else names[-2]) / "trainer_state.json").read_text())
    assert 0 < resume_from["batch_in_epoch"] < 20  # killed mid-epoch, after a mid-epoch checkpoint
    before = {name: (trial_dir / name / "model.safetensors").read_bytes() for name in names[:-1]}

    resumed = _cli("resume", str(folder), env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = [json.loads(l) for l in (trial_dir / "result.json").read_text().splitlines()]
    first_after = [r for r in rows if r.get("iterations_since_restore") == 1][-1]  # the resumed run's first report
    assert first_after["step"] == resume_from["step"] + 3, (resume_from, first_after)
    # No report is missing from the records, the ones before the resume included; none is doubled.
    assert [r["step"] for r in rows] == sorted(set(range(3, 41, 3)) | {20, 40}), [r["step"] for r in rows]
    # The checkpoints written before the kill were kept, not written over by a rerun.
    for name, weights in before.items():
        assert (trial_dir / name / "model.safetensors").read_bytes() == weights, name
