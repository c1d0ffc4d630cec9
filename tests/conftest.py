"""Shared fixtures. Each costly thing is made once per session and shared; a test that changes one
works on its own copy.

- `datasets_dir`: the real datasets (session).
- `cache_dir`: a fresh, empty prepared-data cache for one test (for "nothing written" checks).
- `slice_cache`: a prepared-data cache holding `SLICE` tokenised for the tiny model, made once per
  session: point SWEETSPOT_CACHE_DIR at it (`search_env`) and a search skips its tokenisation.
- `full_go_emotions`: all of GoEmotions prepared (session): the only full-size tokenisation.
- `search_env`: the environment of a `sweetspot` subprocess: the real datasets, `slice_cache`, an
  embedded Ray (RAY_ADDRESS unset).
- `finished_search`: one finished tiny search (session, read only): copy it (`shutil.copytree`) before
  changing, resuming or tampering with it.
- `cli`: `sweetspot.cli.main(argv)` in this process, returning what a subprocess would (returncode,
  stdout, stderr): for messages and exit codes. A `python -m sweetspot.cli` subprocess costs ~5 s of
  imports before it does anything; keep subprocesses for searches and for the process-level contract
  (no traceback, Ray's shutdown, signals).
- `ray_local`: a local Ray of 2 CPUs (module).
- `wait_for`: polls a predicate until it is truthy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The go_emotions slice of the tiny searches: 320 training documents, 20 steps an epoch at batch 16.
SLICE = {"source": "go_emotions", "max_len": 48, "train_limit": 320, "validation_limit": 64, "test_limit": 32}
TINY_MODEL = {"name": "tiny-distilbert"}


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


@pytest.fixture(scope="session")
def slice_cache(tmp_path_factory, datasets_dir) -> Path:
    """A prepared-data cache holding `SLICE` for the tiny model, prepared once per session. Searches
    given it (SWEETSPOT_CACHE_DIR) find their data prepared; a test that checks what a prepare
    writes uses `cache_dir` instead."""
    from sweetspot.data.config import DataConfig
    from sweetspot.data.prepare import prepare
    from sweetspot.trainable.model import tokenizer_name

    folder = tmp_path_factory.mktemp("slice-cache")
    prepare(
        DataConfig(**SLICE, path=str(datasets_dir / "go_emotions")),
        tokenizer=tokenizer_name(TINY_MODEL["name"]),
        cache_dir=folder,
    )
    return folder


@pytest.fixture(scope="session")
def full_go_emotions(tmp_path_factory, datasets_dir, minilm_path):
    """All of GoEmotions (43,410 / 5,426 / 5,427 documents) prepared for MiniLM at max_len 64, once
    per session: the only full-size tokenisation in the tests (~1 min on 2 cores)."""
    from sweetspot.data.config import DataConfig
    from sweetspot.data.prepare import prepare

    return prepare(
        DataConfig(source="go_emotions", path=str(datasets_dir / "go_emotions"), max_len=64),
        tokenizer=minilm_path,
        cache_dir=tmp_path_factory.mktemp("full-go-emotions"),
    )


@pytest.fixture(scope="session")
def search_env(datasets_dir, slice_cache) -> dict[str, str]:
    """The environment of a `sweetspot` subprocess: the real datasets, `slice_cache`, an embedded Ray."""
    return {**os.environ, "SWEETSPOT_DATA_DIR": str(datasets_dir), "SWEETSPOT_CACHE_DIR": str(slice_cache), "RAY_ADDRESS": ""}


def sweetspot_subprocess(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m sweetspot.cli ARGS` in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout
    )


@pytest.fixture(scope="session")
def finished_search(tmp_path_factory, search_env) -> Path:
    """The results folder of one finished search, run once per session through the CLI: the tiny
    model on `SLICE` (data.path: the real go_emotions), one trial (adam, lr 1e-3), 2 epochs, a report
    and checkpoint every 3 steps, ASHA (grace 1, reduction 2). Read only: copy it to change it."""
    import yaml

    root = tmp_path_factory.mktemp("finished")
    config = root / "finished.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "finished",
                "storage_path": str(root / "results"),
                "data": {**SLICE, "path": str(Path(search_env["SWEETSPOT_DATA_DIR"]) / "go_emotions")},
                "model": TINY_MODEL,
                "train": {"epochs": 2, "batch_size": 16, "eval_every_steps": 3},
                "search": {
                    "algorithm": "grid",
                    "space": {"optimizer": ["adam"], "lr": [0.001], "weight_decay": [0.0]},
                    "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
                },
            }
        )
    )
    run = sweetspot_subprocess("search", str(config), env=search_env)
    assert run.returncode == 0, run.stderr[-3000:]
    return root / "results" / "finished"


@pytest.fixture(scope="session")
def minilm_search(tmp_path_factory, datasets_dir) -> dict:
    """One real search through the CLI, run once per session and shared by the report and export tests
    (read only): MiniLM on a go_emotions slice, the grid Adam vs AdamW x lr {2e-4, 2e-2} x weight decay
    {0, 0.01}, 2 epochs. 2e-2 collapses (every document gets the most frequent label) and 2e-4 recovers
    from the early collapse within 2 epochs of 800 documents at batch size 8 (measured; fewer steps stay
    collapsed), so every report figure has something to draw and the winner has a checkpoint to export.
    Returns {"folder", "env", "tmp"}."""
    tmp = tmp_path_factory.mktemp("real")
    config = tmp / "real.yaml"
    config.write_text(f"""
name: real
storage_path: {tmp / "results"}
data: {{source: go_emotions, max_len: 24, train_limit: 800, validation_limit: 96, test_limit: 32}}
model: {{name: minilm-l6}}
train: {{epochs: 2, batch_size: 8}}
search:
  algorithm: grid
  space: {{optimizer: [adam, adamw], lr: [2.0e-4, 2.0e-2], weight_decay: [0.0, 0.01]}}
  scheduler: {{name: fifo}}
  max_concurrent_trials: 2
resources: {{cpus_per_trial: 1}}
""")
    env = {**os.environ, "SWEETSPOT_DATA_DIR": str(datasets_dir), "SWEETSPOT_CACHE_DIR": str(tmp / "cache"), "RAY_ADDRESS": ""}
    search = sweetspot_subprocess("search", str(config), env=env, timeout=900)
    assert search.returncode == 0, search.stdout[-3000:] + search.stderr[-3000:]
    return {"folder": tmp / "results" / "real", "env": env, "tmp": tmp}


@pytest.fixture
def cli(capsys, monkeypatch):
    """`cli(*argv, env=None)`: `sweetspot.cli.main(argv)` in this process, under `env` (the whole
    environment, as a subprocess would get it; unchanged when None). Returns a CompletedProcess."""
    from sweetspot.cli import main

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        capsys.readouterr()  # what the test printed before is not this command's output
        with monkeypatch.context() as m:
            if env is not None:
                for name in set(os.environ) - set(env):
                    m.delenv(name)
                for name, value in env.items():
                    if os.environ.get(name) != value:
                        m.setenv(name, value)
            code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["sweetspot", *args], code, out, err)

    return run


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
