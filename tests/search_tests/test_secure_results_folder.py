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
import re
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

pytestmark = pytest.mark.e2e

SECRET = "s3cr3t-7f1c9e"  # the value of the study storage's ${VAR}: it must appear nowhere in the results
SLICE = {"source": "go_emotions", "max_len": 48, "train_limit": 320, "validation_limit": 64, "test_limit": 32}


DOCS = REPO / "docs" / "reliability.md"
CASES_START, CASES_END = "<!-- security-cases:start -->", "<!-- security-cases:end -->"
CASES: list[str] = []  # the rows of docs/reliability.md's table of security cases, as these tests saw them


def _case(what: str, command: str, run, left: str, line: str | None = None, **paths: Path) -> None:
    """Records a case for the docs table: its command, exit code, the line it printed (the last line
    of stderr on an error, else of stdout; paths shown as their names), and what it left on disk."""
    if line is None:
        line = ((run.stderr if run.returncode else run.stdout).strip().splitlines() or [""])[-1]
    for shown, path in paths.items():
        line = line.replace(str(path), shown)
    line = re.sub(r"-20[0-8]\d-\d\d-\d\d_\d\d-\d\d-\d\d\b", "-<time>", line)  # Tune's session stamp in a state file's name
    assert "Traceback" not in run.stderr
    CASES.append(f"| {what} | `{command}` | {run.returncode} | `{line}` | {left} |")


def _cli(*args, env, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout
    )


class _Marker:
    """A pickle that, when loaded, creates the file `path` (what an attacker's code could do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).digest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def searched(tmp_path_factory, datasets_dir, slice_cache):
    """A finished TPE search whose Optuna study lives at a path named through ${SWEETSPOT_TEST_STUDY_DIR}."""
    root = tmp_path_factory.mktemp("secure")
    (root / SECRET).mkdir()
    env = {
        **os.environ,
        "SWEETSPOT_DATA_DIR": str(datasets_dir),
        "SWEETSPOT_CACHE_DIR": str(slice_cache),
        "RAY_ADDRESS": "",
        "XDG_CONFIG_HOME": str(root / "config"),
        "SWEETSPOT_TEST_STUDY_DIR": SECRET,
    }
    env.pop(signing.KEY_ENV, None)
    config = root / "secure.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "secure",
                "storage_path": str(root / "results"),
                "data": SLICE,
                "model": {"name": "tiny-distilbert"},
                "train": {"epochs": 1, "batch_size": 16},
                "search": {
                    "algorithm": "tpe",
                    "num_samples": 2,
                    "max_concurrent_trials": 2,
                    "scheduler": {"name": "fifo"},
                    "study_storage": f"sqlite:///{root}/${{SWEETSPOT_TEST_STUDY_DIR}}/study.db",
                    "space": {"optimizer": ["adam"], "lr": {"low": 1e-4, "high": 1e-2}},
                },
            }
        )
    )
    # While it runs: every socket that the driver or a process under it (the embedded Ray) listens on.
    out, err = root / "search.out", root / "search.err"
    with open(out, "w") as o, open(err, "w") as e:
        driver = subprocess.Popen(
            [sys.executable, "-m", "sweetspot.cli", "search", str(config)], cwd=REPO, env=env, stdout=o, stderr=e
        )
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
    return {
        (c.laddr.ip, c.laddr.port, names[c.pid])
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.pid in names
    }


def test_the_embedded_ray_listens_on_loopback_only(searched):
    *_, listening = searched
    assert len({name for _, _, name in listening}) >= 3, listening  # the GCS, the raylet, trial workers at least
    exposed = sorted(s for s in listening if not ipaddress.ip_address(s[0].removeprefix("::ffff:")).is_loopback)
    assert exposed == []
    CASES.append(
        "| the embedded Ray while a search runs | `sweetspot search exp.yaml` | 0 | (every TCP socket the driver "
        "and its Ray processes listen on is on 127.0.0.1) | - |"
    )


def test_the_study_storage_secret_is_nowhere_in_the_results_folder_nor_the_output(searched, cli):
    root, folder, env, run, _ = searched
    assert (root / SECRET / "study.db").is_file()  # the study went where ${SWEETSPOT_TEST_STUDY_DIR} pointed
    analyzed = cli("analyze", str(folder), "--no-baselines", "--no-attention", env=env)
    assert analyzed.returncode == 0, analyzed.stderr[-3000:]
    status = cli("status", str(folder), env=env)
    assert (folder / "report" / "trials.csv").is_file() and (folder / "tuner.pkl").is_file()
    saved = yaml.safe_load((folder / "sweetspot.yaml").read_text())
    assert (
        saved["search"]["study_storage"] == saved["optuna_storage"] == f"sqlite:///{root}/${{SWEETSPOT_TEST_STUDY_DIR}}/study.db"
    )
    leaks = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaks == []  # sweetspot.yaml, Tune's pickles (tuner.pkl, searcher state), summary, report, csv, logs
    for out in (run, analyzed, status):
        assert SECRET not in out.stdout + out.stderr
    _case(
        "`search.study_storage: sqlite:///…/${SWEETSPOT_TEST_STUDY_DIR}/study.db`, the variable set",
        "sweetspot search exp.yaml",
        run,
        "the study where the variable points; its value in no file of the results folder (`sweetspot.yaml` and "
        "Tune's pickles hold `${…}`), nor in the output",
        **{"results/secure": folder},
    )


def test_a_literal_password_in_study_storage_is_refused_without_echoing_it(searched, tmp_path, cli):
    _, folder, env, *_ = searched
    config = tmp_path / "pw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "pw",
                "storage_path": str(tmp_path / "results"),
                "data": SLICE,
                "model": {"name": "tiny-distilbert"},
                "search": {"algorithm": "tpe", "study_storage": "postgresql://ann:hunter2@db.example/studies"},
            }
        )
    )
    run = _cli("search", str(config), env=env, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert "search.study_storage: postgresql://ann:***@db.example/studies holds a password" in run.stderr
    assert "hunter2" not in run.stdout + run.stderr and not (tmp_path / "results").exists()
    _case(
        "`search.study_storage: postgresql://ann:hunter2@db.example/studies`",
        "sweetspot search exp.yaml",
        run,
        "nothing (no results folder)",
        **{"exp.yaml": config},
    )
    # A ${VAR} that is not set: named, nothing written.
    config.write_text(config.read_text().replace("hunter2", "${SWEETSPOT_NOT_SET_PW}"))
    run = cli("search", str(config), env=env)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "search.study_storage: the environment variable SWEETSPOT_NOT_SET_PW is not set" in run.stderr
    assert not (tmp_path / "results").exists()
    _case(
        "`search.study_storage: postgresql://ann:${SWEETSPOT_NOT_SET_PW}@…`, the variable not set",
        "sweetspot search exp.yaml",
        run,
        "nothing",
        **{"exp.yaml": config},
    )


def test_the_search_signs_every_state_file_tune_wrote(searched):
    _, folder, env, *_ = searched
    signed = json.loads((folder / "state-signature.json").read_text())["files"]
    assert {"tuner.pkl"} | {p.name for p in folder.glob("experiment_state-*.json")} | {
        p.name for p in folder.glob("searcher-state-*.pkl")
    } <= set(signed)
    assert set(signing.state_files(str(folder))) <= set(signed)
    assert oct((Path(env["XDG_CONFIG_HOME"]) / "sweetspot" / "signing_key").stat().st_mode & 0o777) == "0o600"


def _copy(folder: Path, tmp_path: Path) -> Path:
    """The results folder under another storage path (the same experiment name), to tamper with."""
    target = tmp_path / "shared" / folder.name
    shutil.copytree(folder, target)
    return target


def test_analyze_and_status_load_no_pickle_from_a_tampered_folder(searched, tmp_path, cli):
    _, folder, env, *_ = searched
    evil = _copy(folder, tmp_path)
    marker = tmp_path / "code-ran"
    trials = [p.name for p in evil.glob("trial_*")]
    for planted in [
        "tuner.pkl",
        *[p.name for p in evil.glob("searcher-state-*.pkl")],
        "callback-states-2099.pkl",
        *[f"{t}/error.pkl" for t in trials],
        *[f"{t}/params.pkl" for t in trials],
    ]:
        (evil / planted).write_bytes(pickle.dumps(_Marker(marker)))
    analyzed = cli("analyze", str(evil), "--no-baselines", "--out", str(tmp_path / "report"), env=env)
    assert analyzed.returncode == 0, analyzed.stderr[-3000:]
    assert (status := cli("status", str(evil), env=env)).returncode == 0
    assert not marker.exists()
    left = "the report; no pickle loaded (the planted ones would have created a file)"
    _case(
        "malicious `tuner.pkl`, searcher state, `callback-states-*.pkl`, `trial_*/error.pkl`, `params.pkl`",
        "sweetspot analyze results/secure --out report",
        analyzed,
        left,
        **{"report": tmp_path / "report"},
    )
    _case(
        "the same folder", "sweetspot status results/secure", status, "nothing written; no pickle loaded", line="the trial table"
    )


def test_resume_refuses_a_state_file_it_did_not_sign_naming_it(searched, tmp_path, cli):
    _, folder, env, *_ = searched
    evil = _copy(folder, tmp_path)
    marker = tmp_path / "code-ran"
    (evil / "tuner.pkl").write_bytes(pickle.dumps(_Marker(marker)))
    before = _tree(evil)
    run = cli("resume", str(evil), env=env)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(f"sweetspot resume: error: {evil}/tuner.pkl: changed since sweetspot signed it")
    assert "--trust-results-folder" in run.stderr
    assert not marker.exists() and _tree(evil) == before
    unchanged = "the folder unchanged; nothing unpickled"
    _case(
        "`tuner.pkl` replaced (by a pickle that runs code)",
        "sweetspot resume results/secure",
        run,
        unchanged,
        **{"results/secure": evil},
    )
    # A newer experiment state planted beside the signed one (Tune restores the newest): refused, named.
    shutil.copy(folder / "tuner.pkl", evil / "tuner.pkl")
    planted = evil / "experiment_state-2099-01-01_00-00-00.json"
    planted.write_text(
        json.dumps({"runner_data": {"_type": "CLOUDPICKLE_FALLBACK", "value": pickle.dumps(_Marker(marker)).hex()}})
    )
    run = cli("resume", str(evil), env=env)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"{planted}: not signed (absent from state-signature.json)" in run.stderr and not marker.exists()
    _case(
        "a newer `experiment_state-*.json` planted (Tune restores the newest)",
        "sweetspot resume results/secure",
        run,
        unchanged,
        **{"results/secure": evil},
    )
    # No signature at all (a folder from before signing, or another user's): refused.
    planted.unlink()
    (evil / "state-signature.json").unlink()
    run = cli("resume", str(evil), env=env)
    assert run.returncode == 2 and ": not signed (no state-signature.json)" in run.stderr
    _case(
        "no `state-signature.json` (a folder from before signing, or copied without it)",
        "sweetspot resume results/secure",
        run,
        unchanged,
        **{"results/secure": evil},
    )
    # An untouched copy under another storage path: refused (resuming it would write into the original).
    clean = _copy(folder, tmp_path / "elsewhere")
    before = _tree(clean)
    run = cli("resume", str(clean), env=env)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"this search's state was written in {folder}; the folder was copied or moved" in run.stderr
    assert _tree(clean) == before and not marker.exists()
    _case(
        "an untouched copy of the folder, resumed where it was copied to",
        "sweetspot resume copy/secure",
        run,
        "both folders unchanged",
        **{"copy/secure": clean, "results/secure": folder},
    )
    # Signed with another user's key: refused, naming the signature file.
    other = {**env, signing.KEY_ENV: "another user's key"}
    run = cli("resume", str(folder), env=other)
    assert run.returncode == 2 and f"{folder}/state-signature.json: not signed with this user's key" in run.stderr
    _case(
        "signed by another user's key",
        f"{signing.KEY_ENV}=… sweetspot resume results/secure",
        run,
        unchanged,
        **{"results/secure": folder, "~/.config/sweetspot/signing_key": signing_key_file(env)},
    )


def test_resume_refuses_an_edited_config_a_moved_folder_an_older_signed_state_and_a_short_key(
    searched, tmp_path, cli, monkeypatch
):
    _, folder, env, *_ = searched
    unchanged = "the folder unchanged; nothing unpickled"
    # sweetspot.yaml drives the resumed trials (epochs, dropout, the data fingerprint): it is signed too.
    edited = _copy(folder, tmp_path)
    config = edited / "sweetspot.yaml"
    text = config.read_text()
    config.write_text(text.replace("  epochs: 1\n", "  epochs: 9\n", 1))
    assert config.read_text() != text
    run = cli("resume", str(edited), env=env)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"sweetspot resume: error: {edited}/sweetspot.yaml: changed since sweetspot signed it")
    _case(
        "`sweetspot.yaml` edited (`train.epochs: 1` made 9)",
        "sweetspot resume results/secure",
        run,
        unchanged,
        **{"results/secure": edited},
    )
    # The folder moved (renamed where it lies): refused like a copy, before anything is written.
    moved = folder.with_name("moved")
    folder.rename(moved)
    try:
        before = _tree(moved)
        run = cli("resume", str(moved), env=env)
        assert _tree(moved) == before
    finally:
        moved.rename(folder)
    assert run.returncode == 2 and f"this search's state was written in {folder}; the folder was copied or moved" in run.stderr
    _case(
        "the folder moved (renamed in place)",
        "sweetspot resume results/moved",
        run,
        "the folder unchanged",
        **{"results/moved": moved, "results/secure": folder},
    )
    # An older signed state put back (a copy of the folder from before its last resume): refused.
    old_signature = (folder / "state-signature.json").read_bytes()
    run_id = yaml.safe_load((folder / "sweetspot.yaml").read_text())["run_id"]
    monkeypatch.setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])  # this user's key and signature count
    monkeypatch.delenv(signing.KEY_ENV, raising=False)
    signing.sign(str(folder), run_id=run_id)  # as the next resume signs it
    signing.record_newest(str(folder))
    (folder / "state-signature.json").write_bytes(old_signature)
    run = cli("resume", str(folder), env=env)
    signing.sign(str(folder), run_id=run_id)  # the newest again, for the tests after this one
    signing.record_newest(str(folder))
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "an older signed state of this folder than the newest this user signed" in run.stderr
    _case(
        "an older signed state put back (the folder's files from before its last signing)",
        "sweetspot resume results/secure",
        run,
        unchanged,
        **{"results/secure": folder},
    )
    # A signing key too short to be a secret.
    run = cli("resume", str(folder), env={**env, signing.KEY_ENV: "k"})
    assert run.returncode == 2 and "the signing key is 1 bytes, shorter than 16" in run.stderr, run.stderr
    _case("`SWEETSPOT_SIGNING_KEY=k` (one byte)", f"{signing.KEY_ENV}=k sweetspot resume results/secure", run, "nothing written")


def test_resume_with_the_trust_flag_runs_an_unsigned_folder_and_signs_it(searched, tmp_path):
    # in place (a copy resumes nowhere: its state names the folder it was written in); signed again after
    _, folder, env, *_ = searched
    trusted = folder
    (trusted / "state-signature.json").unlink()
    run = _cli("resume", str(trusted), "--trust-results-folder", env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    signing.verify(str(trusted), key=signing_key_file(env).read_text().strip().encode())
    _case(
        "no `state-signature.json`, the user vouches for the folder",
        "sweetspot resume results/secure --trust-results-folder",
        run,
        "the resumed experiment, signed again",
        **{"results/secure": trusted},
    )


def signing_key_file(env) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "sweetspot" / "signing_key"


def test_a_signing_key_that_others_can_read_is_refused(searched, tmp_path, cli):
    _, folder, env, *_ = searched
    key = tmp_path / "config" / "sweetspot" / "signing_key"
    key.parent.mkdir(parents=True)
    key.write_text("0123\n")
    key.chmod(0o644)
    run = cli("resume", str(folder), env={**env, "XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"{key}: the signing key is readable or writable by others (mode -rw-r--r--); run: chmod 600 {key}" in run.stderr
    _case(
        "the key file with mode 0644",
        "sweetspot resume results/secure",
        run,
        "nothing written",
        **{"~/.config/sweetspot/signing_key": key},
    )


def test_signing_covers_a_results_folder_on_a_storage_uri(searched, tmp_path):
    _, folder, *_ = searched
    copy = _copy(folder, tmp_path)
    uri, key = f"file://{copy}", b"a key"
    signing.sign(uri, key=key)
    signing.verify(uri, key=key)
    (copy / "tuner.pkl").write_bytes(b"changed")
    with pytest.raises(signing.SigningError, match=re.escape(f"{uri}/tuner.pkl: changed since sweetspot signed it")):
        signing.verify(uri, key=key)


def test_the_docs_list_these_cases():
    """docs/reliability.md's table of security cases is what these tests saw (SWEETSPOT_WRITE_DOCS=1 rewrites it)."""
    assert CASES, "run the whole module: the cases are recorded by the tests above"
    text = DOCS.read_text() if DOCS.exists() else ""
    table = "\n".join(["| case | command | exit | the line printed | left on disk |", "|---|---|---|---|---|", *CASES])
    if os.environ.get("SWEETSPOT_WRITE_DOCS") == "1":
        assert CASES_START in text and CASES_END in text, f"{DOCS}: no {CASES_START} … {CASES_END} markers"
        head, rest = text.split(CASES_START, 1)
        DOCS.write_text(f"{head}{CASES_START}\n{table}\n{CASES_END}{rest.split(CASES_END, 1)[1]}")
        text = DOCS.read_text()
    missing = [row for row in CASES if row not in text]
    assert not missing, f"{DOCS} lacks these rows (SWEETSPOT_WRITE_DOCS=1 rewrites its table):\n" + "\n".join(missing)
