"""trainable/checkpoint.py: the checkpoint leaves the training step. The snapshot is the state at
the report (not what training does after it), the report that registers a checkpoint sees a
complete folder, a write still in flight is waited for, reports keep their order, errors surface in
the training thread; and the keep-best count (`improvement`) follows trainable/score.py's score."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from safetensors.torch import load_file

from sweetspot import layout
from sweetspot.trainable import keys, score
from sweetspot.trainable.checkpoint import OPTIMIZER_FILE, STATE_FILE, WEIGHTS_FILE, BackgroundWriter, is_complete
from sweetspot.trainable.config import TrainConfig
from sweetspot.trainable.loop import TrainerState, _improvement, load_checkpoint


def _model_and_optimizer():
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 64)).sum().backward()
    optimizer.step()  # Adam's state exists after a step
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return model, optimizer, scheduler


def _step(model, optimizer):
    optimizer.zero_grad()
    model(torch.randn(4, 64)).sum().backward()
    optimizer.step()


def test_the_written_checkpoint_is_the_state_at_the_report_and_complete_when_reported(tmp_path):
    model, optimizer, scheduler = _model_and_optimizer()
    release = threading.Event()
    seen = []

    def publish(metrics, folder):
        release.wait(10)  # the write is slow: training goes on meanwhile
        files = json.loads((folder / STATE_FILE).read_text())["files"]
        seen.append(
            (
                metrics["epoch"],
                is_complete(files, {p.name: p.stat().st_size for p in folder.iterdir()}),
                load_file(str(folder / WEIGHTS_FILE))["weight"].clone(),
            )
        )
        (tmp_path / f"kept{metrics['epoch']}").mkdir()
        for p in folder.iterdir():
            (tmp_path / f"kept{metrics['epoch']}" / p.name).write_bytes(p.read_bytes())

    writer = BackgroundWriter(publish)
    at_report = model.weight.detach().clone()
    writer.report({"epoch": 1}, model, optimizer, scheduler, TrainerState(epoch=1, step=1))
    for _ in range(3):
        _step(model, optimizer)  # training goes on while the checkpoint is written
    assert not seen  # not reported before its files are written
    release.set()
    writer.report({"epoch": 2}, model, optimizer, scheduler, TrainerState(epoch=2, step=4))  # waits for the first
    writer.close()
    assert [(e, complete) for e, complete, _ in seen] == [(1, True), (2, True)]  # in order, each complete
    assert torch.equal(seen[0][2], at_report) and not torch.equal(seen[0][2], seen[1][2])
    assert torch.equal(seen[1][2], model.weight.detach())
    assert len(writer.stats.waits) == 2 and len(writer.stats.writes) == 2
    # What was written resumes: the second checkpoint's weights, optimizer and progress.
    fresh, fresh_opt, fresh_sched = _model_and_optimizer()
    state = load_checkpoint(tmp_path / "kept2", fresh, fresh_opt, fresh_sched)
    assert state.epoch == 2 and state.step == 4 and torch.equal(fresh.weight, model.weight)
    for a, b in zip(fresh_opt.state_dict()["state"].values(), optimizer.state_dict()["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])


def test_a_write_error_is_raised_in_the_training_thread(tmp_path):
    model, optimizer, scheduler = _model_and_optimizer()

    def publish(metrics, folder):
        raise OSError("disk full")

    writer = BackgroundWriter(publish)
    writer.report({"epoch": 1}, model, optimizer, scheduler, TrainerState())
    with pytest.raises(OSError, match="disk full"):
        writer.report({"epoch": 2}, model, optimizer, scheduler, TrainerState())
    writer.close()


def test_a_failed_last_write_is_raised_at_close():
    model, optimizer, scheduler = _model_and_optimizer()
    writer = BackgroundWriter(lambda metrics, folder: (_ for _ in ()).throw(OSError("no space")))
    writer.report({"epoch": 1}, model, optimizer, scheduler, TrainerState())
    with pytest.raises(OSError, match="no space"):
        writer.close()


def test_a_checkpoint_without_optimizer_state_does_not_resume(tmp_path):
    model, optimizer, scheduler = _model_and_optimizer()
    from sweetspot.trainable.loop import save_checkpoint

    save_checkpoint(tmp_path, model, optimizer, scheduler, TrainerState())
    (tmp_path / OPTIMIZER_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="only a trial's latest checkpoint"):
        load_checkpoint(tmp_path, model, optimizer, scheduler)


def _row(epoch, p1, pred_entropy=0.5):
    return {keys.EPOCH: epoch, keys.VAL_P1: p1, keys.VAL_PRED_ENTROPY: pred_entropy, keys.VAL_TRUE_ENTROPY: 0.8, keys.DIVERGED: 0}


def test_the_improvement_count_marks_the_checkpoint_of_the_score():
    # A mid-epoch spike, a tie (the earlier epoch keeps it), constant predictions above the best: none count.
    rows = [_row(1, 0.40), _row(1.5, 0.90), _row(2, 0.55), _row(3, 0.55), _row(4, 0.70, pred_entropy=0.0), _row(5, 0.50)]
    state, train = TrainerState(), TrainConfig()
    for i, row in enumerate(rows):
        row[keys.IMPROVEMENT] = _improvement(state, row, train)
        row[layout.CHECKPOINT_DIR_KEY] = f"checkpoint_{i:06d}"
    assert [r[keys.IMPROVEMENT] for r in rows] == [1, 0, 2, 0, 0, 0]
    best = layout.best_checkpoint(rows)
    assert best[keys.EPOCH] == score.score(rows, budget=5).epoch == 2 and best[layout.CHECKPOINT_DIR_KEY] == "checkpoint_000002"
    assert state.best_value == 0.55 and state.improvements == 2
