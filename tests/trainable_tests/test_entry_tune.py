"""The trainable through the real Ray Tune path: a trial killed mid-run (SIGKILL) resumes from its
checkpoint and ends with the uninterrupted run's metrics; a NaN loss ends one trial as
`diverged` without crashing the search, its placeholder result carrying every metric key (a search
on `val_macro_f1` goes on); `train.eval_test` reports test_* at every evaluation; TensorBoard event
files are written per trial."""

from __future__ import annotations

import math
import os
import signal
import struct
from dataclasses import replace
from pathlib import Path

import pytest
import ray
from ray import tune

from sweetspot.data.config import DataConfig
from sweetspot.data.load import read_split
from sweetspot.data.prepare import prepare
from sweetspot.trainable import keys
from sweetspot.trainable.config import ModelConfig, TrainConfig
from sweetspot.trainable.entry import TrialSettings, train_fn

METRICS = ("step", "train_loss", "val_loss", "val_p1", "val_p3", "val_ndcg3", "val_pred_entropy", "val_embed_rank")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, datasets_dir, minilm_path):
    cfg = DataConfig(
        source="go_emotions",
        path=str(datasets_dir / "go_emotions"),
        max_len=32,
        train_limit=128,
        validation_limit=48,
        test_limit=16,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    prepared = prepare(cfg, tokenizer=minilm_path)
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    settings = TrialSettings(
        model=ModelConfig(name="tiny-distilbert"),
        train=TrainConfig(epochs=3, batch_size=16),
        num_labels=prepared.num_labels,
        num_train=128,
        pad_id=0,
        majority_p1=prepared.manifest["splits"]["validation"]["majority_p1"],
        prior_bce=prepared.label_prior_bce(),
        threads=1,
    )
    data = {
        "train_data": read_split(prepared.split_dir("train")),
        "val_data": read_split(prepared.split_dir("validation")),
        "test_data": read_split(prepared.split_dir("test")),
    }
    yield settings, data
    ray.shutdown()


def _train_and_val(data):
    return {k: data[k] for k in ("train_data", "val_data")}


def _tuner(settings, data, path, name, param_space, callbacks=(), max_failures=0, metric="val_p1"):
    return tune.Tuner(
        tune.with_resources(tune.with_parameters(train_fn, settings=settings, **data), {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(metric=metric, mode="max", max_concurrent_trials=2),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(path),
            callbacks=list(callbacks),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


class KillTrialOnce(tune.Callback):
    """Kills the trial's worker process with SIGKILL right after its first report."""

    def __init__(self):
        self.killed = False

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if not self.killed and result["epoch"] == 1:
            self.killed = True
            os.kill(result["pid"], signal.SIGKILL)


@pytest.mark.slow
def test_a_killed_trial_resumes_from_its_checkpoint_with_identical_metrics(setup, tmp_path):
    settings, data = setup
    space = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "seed": 7}
    data = _train_and_val(data)
    clean = _tuner(settings, data, tmp_path, "clean", space).fit()
    killer = KillTrialOnce()
    resumed = _tuner(settings, data, tmp_path, "killed", space, callbacks=[killer], max_failures=1).fit()
    assert killer.killed
    assert not clean.errors and not resumed.errors
    want = clean[0].metrics_dataframe
    got = resumed[0].metrics_dataframe
    assert list(want["epoch"]) == [1, 2, 3]
    assert got["pid"].nunique() == 2  # a second process ran the rest
    final = got.drop_duplicates("epoch", keep="last").set_index("epoch")
    for key in METRICS:
        assert final.loc[3, key] == pytest.approx(want.set_index("epoch").loc[3, key], rel=1e-5), key
        assert final.loc[2, key] == pytest.approx(want.set_index("epoch").loc[2, key], rel=1e-5), key


def _scalars(event_file):
    """Reads (tag, value) pairs from a TensorBoard event file (TFRecord framing + Event protos)."""
    from tensorboardX.proto.event_pb2 import Event

    data, pos, out = event_file.read_bytes(), 0, []
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        event = Event.FromString(data[pos + 12 : pos + 12 + length])
        out += [(v.tag, v.simple_value) for v in event.summary.value]
        pos += 12 + length + 4
    return out


@pytest.mark.slow
def test_nan_loss_stops_only_that_trial_as_diverged_and_tensorboard_files_are_written(setup, tmp_path):
    settings, data = setup
    results = _tuner(
        settings,
        _train_and_val(data),
        tmp_path,
        "nan2",
        {
            "optimizer": tune.grid_search(["sgd", "adam"]),
            "lr": tune.sample_from(lambda spec: 1e12 if spec.config.optimizer == "sgd" else 1e-3),
            "weight_decay": 0.0,
            "seed": 0,
        },
    ).fit()
    assert not results.errors
    by_opt = {r.config["optimizer"]: r for r in results}
    bad, good = by_opt["sgd"], by_opt["adam"]
    assert bad.metrics["diverged"] == 1 and bad.metrics["epoch"] == 0 and len(bad.metrics_dataframe) == 1
    assert all(isinstance(bad.metrics[k], float) and bad.metrics[k] < float("inf") for k in ("train_loss", "val_loss", "val_p1"))
    assert good.metrics["diverged"] == 0 and good.metrics["epoch"] == 3
    for r in (bad, good):
        events = list(Path(r.path).glob("events.out.tfevents.*"))
        assert len(events) == 1
        tags = {tag for tag, _ in _scalars(events[0])}
        assert "ray/tune/val_p1" in tags and "ray/tune/train_loss" in tags


DIVERGE_OR_NOT = {
    "optimizer": tune.grid_search(["sgd", "adam"]),
    "weight_decay": 0.0,
    "seed": 0,
    "lr": tune.sample_from(lambda spec: 1e12 if spec.config.optimizer == "sgd" else 1e-3),
}


@pytest.mark.slow
def test_a_diverged_trial_reports_every_metric_so_a_search_on_val_macro_f1_goes_on(setup, tmp_path):
    settings, data = setup
    # eval_test: the placeholder must carry the test_* keys too; every 5 of 8 steps: mid-epoch reports as well.
    settings = replace(settings, train=replace(settings.train, epochs=2, eval_test=True, eval_every_steps=5))
    results = _tuner(settings, data, tmp_path, "macro", DIVERGE_OR_NOT, metric="val_macro_f1").fit()
    assert not results.errors, [str(e).splitlines()[-1] for e in results.errors]
    by_opt = {r.config["optimizer"]: r for r in results}
    bad, good = by_opt["sgd"], by_opt["adam"]
    every_key = set(keys.REPORTED) | set(keys.TEST_KEYS)
    assert bad.metrics["diverged"] == 1 and every_key <= set(bad.metrics)
    assert all(math.isfinite(bad.metrics[k]) for k in every_key - {keys.NODE_ID})
    assert bad.metrics["val_macro_f1"] == bad.metrics["test_p1"] == 0.0 and bad.metrics["val_loss"] >= 1e9
    # train.eval_test: test_* metrics at every evaluation, mid-epoch ones included.
    rows = good.metrics_dataframe
    assert list(rows["epoch"]) == [0.625, 1, 1.25, 1.875, 2] and (rows["diverged"] == 0).all()
    for key in keys.TEST_KEYS:
        assert rows[key].notna().all() and all(math.isfinite(v) for v in rows[key]), key
