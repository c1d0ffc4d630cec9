"""A trial that (re)starts continues from its newest complete checkpoint, with no report lost.

Why Tune alone does not: which checkpoint a restored trial resumes from, and the number of its
next checkpoint folder, come from Tune's experiment state, a snapshot the driver uploads every
~10 s (at once only after `checkpoints_to_keep` checkpoints of a trial) together with the trials'
result.json. A trial, though, writes each checkpoint to storage itself, before the driver has even
read the report. A driver killed between two uploads leaves checkpoints that neither the snapshot
nor result.json knows: `Tuner.restore` restarted the trial from an older checkpoint, or from step
0, and, numbering checkpoints from the snapshot, wrote over the newer ones.

`ResumeFromNewestCheckpoint` registers those checkpoints with a pending trial before Tune starts
its actor (the actor receives the trial's checkpoint counter), so Tune restores the newest and
numbers the next checkpoint after it. The reports that never reached result.json are appended to
it from the checkpoints, which carry their report (`trainable.entry.REPORT_FILE`).

Which checkpoints are complete: a trial reports checkpoint k only once its files are written,
and Tune copies them into the trial folder before the report reaches the driver, so every
checkpoint older than the newest is complete. The newest is complete when its report was recorded,
or when every file its `trainer_state.json` lists is there at its size
(`trainable.checkpoint.is_complete`); otherwise the kill may have cut its copy short, and the trial
redoes it from the one before (at most one report's worth of training).

The keep-best policy (search/runner.py's `checkpoint_config`): Tune keeps the checkpoint of the
report with the highest `improvement` (the trial's best, trainable/score.py) and always the latest;
`OptimizerStateInLatestOnly` removes the optimizer state from every checkpoint once a newer one is
registered, so a trial holds at most two checkpoints, one with optimizer state. A checkpoint loses
it only after a newer, complete one exists, which a resume then continues from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.fs
from ray import tune
from ray.train._internal.session import _TrainingResult

from sweetspot import layout
from sweetspot.search.records import read_result_file
from sweetspot.trainable.checkpoint import OPTIMIZER_FILE, STATE_FILE, is_complete
from sweetspot.trainable.entry import REPORT_FILE


def tolerate_deleted_checkpoints() -> None:
    """Makes the deletion of a trial's surplus checkpoint succeed when the checkpoint is already gone.

    Ray 2.60's checkpoint manager (in the driver) deletes the checkpoints over `num_to_keep` with
    `_delete_fs_path`, which raises FileNotFoundError for a missing folder, and that ends the whole
    search. After a killed driver a resume meets exactly that: the killed run deleted a checkpoint
    after Tune's last snapshot, which still lists it, and the resumed run deletes it again. Gone is
    what the deletion wants, so a missing path counts as deleted. (Ray internals: pinned to 2.60.x.)
    """
    import pyarrow.fs
    from ray.train._internal import checkpoint_manager

    original = checkpoint_manager._delete_fs_path
    if getattr(original, "tolerates_missing", False):
        return

    def delete(fs: pyarrow.fs.FileSystem, fs_path: str) -> None:
        if fs.get_file_info(fs_path).type == pyarrow.fs.FileType.NotFound:
            return
        original(fs=fs, fs_path=fs_path)

    delete.tolerates_missing = True
    checkpoint_manager._delete_fs_path = delete


class ResumeFromNewestCheckpoint(tune.Callback):
    """Before a pending trial starts (new, restored by a resume, or retried after a failure),
    registers the complete checkpoints in its folder that are newer than the latest one Tune knows."""

    def __init__(self):
        self._checked: set[str] = set()  # pending trials already reconciled

    def on_step_begin(self, iteration, trials, **info):
        # Each controller step begins here, before it starts any actor for a pending trial.
        for trial in trials:
            if trial.status == "PENDING" and trial.trial_id not in self._checked:
                self._checked.add(trial.trial_id)
                _register_newer_checkpoints(trial)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._checked.discard(trial.trial_id)  # pending again: it may have checkpointed before it failed


def _register_newer_checkpoints(trial) -> None:
    known = trial.checkpoint
    newer = [p for p in _checkpoints_on_disk(trial) if known is None or _index(p) > _index(known.path)]
    if not newer:
        return
    recorded = _recorded_reports(trial)
    fs = trial.storage.storage_filesystem
    if Path(newer[-1]).name not in recorded and not _complete(fs, newer[-1]):
        newer.pop()  # possibly torn by the kill: redone from the one before
    last = trial.run_metadata.last_result or {}
    missing = []
    for path in newer:
        row = recorded.get(Path(path).name)
        if row is None:  # its report never reached result.json: rebuild the row from the checkpoint
            try:
                with fs.open_input_stream(f"{path}/{REPORT_FILE}") as f:
                    report = json.load(f)
            except FileNotFoundError:
                break  # written before checkpoints carried their report: Tune redoes the rest
            row = {
                **report,
                "trial_id": trial.trial_id,
                "checkpoint_dir_name": Path(path).name,
                # every report of sweetspot's trainable comes with a checkpoint: one iteration each
                "training_iteration": int(last.get("training_iteration", 0)) + 1,
            }
            missing.append(row)
        last = row
        trial.on_checkpoint(_TrainingResult(checkpoint=tune.Checkpoint(path, filesystem=fs), metrics=row))
        trial.storage.current_checkpoint_index = _index(path)  # the trial process numbers its next one + 1
    if missing:  # appended to the driver's copy, which Tune appends to and uploads
        Path(trial.local_path).mkdir(parents=True, exist_ok=True)
        with open(Path(trial.local_path, layout.RESULT_FILE), "a") as f:
            f.writelines(json.dumps(row) + "\n" for row in missing)


class OptimizerStateInLatestOnly(tune.Callback):
    """When a trial's new checkpoint arrives (complete: Tune has copied it), removes the optimizer
    state from its checkpoints registered before it: only the latest resumes. Tune calls this before
    it registers the new one, which may then delete the older ones outright (the keep-best policy)."""

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        manager = trial.run_metadata.checkpoint_manager
        kept = getattr(manager, "_checkpoint_results", None) or [manager.latest_checkpoint_result]
        for result in {id(r): r for r in [*kept, manager.latest_checkpoint_result] if r is not None}.values():
            if result.checkpoint.path != checkpoint.path:
                strip_optimizer_state(result.checkpoint.filesystem, result.checkpoint.path)


def strip_optimizer_state(fs: pyarrow.fs.FileSystem, path: str) -> None:
    """Removes `optimizer.pt` from a checkpoint folder, first from the files its trainer state lists
    (so the folder still reads as complete)."""
    state_path, optimizer_path = f"{path}/{STATE_FILE}", f"{path}/{OPTIMIZER_FILE}"
    if fs.get_file_info(optimizer_path).type != pyarrow.fs.FileType.File:
        return
    try:
        with fs.open_input_stream(state_path) as f:
            state = json.load(f)
    except (FileNotFoundError, ValueError):
        return  # not a checkpoint of this format: left as it is
    if OPTIMIZER_FILE in state.get("files", {}):
        del state["files"][OPTIMIZER_FILE]
        with fs.open_output_stream(state_path) as f:
            f.write(json.dumps(state).encode())
    fs.delete_file(optimizer_path)


def _complete(fs: pyarrow.fs.FileSystem, path: str) -> bool:
    """Every file the checkpoint's trainer state lists is there at its size (a folder without that
    list, from before checkpoints carried it, counts as possibly torn)."""
    try:
        with fs.open_input_stream(f"{path}/{STATE_FILE}") as f:
            files = json.load(f).get("files")
    except (FileNotFoundError, ValueError):
        return False
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return bool(files) and is_complete(files, {i.base_name: i.size for i in infos if i.type == pyarrow.fs.FileType.File})


def _index(path: str) -> int:
    return int(Path(path).name.removeprefix(layout.CHECKPOINT_PREFIX))


def _checkpoints_on_disk(trial) -> list[str]:
    """The trial's checkpoint folders on its storage filesystem, oldest first."""
    fs, folder = trial.storage.storage_filesystem, trial.storage.trial_fs_path
    for attempt in range(3):
        try:
            infos = fs.get_file_info(pyarrow.fs.FileSelector(folder, allow_not_found=True))
            break
        except FileNotFoundError:
            # The folder was created while it was listed: pyarrow lists it, fails, then finds that it
            # exists and raises (seen once every few hundred short trials). Listed again, it is there.
            if attempt == 2:
                raise
    return sorted(
        (
            i.path
            for i in infos
            if i.type == pyarrow.fs.FileType.Directory
            and i.base_name.startswith(layout.CHECKPOINT_PREFIX)
            and i.base_name.removeprefix(layout.CHECKPOINT_PREFIX).isdigit()
        ),
        key=_index,
    )


def _recorded_reports(trial) -> dict[str, dict[str, Any]]:
    """The reports recorded in the trial's result.json, by the checkpoint they came with."""
    out = {}
    for line in read_result_file(trial).splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line: that report was not recorded
        if isinstance(row, dict) and row.get("checkpoint_dir_name"):
            out[row["checkpoint_dir_name"]] = row
    return out
