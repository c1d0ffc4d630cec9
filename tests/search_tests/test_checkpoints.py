"""search/checkpoints.py's listing of a trial's checkpoints, when the trial's folder appears while
it is listed (a race the 200-trial load test hit: pyarrow's listing fails, then finds the folder and
raises FileNotFoundError, which ended the whole search)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow.fs
import pytest

from sweetspot.search.checkpoints import _checkpoints_on_disk


class _AppearsWhileListed(pyarrow.fs.FileSystemHandler):
    """A local filesystem whose first listing fails as pyarrow's does when the folder is created
    between its failed `opendir` and its existence check."""

    def __init__(self):
        self.local, self.listings = pyarrow.fs.LocalFileSystem(), 0

    def get_file_info_selector(self, selector):
        self.listings += 1
        if self.listings == 1:
            raise FileNotFoundError(f"Cannot list directory '{selector.base_dir}'. Detail: [errno 2] No such file or directory")
        return self.local.get_file_info(selector)

    # The rest: the local filesystem's.
    def get_type_name(self):
        return "appears-while-listed"

    def get_file_info(self, paths):
        return self.local.get_file_info(paths)

    def normalize_path(self, path):
        return path

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def create_dir(self, path, recursive):
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self.local.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        raise NotImplementedError

    def delete_file(self, path):
        self.local.delete_file(path)

    def move(self, src, dest):
        self.local.move(src, dest)

    def copy_file(self, src, dest):
        self.local.copy_file(src, dest)

    def open_input_stream(self, path):
        return self.local.open_input_stream(path)

    def open_input_file(self, path):
        return self.local.open_input_file(path)

    def open_output_stream(self, path, metadata):
        return self.local.open_output_stream(path)

    def open_append_stream(self, path, metadata):
        return self.local.open_append_stream(path)


def test_a_trial_folder_created_while_it_is_listed_is_listed_again(tmp_path):
    for name in ("checkpoint_000001", "checkpoint_000000", "checkpoint_tmp", "other"):
        (tmp_path / name).mkdir()
    handler = _AppearsWhileListed()
    trial = SimpleNamespace(
        storage=SimpleNamespace(storage_filesystem=pyarrow.fs.PyFileSystem(handler), trial_fs_path=str(tmp_path))
    )
    found = _checkpoints_on_disk(trial)
    assert [p.rsplit("/", 1)[1] for p in found] == ["checkpoint_000000", "checkpoint_000001"]
    assert handler.listings == 2


def test_a_trial_folder_that_is_not_there_has_no_checkpoints(tmp_path):
    trial = SimpleNamespace(
        storage=SimpleNamespace(storage_filesystem=pyarrow.fs.LocalFileSystem(), trial_fs_path=str(tmp_path / "trial_x"))
    )
    assert _checkpoints_on_disk(trial) == []


# ------------------------------------------------------------------------------------------------
# The keep-best policy through a real Tune run: the checkpoint of the trial's score (trainable/score.py)
# and the latest are kept, the latest alone with optimizer state.


def _scripted_trial(config):
    """Reports the scripted evaluations, each with a real checkpoint written by the trials' own
    background writer and the trials' own improvement count."""
    import torch
    from ray import tune

    from sweetspot.trainable import keys
    from sweetspot.trainable.checkpoint import BackgroundWriter
    from sweetspot.trainable.config import TrainConfig
    from sweetspot.trainable.loop import TrainerState, _improvement

    model = torch.nn.Linear(8, 4)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 8)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    state = TrainerState()

    def publish(metrics, folder):
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))

    writer = BackgroundWriter(publish)
    for epoch, p1, entropy in config["rows"]:
        row = {keys.EPOCH: epoch, keys.VAL_P1: p1, keys.VAL_PRED_ENTROPY: entropy, keys.VAL_TRUE_ENTROPY: 0.8, keys.DIVERGED: 0}
        state.epoch = int(epoch)
        row[keys.IMPROVEMENT] = _improvement(state, row, TrainConfig())
        writer.report(row, model, optimizer, scheduler, state)
    writer.close()


def test_a_trial_keeps_the_checkpoint_of_its_score_and_its_latest_only_the_latest_with_optimizer_state(ray_local, tmp_path):
    from ray import tune

    from sweetspot import layout
    from sweetspot.search.checkpoints import OptimizerStateInLatestOnly, _complete
    from sweetspot.search.tuner import checkpoint_config
    from sweetspot.trainable import score

    # A mid-epoch spike, the best epoch end (2), a tie after it, constant predictions above it, a last epoch below it.
    rows = [(1, 0.40, 0.5), (1.5, 0.90, 0.5), (2, 0.55, 0.5), (3, 0.55, 0.5), (4, 0.70, 0.0), (5, 0.50, 0.5)]
    results = tune.Tuner(
        _scripted_trial,
        param_space={"rows": rows},
        tune_config=tune.TuneConfig(metric="val_p1", mode="max"),
        run_config=tune.RunConfig(
            name="keep",
            storage_path=str(tmp_path),
            checkpoint_config=checkpoint_config(1),
            callbacks=[OptimizerStateInLatestOnly()],
        ),
    ).fit()
    assert not results.errors
    trial = Path(results[0].path)
    reported = layout.parse_result_lines((trial / layout.RESULT_FILE).read_text(), where="result.json")
    best = layout.best_checkpoint(reported)
    assert best["epoch"] == score.score(reported, budget=5).epoch == 2
    latest = reported[-1][layout.CHECKPOINT_DIR_KEY]
    kept = sorted(p.name for p in trial.glob(layout.CHECKPOINT_PREFIX + "*"))
    assert kept == sorted([best[layout.CHECKPOINT_DIR_KEY], latest])  # 6 checkpoints reported, 2 kept
    assert not (trial / best[layout.CHECKPOINT_DIR_KEY] / "optimizer.pt").exists()
    assert (trial / latest / "optimizer.pt").is_file()
    fs = pyarrow.fs.LocalFileSystem()
    assert all(_complete(fs, str(trial / name)) for name in kept)  # still read as complete
    (trial / latest / "model.safetensors").write_bytes(b"torn")
    assert not _complete(fs, str(trial / latest))


def test_deleting_a_checkpoint_that_is_already_gone_succeeds_and_an_existing_one_is_deleted(tmp_path):
    # Ray's checkpoint manager deletes surplus checkpoints through this name; a resume after a killed
    # driver deletes one again that the killed run already deleted (FileNotFoundError ended the search)
    import pyarrow.fs
    from ray.train._internal import checkpoint_manager

    from sweetspot.search.checkpoints import tolerate_deleted_checkpoints

    fs = pyarrow.fs.LocalFileSystem()
    if not getattr(checkpoint_manager._delete_fs_path, "tolerates_missing", False):  # not patched yet in this process
        with pytest.raises(FileNotFoundError):  # what Ray 2.60 does on its own
            checkpoint_manager._delete_fs_path(fs=fs, fs_path=str(tmp_path / "checkpoint_000000"))
    tolerate_deleted_checkpoints()
    tolerate_deleted_checkpoints()  # idempotent: wraps once
    checkpoint_manager._delete_fs_path(fs=fs, fs_path=str(tmp_path / "checkpoint_000000"))
    kept = tmp_path / "checkpoint_000001"
    kept.mkdir()
    (kept / "model.safetensors").write_bytes(b"x")
    checkpoint_manager._delete_fs_path(fs=fs, fs_path=str(kept))
    assert not kept.exists()
