"""The optimizer table, the pure-PyTorch loop and its checkpoints, on a tiny DistilBERT."""

from __future__ import annotations

import math

import pytest
import torch

from data.config import DataConfig
from data.load import batches_from_windows, parquet_windows
from data.prepare import prepare
from trainable.config import ModelConfig, TrainConfig, TrialParams
from trainable.loop import TrainerState, evaluate, fit, load_checkpoint, save_checkpoint, train_epoch
from trainable.model import build_model
from trainable.optimizers import OPTIMIZERS, build_optimizer, default_lr


def test_default_learning_rates_are_torchs():
    assert {name: default_lr(name) for name in OPTIMIZERS} == {
        "adagrad": 1e-2, "adadelta": 1.0, "adam": 1e-3, "amsgrad": 1e-3, "adamw": 1e-3}
    model = torch.nn.Linear(2, 2)
    amsgrad = build_optimizer("amsgrad", model.parameters(), lr=1e-3, weight_decay=0.0)
    assert isinstance(amsgrad, torch.optim.Adam) and amsgrad.defaults["amsgrad"] is True
    adamw = build_optimizer("adamw", model.parameters(), lr=1e-3, weight_decay=0.0)
    assert adamw.defaults["weight_decay"] == 0.0  # never torch's silent 0.01
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        default_lr("lion")


def test_trial_params_fall_back_to_the_table_default_lr():
    params = TrialParams.from_trial_config({"optimizer": "adadelta"}, TrainConfig())
    assert params.lr == 1.0 and params.weight_decay == 0.0 and params.seed == 0
    assert TrialParams.from_trial_config({"optimizer": "adam", "lr": 3e-4, "seed": 2}, TrainConfig()).lr == 3e-4


@pytest.fixture(scope="module")
def slice_(tmp_path_factory, datasets_dir, minilm_path):
    cfg = DataConfig(source="go_emotions", path=str(datasets_dir / "go_emotions"), max_len=32,
                     train_limit=96, validation_limit=48, test_limit=16, cache_dir=str(tmp_path_factory.mktemp("cache")))
    return prepare(cfg, tokenizer=minilm_path)


def _batches(prepared, split, seed=None):
    return batches_from_windows(parquet_windows(prepared.split_dir(split), window_rows=64, shuffle_seed=seed),
                                batch_size=16, num_labels=prepared.num_labels, shuffle_seed=seed)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_trains_tiny_distilbert_without_nan(slice_, name):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="tiny-distilbert"), slice_.num_labels)
    optimizer = build_optimizer(name, model.parameters(), lr=default_lr(name), weight_decay=0.0)
    before = [p.detach().clone() for p in model.parameters()]
    state = TrainerState()
    loss = train_epoch(model, optimizer, _batches(slice_, "train", seed=1), state)
    assert math.isfinite(loss) and state.step == 6  # 96 documents / 16
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_checkpoint_round_trip_continues_identically(slice_, tmp_path):
    def fresh():
        torch.manual_seed(0)
        model = build_model(ModelConfig(name="tiny-distilbert"), slice_.num_labels)
        return model, build_optimizer("adam", model.parameters(), lr=1e-3, weight_decay=0.0)

    reports = []
    model, optimizer = fresh()
    fit(model, optimizer, epochs=2, state=TrainerState(), train_batches=lambda e: _batches(slice_, "train", seed=e),
        val_batches=lambda: _batches(slice_, "validation"), report=lambda m, s: reports.append(m))

    model, optimizer = fresh()  # run epoch 1, checkpoint, then resume epoch 2 in a new model
    state = fit(model, optimizer, epochs=1, state=TrainerState(), train_batches=lambda e: _batches(slice_, "train", seed=e),
                val_batches=lambda: _batches(slice_, "validation"), report=lambda m, s: None)
    save_checkpoint(tmp_path, model, optimizer, state)
    model, optimizer = fresh()
    state = load_checkpoint(tmp_path, model, optimizer)
    assert state.epoch == 1 and state.step == 6
    resumed = []
    fit(model, optimizer, epochs=2, state=state, train_batches=lambda e: _batches(slice_, "train", seed=e),
        val_batches=lambda: _batches(slice_, "validation"), report=lambda m, s: resumed.append(m))
    assert len(reports) == 2 and len(resumed) == 1
    for key in ("epoch", "train_loss", "val_loss", "val_p1", "val_p3"):
        assert resumed[0][key] == pytest.approx(reports[1][key], rel=1e-5), key


def test_non_finite_loss_reports_diverged_with_finite_values(slice_):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="tiny-distilbert"), slice_.num_labels)
    optimizer = build_optimizer("adam", model.parameters(), lr=1e-3, weight_decay=0.0)
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    reports = []
    fit(model, optimizer, epochs=3, state=TrainerState(), train_batches=lambda e: _batches(slice_, "train", seed=e),
        val_batches=lambda: _batches(slice_, "validation"), report=lambda m, s: reports.append(m))
    assert len(reports) == 1 and reports[0]["diverged"] == 1
    assert all(math.isfinite(v) for v in reports[0].values())


def test_evaluate_matches_a_direct_computation(slice_):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="tiny-distilbert"), slice_.num_labels)
    metrics = evaluate(model, _batches(slice_, "validation"))
    logits, targets = [], []
    with torch.no_grad():
        for batch in _batches(slice_, "validation"):
            logits.append(model(batch["input_ids"], batch["attention_mask"]))
            targets.append(batch["labels"])
    logits, targets = torch.cat(logits), torch.cat(targets)
    order = logits.argsort(dim=1, descending=True)
    for k in (1, 3, 5):
        expected = sum(targets[i, order[i, :k]].sum().item() / k for i in range(len(targets))) / len(targets)
        assert metrics[f"val_p{k}"] == pytest.approx(expected)
    assert metrics["val_loss"] == pytest.approx(torch.nn.functional.binary_cross_entropy_with_logits(logits, targets).item(), rel=1e-5)
