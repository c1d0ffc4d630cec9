"""Security of a results folder, through the CLI on one real search (tiny model, local Ray):
Tune's state is signed and `resume` refuses state it did not sign (no pickle of it is loaded);
`analyze` and `status` load no pickle at all; the study storage's secret (named as `${VAR}`) is
never written into the results folder, the report or the output; the embedded Ray listens on
127.0.0.1 only."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from sweetspot import signing
from tests.conftest import REPO

SECRET = "s3cr3t-7f1c9e"  # the value of the study storage's ${VAR}: it must appear nowhere in the results
SLICE = {"source": "go_emotions", "max_len": 48, "train_limit": 320, "validation_limit": 64, "test_limit": 32}


def _cli(*args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "sweetspot.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=timeout)


class _Marker:
    """A pickle that, when loaded, creates the file `path` (what an attacker's code could do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).digest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def searched(tmp_path_factory, datasets_dir):
    """A finished TPE search whose Optuna study lives at a path named through ${SWEETSPOT_TEST_STUDY_DIR}."""
    root = tmp_path_factory.mktemp("secure")
    (root / SECRET).mkdir()
    env = {**os.environ, "SWEETSPOT_DATA_DIR": str(datasets_dir), "SWEETSPOT_CACHE_DIR": str(root / "cache"), "RAY_ADDRESS": "",
           "XDG_CONFIG_HOME": str(root / "config"), "SWEETSPOT_TEST_STUDY_DIR": SECRET}
    env.pop(signing.KEY_ENV, None)
    config = root / "secure.yaml"
    config.write_text(yaml.safe_dump({
        "name": "secure", "storage_path": str(root / "results"), "data": SLICE, "model": {"name": "tiny-distilbert"},
        "train": {"epochs": 1, "batch_size": 16},
        "search": {"algorithm": "tpe", "num_samples": 2, "max_concurrent_trials": 2, "scheduler": {"name": "fifo"},
                   "study_storage": f"sqlite:///{root}/${{SWEETSPOT_TEST_STUDY_DIR}}/study.db",
                   "space": {"optimizer": ["adam"], "lr": {"low": 1e-4, "high": 1e-2}}}}))
    # While it runs: every socket that the driver or a process under it (the embedded Ray) listens on.
    out, err = root / "search.out", root / "search.err"
    with open(out, "w") as o, open(err, "w") as e:
        driver = subprocess.Popen([sys.executable, "-m", "sweetspot.cli", "search", str(config)], cwd=REPO, env=env, stdout=o, stderr=e)
        listening: set[tuple[str, int, str]] = set()
        deadline = time.monotonic() + 600
        while driver.poll() is None and time.monotonic() < deadline:
            listening |= _listening(driver.pid)
            time.sleep(0.5)
        if driver.poll() is None:
            driver.kill()
    run = subprocess.CompletedProcess(driver.args, driver.wait(), out.read_text(), err.read_text())
    assert run.returncode == 0, run.stderr[-3000:]
    return root, root / "results" / "secure", env, run, listening


def _listening(pid: int) -> set[tuple[str, int, str]]:
    """(address, port, process name) of the listening TCP sockets of `pid` and its descendants."""
    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    names = {}
    for p in tree:
        try:
            names[p.pid] = p.name()
        except psutil.Error:
            pass
    return {(c.laddr.ip, c.laddr.port, names[c.pid]) for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in names}


def test_the_embedded_ray_listens_on_loopback_only(searched):
    *_, listening = searched
    assert len({name for _, _, name in listening}) >= 3, listening  # the GCS, the raylet, trial workers at least
    exposed = sorted(s for s in listening if not ipaddress.ip_address(s[0].removeprefix("::ffff:")).is_loopback)
    assert exposed == []


def test_the_study_storage_secret_is_nowhere_in_the_results_folder_nor_the_output(searched):
    root, folder, env, run, _ = searched
    assert (root / SECRET / "study.db").is_file()  # the study went where ${SWEETSPOT_TEST_STUDY_DIR} pointed
    analyzed = _cli("analyze", str(folder), "--no-baselines", "--no-attention", env=env)
    assert analyzed.returncode == 0, analyzed.stderr[-3000:]
    status = _cli("status", str(folder), env=env)
    assert (folder / "report" / "trials.csv").is_file() and (folder / "tuner.pkl").is_file()
    saved = yaml.safe_load((folder / "sweetspot.yaml").read_text())
    assert saved["search"]["study_storage"] == saved["optuna_storage"] == f"sqlite:///{root}/${{SWEETSPOT_TEST_STUDY_DIR}}/study.db"
    leaks = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaks == []  # sweetspot.yaml, Tune's pickles (tuner.pkl, searcher state), summary, report, csv, logs
    for out in (run, analyzed, status):
        assert SECRET not in out.stdout + out.stderr


def test_a_literal_password_in_study_storage_is_refused_without_echoing_it(searched, tmp_path):
    _, folder, env, *_ = searched
    config = tmp_path / "pw.yaml"
    config.write_text(yaml.safe_dump({
        "name": "pw", "storage_path": str(tmp_path / "results"), "data": SLICE, "model": {"name": "tiny-distilbert"},
        "search": {"algorithm": "tpe", "study_storage": "postgresql://ann:hunter2@db.example/studies"}}))
    run = _cli("search", str(config), env=env, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert "search.study_storage: postgresql://ann:***@db.example/studies holds a password" in run.stderr
    assert "hunter2" not in run.stdout + run.stderr and not (tmp_path / "results").exists()
    # A ${VAR} that is not set: named, nothing written.
    config.write_text(config.read_text().replace("hunter2", "${SWEETSPOT_NOT_SET_PW}"))
    run = _cli("search", str(config), env=env, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "search.study_storage: the environment variable SWEETSPOT_NOT_SET_PW is not set" in run.stderr
    assert not (tmp_path / "results").exists()


def test_the_search_signs_every_state_file_tune_wrote(searched):
    _, folder, env, *_ = searched
    signed = json.loads((folder / "state-signature.json").read_text())["files"]
    assert {"tuner.pkl"} | {p.name for p in folder.glob("experiment_state-*.json")} | \
           {p.name for p in folder.glob("searcher-state-*.pkl")} <= set(signed)
    assert set(signing.state_files(str(folder))) <= set(signed)
    assert oct((Path(env["XDG_CONFIG_HOME"]) / "sweetspot" / "signing_key").stat().st_mode & 0o777) == "0o600"


def _copy(folder: Path, tmp_path: Path) -> Path:
    """The results folder under another storage path (the same experiment name), to tamper with."""
    target = tmp_path / "shared" / folder.name
    shutil.copytree(folder, target)
    return target


def test_analyze_and_status_load_no_pickle_from_a_tampered_folder(searched, tmp_path):
    _, folder, env, *_ = searched
    evil = _copy(folder, tmp_path)
    marker = tmp_path / "code-ran"
    trials = [p.name for p in evil.glob("trial_*")]
    for planted in ["tuner.pkl", *[p.name for p in evil.glob("searcher-state-*.pkl")], "callback-states-2099.pkl",
                    *[f"{t}/error.pkl" for t in trials], *[f"{t}/params.pkl" for t in trials]]:
        (evil / planted).write_bytes(pickle.dumps(_Marker(marker)))
    assert (analyzed := _cli("analyze", str(evil), "--no-baselines", "--out", str(tmp_path / "report"), env=env)).returncode == 0, \
        analyzed.stderr[-3000:]
    assert _cli("status", str(evil), env=env).returncode == 0
    assert not marker.exists()


def test_resume_refuses_a_state_file_it_did_not_sign_naming_it(searched, tmp_path):
    _, folder, env, *_ = searched
    evil = _copy(folder, tmp_path)
    marker = tmp_path / "code-ran"
    (evil / "tuner.pkl").write_bytes(pickle.dumps(_Marker(marker)))
    before = _tree(evil)
    run = _cli("resume", str(evil), env=env, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(f"sweetspot resume: error: {evil}/tuner.pkl: changed since sweetspot signed it")
    assert "--trust-results-folder" in run.stderr
    assert not marker.exists() and _tree(evil) == before
    # A newer experiment state planted beside the signed one (Tune restores the newest): refused, named.
    shutil.copy(folder / "tuner.pkl", evil / "tuner.pkl")
    planted = evil / "experiment_state-2099-01-01_00-00-00.json"
    planted.write_text(json.dumps({"runner_data": {"_type": "CLOUDPICKLE_FALLBACK",
                                                   "value": pickle.dumps(_Marker(marker)).hex()}}))
    run = _cli("resume", str(evil), env=env, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"{planted}: not signed (absent from state-signature.json)" in run.stderr and not marker.exists()
    # No signature at all (a folder from before signing, or another user's): refused.
    planted.unlink()
    (evil / "state-signature.json").unlink()
    run = _cli("resume", str(evil), env=env, timeout=120)
    assert run.returncode == 2 and ": not signed (no state-signature.json)" in run.stderr
    # Signed with another user's key: refused, naming the signature file.
    other = {**env, signing.KEY_ENV: "another user's key"}
    run = _cli("resume", str(folder), env=other, timeout=120)
    assert run.returncode == 2 and f"{folder}/state-signature.json: not signed with this user's key" in run.stderr


def test_resume_with_the_trust_flag_runs_an_unsigned_folder_and_signs_it(searched, tmp_path):
    _, folder, env, *_ = searched
    trusted = _copy(folder, tmp_path)
    (trusted / "state-signature.json").unlink()
    run = _cli("resume", str(trusted), "--trust-results-folder", env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    signing.verify(str(trusted), key=(Path(env["XDG_CONFIG_HOME"]) / "sweetspot" / "signing_key").read_text().strip().encode())
