"""The optimizer table, the pure-PyTorch loop and its checkpoints, on a tiny DistilBERT."""

from __future__ import annotations

import json
import math
import socket
from collections import Counter

import pyarrow.parquet as pq
import pytest
import torch

from sweetspot.data.config import DataConfig
from sweetspot.data.load import batches_from_windows, parquet_windows
from sweetspot.data.prepare import prepare
from sweetspot.trainable import keys
from sweetspot.trainable.config import ModelConfig, TrainConfig, TrialParams
from sweetspot.trainable.loop import TrainerState, _train_loss, evaluate, fit, load_checkpoint, save_checkpoint
from sweetspot.trainable.model import build_model
from sweetspot.trainable.optimizers import OPTIMIZERS, build_optimizer, build_scheduler, default_lr, param_groups, twin


def test_default_learning_rates_are_torchs():
    assert {name: default_lr(name) for name in OPTIMIZERS} == {
        "adagrad": 1e-2,
        "adadelta": 1.0,
        "adam": 1e-3,
        "amsgrad": 1e-3,
        "adamw": 1e-3,
        "sgd": 1e-3,
        "rmsprop": 1e-2,
    }
    model = torch.nn.Linear(2, 2)
    amsgrad = build_optimizer("amsgrad", model.parameters(), lr=1e-3, weight_decay=0.0)
    assert isinstance(amsgrad, torch.optim.Adam) and amsgrad.defaults["amsgrad"] is True
    adamw = build_optimizer("adamw", model.parameters(), lr=1e-3, weight_decay=0.0)
    assert adamw.defaults["weight_decay"] == 0.0  # never torch's silent 0.01
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        default_lr("lion")


def test_adamw_at_weight_decay_0_gives_adams_updates_exactly():
    """Why the region search runs AdamW at weight decay 0 once, as Adam (`twin`), and why AdamW's line
    at other decays may start from Adam's (OptimizerSpec.relative): with no decay it is Adam."""

    def run(name: str) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))
        opt = build_optimizer(name, param_groups(model, 0.0), lr=1e-2, weight_decay=0.0)
        data = torch.Generator().manual_seed(1)
        for _ in range(20):
            x, y = torch.randn(32, 8, generator=data), torch.randn(32, 4, generator=data)
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()]

    adam, adamw = run("adam"), run("adamw")
    assert all(torch.equal(a, b) for a, b in zip(adam, adamw))
    assert OPTIMIZERS["adamw"].relative == "adam" and OPTIMIZERS["amsgrad"].relative == "adam"
    assert twin("adamw", 0.0) == "adam" and twin("adamw", 0.01) is None and twin("amsgrad", 0.0) is None


def test_trial_params_fall_back_to_the_table_default_lr():
    params = TrialParams.from_trial_config({"optimizer": "adadelta"}, TrainConfig())
    assert params.lr == 1.0 and params.weight_decay == 0.0 and params.seed == 0
    assert TrialParams.from_trial_config({"optimizer": "adam", "lr": 3e-4, "seed": 2}, TrainConfig()).lr == 3e-4


@pytest.fixture(scope="module")
def slice_(tmp_path_factory, datasets_dir, minilm_path):
    cfg = DataConfig(
        source="go_emotions",
        path=str(datasets_dir / "go_emotions"),
        max_len=32,
        train_limit=96,
        validation_limit=48,
        test_limit=16,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    return prepare(cfg, tokenizer=minilm_path)


def _batches(prepared, split, seed=None):
    return batches_from_windows(
        parquet_windows(prepared.split_dir(split), window_rows=64, shuffle_seed=seed),
        batch_size=16,
        num_labels=prepared.num_labels,
        shuffle_seed=seed,
    )


def _fresh(prepared, name="adam", lr=1e-3, train=TrainConfig()):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="tiny-distilbert"), prepared.num_labels)
    optimizer = build_optimizer(name, model.parameters(), lr=lr, weight_decay=0.0)
    scheduler = build_scheduler(optimizer, schedule=train.schedule, total_steps=6 * train.epochs, warmup_ratio=train.warmup_ratio)
    return model, optimizer, scheduler


SPLITS = {"val": "validation", "test": "test"}  # metric prefix -> prepared split


def _fit(prepared, model, optimizer, scheduler, train, state, reports, prefixes=("val",)):
    return fit(
        model,
        optimizer,
        scheduler,
        train=train,
        state=state,
        steps_per_epoch=6,
        train_batches=lambda e: _batches(prepared, "train", seed=e),
        eval_batches={p: (lambda split=SPLITS[p]: _batches(prepared, split)) for p in prefixes},
        report=lambda m, s: reports.append(m),
        majority_p1=0.3,
    )


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_trains_tiny_distilbert_without_nan(slice_, name):
    model, optimizer, scheduler = _fresh(slice_, name, lr=default_lr(name))
    assert optimizer.param_groups[0]["lr"] == OPTIMIZERS[name].default_lr
    before = [p.detach().clone() for p in model.parameters()]
    reports = []
    state = _fit(slice_, model, optimizer, scheduler, TrainConfig(epochs=1), TrainerState(), reports)
    assert state.step == 6 and reports[0]["diverged"] == 0  # 96 documents / 16
    assert all(math.isfinite(v) for v in reports[0].values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize(
    "train",
    [TrainConfig(epochs=2), TrainConfig(epochs=2, eval_every_steps=4, schedule="linear", warmup_ratio=0.25, grad_clip=1.0)],
    ids=["per-epoch", "every-4-steps-mid-epoch"],
)
def test_checkpoint_round_trip_continues_identically(slice_, tmp_path, train):
    reports = []
    model, optimizer, scheduler = _fresh(slice_, train=train)
    _fit(slice_, model, optimizer, scheduler, train, TrainerState(), reports)

    # Interrupt after the first report (mid-epoch when reporting every 4 of 6 steps), resume in a new process's worth of objects.
    first = []

    class Stop(Exception):
        pass

    def stop_after_first(m, s):
        first.append(m)
        save_checkpoint(tmp_path, model, optimizer, scheduler, s)
        raise Stop

    model, optimizer, scheduler = _fresh(slice_, train=train)
    with pytest.raises(Stop):
        fit(
            model,
            optimizer,
            scheduler,
            train=train,
            state=TrainerState(),
            steps_per_epoch=6,
            train_batches=lambda e: _batches(slice_, "train", seed=e),
            eval_batches={"val": lambda: _batches(slice_, "validation")},
            report=stop_after_first,
            majority_p1=0.3,
        )
    model, optimizer, scheduler = _fresh(slice_, train=train)
    torch.manual_seed(123)  # the checkpoint's RNG state must win over whatever the process has
    state = load_checkpoint(tmp_path, model, optimizer, scheduler)
    resumed = []
    _fit(slice_, model, optimizer, scheduler, train, state, resumed)
    assert first[0] == pytest.approx(reports[0])
    assert len(resumed) == len(reports) - 1
    for got, want in zip(resumed, reports[1:]):
        for key in ("epoch", "step", "train_loss", "val_loss", "val_p1", "val_p3", "val_ndcg5", "val_pred_entropy"):
            assert got[key] == pytest.approx(want[key], rel=1e-5), key


def test_an_epoch_end_that_eval_every_steps_also_hits_is_evaluated_and_reported_once(slice_):
    # 96 documents / 16 = 6 steps an epoch; every 3 steps hits each epoch's last step too.
    train = TrainConfig(epochs=2, eval_every_steps=3)
    model, optimizer, scheduler = _fresh(slice_, train=train)
    reports = []  # entry's report callback checkpoints and calls tune.report: one call = one of each
    _fit(slice_, model, optimizer, scheduler, train, TrainerState(), reports)
    assert [(r["epoch"], r["step"]) for r in reports] == [(0.5, 3), (1, 6), (1.5, 9), (2, 12)]


def test_non_finite_loss_reports_diverged_with_finite_worst_values_under_every_healthy_key(slice_):
    healthy = []
    _fit(slice_, *_fresh(slice_), TrainConfig(epochs=1), TrainerState(), healthy, prefixes=("val", "test"))
    model, optimizer, scheduler = _fresh(slice_)
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    reports = []
    _fit(slice_, model, optimizer, scheduler, TrainConfig(epochs=3), TrainerState(), reports, prefixes=("val", "test"))
    assert len(reports) == 1 and reports[0]["diverged"] == 1
    placeholder = reports[0]
    assert all(math.isfinite(v) for v in placeholder.values())
    assert (
        set(placeholder)
        == set(healthy[0])
        == set(keys.REPORTED + keys.TEST_KEYS) - {keys.MAJORITY_P1, keys.PRIOR_BCE, keys.NODE_ID, keys.SEED}
    )
    for prefix in ("val", "test"):
        assert placeholder[f"{prefix}_loss"] >= 1e9 and placeholder[f"{prefix}_macro_f1"] == placeholder[f"{prefix}_p1"] == 0.0
    assert placeholder["train_loss"] >= 1e9 and placeholder["collapsed"] == 0


def _pool_twice(rank: int, port: int, folder) -> None:
    """One of 2 gloo workers: reports after 2 documents of loss rank+1 each, then after 1 more of
    loss 10 × (rank+1); the second time also from rank 0's state, as after a resume."""
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    state = TrainerState(loss_sum=2.0 * (rank + 1), loss_docs=2)
    first = _train_loss(state, torch.device("cpu"))
    saved = [vars(state)]  # rank 0's state, which a resume loads into every worker
    torch.distributed.broadcast_object_list(saved, src=0)
    resumed = TrainerState(**saved[0])
    results = []
    for s in (state, resumed):
        s.loss_sum, s.loss_docs = s.loss_sum + 10.0 * (rank + 1), s.loss_docs + 1
        results.append(_train_loss(s, torch.device("cpu")))
    (folder / f"{rank}.json").write_text(json.dumps([first, *results]))
    torch.distributed.destroy_process_group()


def test_ddp_train_loss_is_the_mean_over_all_workers_documents_across_reports(tmp_path):
    with socket.socket() as s:  # a free port for the process group's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_pool_twice, args=(port, tmp_path), nprocs=2)
    # First: (2×1 + 2×2) / 4 documents; then all 6 documents: (2 + 4 + 10 + 20) / 6.
    for rank in (0, 1):
        assert json.loads((tmp_path / f"{rank}.json").read_text()) == pytest.approx([1.5, 6.0, 6.0])


class _MeanOfEmbeddings(torch.nn.Module):
    """The classifier's interface (embed, head) without a transformer, whose mask checks read
    tensors on the host: here every host read in a training step is the loop's own."""

    def __init__(self, num_labels: int):
        super().__init__()
        self.table = torch.nn.Embedding(30522, 8)
        self.head = torch.nn.Linear(8, num_labels)

    def embed(self, input_ids, attention_mask):
        mask = attention_mask.unsqueeze(-1).float()  # [B, T, 1]
        return (self.table(input_ids) * mask).sum(1) / mask.sum(1)  # [B, 8]

    def forward(self, input_ids, attention_mask):
        return self.head(self.embed(input_ids, attention_mask))


def test_a_steps_loss_is_read_on_the_host_only_after_the_next_step_is_queued(slice_, monkeypatch):
    # On a GPU a host read (`.item()`, `bool(tensor)`) waits for every queued kernel; reading the loss
    # of the step just queued leaves the GPU idle while the host builds the next batch.
    torch.manual_seed(0)
    model = _MeanOfEmbeddings(slice_.num_labels)
    optimizer = build_optimizer("adam", model.parameters(), lr=1e-3, weight_decay=0.0)
    scheduler = build_scheduler(optimizer, schedule="constant", total_steps=6)
    events = []
    for name in ("item", "__bool__", "__float__"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, _read=original: (events.append("read"), _read(self))[1])
    optimizer.register_step_post_hook(lambda *args: events.append("step"))
    reports = []
    _fit(slice_, model, optimizer, scheduler, TrainConfig(epochs=1), TrainerState(), reports)
    assert events[:4] == ["step", "step", "read", "step"]
    assert reports[0]["train_loss"] > 0 and math.isfinite(reports[0]["train_loss"])


def test_evaluate_matches_a_direct_computation(slice_):
    model, _, _ = _fresh(slice_)
    result = evaluate(model, _batches(slice_, "validation"), majority_p1=0.3)
    logits, targets = [], []
    with torch.no_grad():
        for batch in _batches(slice_, "validation"):
            logits.append(model(batch["input_ids"], batch["attention_mask"]))
            targets.append(batch["labels"])
    logits, targets = torch.cat(logits), torch.cat(targets)
    order = logits.argsort(dim=1, descending=True)
    for k in (1, 3, 5):
        expected = sum(targets[i, order[i, :k]].sum().item() / k for i in range(len(targets))) / len(targets)
        assert result[f"val_p{k}"] == pytest.approx(expected)
    assert result["val_loss"] == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(logits, targets).item(), rel=1e-5
    )
    with torch.no_grad():
        pooled = torch.cat([model.embed(b["input_ids"], b["attention_mask"]) for b in _batches(slice_, "validation")])
    sv = torch.linalg.svdvals(pooled.double())
    p = sv / sv.sum()
    assert result["val_embed_rank"] == pytest.approx(torch.exp(-(p * p.log()).sum()).item(), rel=1e-4)


class _ZeroEncoder(torch.nn.Module):
    """Wraps an encoder and zeroes its output: every document maps to one point."""

    def __init__(self, encoder):
        super().__init__()
        self.inner, self.config = encoder, encoder.config

    def forward(self, **kwargs):
        out = self.inner(**kwargs)
        out.last_hidden_state = torch.zeros_like(out.last_hidden_state)
        return out


def test_a_model_forced_to_constant_output_is_flagged_collapsed(slice_):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="minilm-l6"), slice_.num_labels)
    val = pq.read_table(slice_.split_dir("validation")).to_pylist()
    share = Counter(i for r in val for i in r["label_ids"])
    floor = max(share.values()) / len(val)  # P@1 of the best constant prediction on this split
    # Pretrained MiniLM with a fresh head: each document gets its own ranking, so not collapsed.
    healthy = evaluate(model, _batches(slice_, "validation"), majority_p1=floor)
    assert healthy["val_pred_entropy"] > 0.2 and healthy["val_embed_rank"] > 5 and healthy["collapsed"] == 0
    model.encoder = _ZeroEncoder(model.encoder)  # now every document maps to one point
    result = evaluate(model, _batches(slice_, "validation"), majority_p1=floor)
    assert result["val_pred_entropy"] == 0.0 and result["val_distinct_top5"] == pytest.approx(1 / 48)
    assert result["val_embed_rank"] == pytest.approx(1.0, abs=1e-6)
    assert result["val_p1"] <= floor and result["collapsed"] == 1


def test_decay_can_spare_biases_and_layernorm():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    groups = param_groups(model, 0.01, decay_bias_and_norm=False)
    assert [len(g["params"]) for g in groups] == [1, 3] and [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert len(param_groups(model, 0.01)[0]["params"]) == 4


def test_linear_schedule_warms_up_then_decays_to_zero():
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    scheduler = build_scheduler(optimizer, schedule="linear", total_steps=10, warmup_ratio=0.2)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0]) and lrs[-1] == pytest.approx(1 / 8)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fast_optimizer_kernels_make_the_same_update_as_torchs_default(name):
    torch.manual_seed(0)
    reference, fast = torch.nn.Linear(32, 8), torch.nn.Linear(32, 8)
    fast.load_state_dict(reference.state_dict())
    spec = OPTIMIZERS[name]
    slow = getattr(torch.optim, spec.torch_class)(
        reference.parameters(), lr=spec.default_lr, weight_decay=0.01, foreach=False, **spec.kwargs
    )
    quick = build_optimizer(name, fast.parameters(), lr=spec.default_lr, weight_decay=0.01)
    assert quick.defaults.get("fused") or quick.defaults.get("foreach")
    for _ in range(5):
        x = torch.randn(4, 32)
        for model, optimizer in ((reference, slow), (fast, quick)):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
    for a, b in zip(reference.parameters(), fast.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_reports_carry_the_recent_loss_and_gradient_norm_since_the_previous_report(slice_):
    # 6 steps an epoch, a report every 3: each report averages exactly the 3 steps before it
    train = TrainConfig(epochs=1, eval_every_steps=3, grad_clip=1e9)  # clipping at 1e9 returns the norm, changes nothing
    model, optimizer, scheduler = _fresh(slice_, train=train)
    step_norms = []
    original_step = optimizer.step

    def spy(*args, **kwargs):  # the loss and gradients of the step being taken
        step_norms.append(float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])))
        return original_step(*args, **kwargs)

    optimizer.step = spy
    reports = []
    _fit(slice_, model, optimizer, scheduler, train, TrainerState(), reports)
    assert [r["step"] for r in reports] == [3, 6]
    for i, r in enumerate(reports):
        assert r["grad_norm"] == pytest.approx(sum(step_norms[3 * i : 3 * i + 3]) / 3, rel=1e-5)
        assert 0 < r["train_loss_recent"] < 1.0
    # the first report's recent loss is the epoch-so-far loss (no report before it)
    assert reports[0]["train_loss_recent"] == pytest.approx(reports[0]["train_loss"], rel=1e-5)


def test_the_label_prior_plateau_is_the_bce_of_predicting_each_labels_training_rate(slice_):
    labels = torch.zeros(slice_.manifest["splits"]["train"]["rows"], slice_.num_labels)
    for i, row in enumerate(pq.read_table(slice_.split_dir("train")).to_pylist()):
        labels[i, row["label_ids"]] = 1.0
    rates = labels.mean(0).clamp(1e-12, 1 - 1e-12).expand_as(labels)
    direct = torch.nn.functional.binary_cross_entropy(rates, labels)
    assert slice_.label_prior_bce() == pytest.approx(float(direct), rel=1e-4)
