"""Shared fixtures: where the real datasets are, an isolated prepared-data cache, a local Ray."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _datasets_dir() -> Path:
    env = os.environ.get("SWEETSPOT_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The real datasets (go_emotions, reuters21578): $SWEETSPOT_DATA_DIR or ../shared/datasets."""
    folder = _datasets_dir()
    if not (folder / "go_emotions" / "train.tsv").is_file():
        pytest.fail(f"real datasets not found in {folder}: set SWEETSPOT_DATA_DIR (.ci/run sets it to ../shared/datasets)")
    return folder


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh prepared-data cache, so tests never read or write the user's ~/.cache."""
    folder = tmp_path / "prepared"
    monkeypatch.setenv("SWEETSPOT_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from sweetspot.trainable.model import tokenizer_name

    return tokenizer_name("minilm-l6")


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray of 2 CPUs, started once per test module."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def wait_for(predicate, timeout: float, interval: float = 1.0):
    """Polls `predicate` until it returns something truthy (returned) or `timeout` seconds pass."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out")
