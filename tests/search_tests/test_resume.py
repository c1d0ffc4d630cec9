"""search/resume.py: what a resume reads from Tune's saved state (plain JSON), and the trial folders a
killed driver lost. The real kill-and-resume runs are in test_search_cli.py and test_reliability.py."""

import json

from sweetspot import layout
from sweetspot.search.resume import set_aside_lost_trials, unfinished_trials


def _state(folder, statuses, name="experiment_state-2026-12-03_10-00-00.json"):
    trial_data = [[json.dumps({"trial_id": t, "status": s}), "{}"] for t, s in statuses.items()]
    (folder / name).write_text(json.dumps({"trial_data": trial_data}))


def _trial(folder, trial_id, lines=1):
    d = folder / layout.trial_folder(trial_id)
    d.mkdir()
    (d / layout.RESULT_FILE).write_text("".join(json.dumps({"epoch": i + 1, "val_p1": 0.3}) + "\n" for i in range(lines)))
    return d


def test_unfinished_trials_are_read_from_the_newest_saved_state(tmp_path):
    _state(tmp_path, {"a": "TERMINATED", "b": "RUNNING"}, name="experiment_state-2026-12-03_09-00-00.json")
    _state(tmp_path, {"a": "TERMINATED", "b": "PENDING", "c": "PAUSED", "d": "ERROR"})
    assert unfinished_trials(str(tmp_path)) == {"b", "c"}


def test_trial_folders_the_saved_state_does_not_know_are_set_aside_not_deleted(tmp_path):
    _state(tmp_path, {"a": "TERMINATED", "b": "PENDING"})
    _trial(tmp_path, "a", lines=2)
    _trial(tmp_path, "b")
    lost = _trial(tmp_path, "c")
    content = (lost / layout.RESULT_FILE).read_bytes()
    assert set_aside_lost_trials(str(tmp_path)) == ["trial_c"]
    assert sorted(p.name for p in tmp_path.glob("trial_*")) == ["trial_a", "trial_b"]
    assert (tmp_path / layout.LOST_FOLDER / "trial_c" / layout.RESULT_FILE).read_bytes() == content
    assert set_aside_lost_trials(str(tmp_path)) == []  # a second resume finds nothing more


def test_without_a_saved_state_nothing_is_moved(tmp_path):
    _trial(tmp_path, "a")
    assert set_aside_lost_trials(str(tmp_path)) == [] and (tmp_path / "trial_a").is_dir()
    assert unfinished_trials(str(tmp_path)) == frozenset()
