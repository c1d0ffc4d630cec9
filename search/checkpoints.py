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

Which checkpoints are complete: a trial writes checkpoint k completely before it reports, and
only then trains on towards k + 1, so every checkpoint older than the newest is complete. The
newest is complete when its report was recorded; otherwise the kill may have cut it short, and
the trial redoes it from the one before (at most one report's worth of training).
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
from sweetspot.trainable.entry import REPORT_FILE


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
    if Path(newer[-1]).name not in recorded:
        newer.pop()  # possibly torn by the kill: redone from the one before
    fs = trial.storage.storage_filesystem
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
            row = {**report, "trial_id": trial.trial_id, "checkpoint_dir_name": Path(path).name,
                   # every report of sweetspot's trainable comes with a checkpoint: one iteration each
                   "training_iteration": int(last.get("training_iteration", 0)) + 1}
            missing.append(row)
        last = row
        trial.on_checkpoint(_TrainingResult(checkpoint=tune.Checkpoint(path, filesystem=fs), metrics=row))
        trial.storage.current_checkpoint_index = _index(path)  # the trial process numbers its next one + 1
    if missing:  # appended to the driver's copy, which Tune appends to and uploads
        Path(trial.local_path).mkdir(parents=True, exist_ok=True)
        with open(Path(trial.local_path, layout.RESULT_FILE), "a") as f:
            f.writelines(json.dumps(row) + "\n" for row in missing)


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
    return sorted((i.path for i in infos if i.type == pyarrow.fs.FileType.Directory and i.base_name.startswith(layout.CHECKPOINT_PREFIX)
                   and i.base_name.removeprefix(layout.CHECKPOINT_PREFIX).isdigit()), key=_index)


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
