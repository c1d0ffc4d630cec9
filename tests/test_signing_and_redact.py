"""The pure pieces behind the security cases (tests/search_tests/test_secure_results_folder.py runs
them through the CLI): the per-user signing key, signing and verifying a folder's state files, and
keeping passwords out of what is written."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from sweetspot import signing
from sweetspot.redact import expand, literal_secret, redact


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(signing.KEY_ENV, raising=False)
    return tmp_path / "config"


def test_the_key_is_made_once_readable_by_its_owner_only(config_home):
    key = signing.signing_key()
    path = config_home / "sweetspot" / "signing_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) == 64
    assert signing.signing_key() == key  # found, not made again
    path.chmod(0o640)
    with pytest.raises(signing.SigningError, match="readable or writable by others .*chmod 600"):
        signing.signing_key()


def test_two_first_runs_at_once_read_one_key(config_home):
    # eight processes make the key at the same moment (a barrier: the key file's absence): one link wins
    code = (
        "import os, time; from sweetspot import signing\n"
        "while not os.path.exists(os.environ['GO']): time.sleep(0.001)\n"
        "print(signing.signing_key().decode())"
    )
    go = config_home.parent / "go"
    env = {**os.environ, "GO": str(go)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(8)]
    go.touch()
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert sorted(os.listdir(config_home / "sweetspot")) == ["signing_key"]  # no temporary file left


def test_the_environment_key_wins(config_home, monkeypatch):
    monkeypatch.setenv(signing.KEY_ENV, "from the environment")
    assert signing.signing_key() == b"from the environment"
    assert not (config_home / "sweetspot" / "signing_key").exists()


def test_state_files_are_tunes_top_level_json_and_pkl_and_trial_errors(tmp_path):
    for name in (
        "tuner.pkl",
        "experiment_state-x.json",
        "searcher-state-x.pkl",
        "summary.json",
        "sweetspot.yaml",
        "optuna.db",
        "state-signature.json",
        "trial_a/error.pkl",
        "trial_a/params.pkl",
        "trial_a/result.json",
    ):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert signing.state_files(str(tmp_path)) == [
        "experiment_state-x.json",
        "searcher-state-x.pkl",
        "sweetspot.yaml",
        "trial_a/error.pkl",
        "tuner.pkl",
    ]


def test_verify_names_the_file_that_is_unsigned_changed_or_signed_by_another_key(tmp_path):
    folder, key = str(tmp_path), b"mine"
    signing.verify(folder, key=key)  # no state at all: nothing to refuse
    (tmp_path / "tuner.pkl").write_bytes(b"a")
    with pytest.raises(signing.SigningError, match=r"tuner\.pkl: not signed \(no state-signature\.json\)"):
        signing.verify(folder, key=key)
    (tmp_path / "trial_a").mkdir()
    (tmp_path / "trial_a" / "error.pkl").write_bytes(b"e")
    signing.sign(folder, key=key)
    signing.verify(folder, key=key)
    (tmp_path / "trial_a" / "error.pkl").write_bytes(b"other")
    with pytest.raises(signing.SigningError, match=r"trial_a/error\.pkl: changed since sweetspot signed it"):
        signing.verify(folder, key=key)
    signing.sign(folder, key=key)
    (tmp_path / "callback-states-z.pkl").write_bytes(b"new")
    with pytest.raises(signing.SigningError, match=r"callback-states-z\.pkl: not signed \(absent from state-signature\.json\)"):
        signing.verify(folder, key=key)
    with pytest.raises(signing.SigningError, match=r"state-signature\.json: not signed with this user's key"):
        signing.verify(folder, key=b"theirs")
    (tmp_path / "state-signature.json").write_text("{not json")
    with pytest.raises(signing.SigningError, match=r"state-signature\.json: unreadable signature file"):
        signing.verify(folder, key=key)


@pytest.mark.parametrize(
    "text, shown",
    [
        ("postgresql://ann:hunter2@db:5432/s", "postgresql://ann:***@db:5432/s"),
        ("mysql+pymysql://ann:p%40ss:w0rd@db/s", "mysql+pymysql://ann:***@db/s"),
        ("could not connect to postgresql://a:b@h/d; retry", "could not connect to postgresql://a:***@h/d; retry"),
        ("https://h/x?user=a&Password=b&api_key=c#f", "https://h/x?user=a&Password=***&api_key=***#f"),
        ("postgresql://ann:${PGPASSWORD}@db/s", "postgresql://ann:${PGPASSWORD}@db/s"),  # a reference is no secret
        ("sqlite:////tmp/x/optuna.db", "sqlite:////tmp/x/optuna.db"),
        ("http://host:8080/path", "http://host:8080/path"),  # a port is no password
    ],
)
def test_redact_hides_passwords_and_keeps_references(text, shown):
    assert redact(text) == shown


def test_literal_secrets_are_found_and_references_expanded_only_to_connect():
    assert literal_secret("postgresql://ann@db/s") is None
    assert literal_secret("postgresql://db/s?password=x") == "the query parameter 'password'"
    assert literal_secret("postgresql://db/s?password=${PW}") is None
    assert expand("postgresql://ann:${PW}@db/${DB}", key="k", environ={"PW": "p", "DB": "d"}) == "postgresql://ann:p@db/d"
    with pytest.raises(KeyError, match=r"k: the environment variable PW is not set"):
        expand("postgresql://ann:${PW}@db/s", key="k", environ={})
