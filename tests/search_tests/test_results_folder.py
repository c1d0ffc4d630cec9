"""Where a search writes and what it may delete: `<storage_path>/<name>` and nothing else, and an
Optuna study named by the whole results location (no Ray needed)."""

from __future__ import annotations

import pytest

from sweetspot.search.config import ConfigError, load_experiment_dict
from sweetspot.search.results_folder import delete_results as _delete_results
from sweetspot.search.results_folder import experiment_dir
from sweetspot.search.study_url import study_storage_url


def test_delete_removes_the_experiment_and_nothing_beside_it(tmp_path):
    config = load_experiment_dict({"name": "exp", "storage_path": str(tmp_path / "results")})
    (tmp_path / "results" / "exp" / "trial_1").mkdir(parents=True)
    (tmp_path / "results" / "other").mkdir()
    _delete_results(config, experiment_dir(config))
    assert not (tmp_path / "results" / "exp").exists() and (tmp_path / "results" / "other").is_dir()


@pytest.mark.parametrize("uri", [False, True])
def test_delete_refuses_a_results_folder_that_links_outside_storage_path(tmp_path, uri):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "exp").symlink_to(outside, target_is_directory=True)
    root = f"file://{tmp_path / 'results'}" if uri else str(tmp_path / "results")
    config = load_experiment_dict({"name": "exp", "storage_path": root})
    with pytest.raises(ConfigError, match="not deleted"):
        _delete_results(config, experiment_dir(config))
    assert (outside / "keep.txt").read_text() == "x" and (tmp_path / "results" / "exp").is_symlink()


def test_study_of_uri_results_is_keyed_by_the_whole_location(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    a = load_experiment_dict({"name": "exp", "storage_path": f"file://{tmp_path}/a"})
    b = load_experiment_dict({"name": "exp", "storage_path": f"file://{tmp_path}/b"})
    assert study_storage_url(a) != study_storage_url(b)  # same name, different experiments
    assert study_storage_url(a) == study_storage_url(
        load_experiment_dict({"name": "exp", "storage_path": f"file://{tmp_path}/a/"})
    )
    assert study_storage_url(a).startswith(f"sqlite:///{tmp_path}/home/.cache/sweetspot/optuna/exp-")
    local = load_experiment_dict({"name": "exp", "storage_path": str(tmp_path / "c")})
    assert study_storage_url(local) == f"sqlite:///{tmp_path / 'c' / 'exp' / 'optuna.db'}"
