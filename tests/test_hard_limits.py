"""Inputs that could exhaust the machine or mislead, refused in one line through the CLI's `main(argv)`
(in-process: no Ray, no model), exit 2, nothing written."""

from __future__ import annotations

import os

import pytest

from sweetspot import signing
from sweetspot.cli import main


def _run(argv, capsys) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err.splitlines()
    return code, err


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines + ["name: *a9"]) + "\n"


GRID = "search: {algorithm: grid, scheduler: {name: fifo}, space: {optimizer: [adam], lr: [0.001], weight_decay: [0.0]}"


@pytest.mark.parametrize(
    "content, message",
    [
        (_alias_bomb(), "expands to more than 100,000 values"),
        ("a: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than 64 levels"),
        ("name: x\n" + "# pad\n" * 300_000, "more than an experiment file's limit"),
        (f"name: x\n{GRID}, seeds: 1000000000}}\n", "search.seeds: must be in [1, 1000]"),
        ("name: x\nsearch: {seed: -1}\n", "search.seed: must be in [0, 4.29497e+09], got -1"),
        ("name: x\nsearch: {metric: val_nothing}\n", "search.metric: 'val_nothing' is not a result a trial reports"),
        (
            "name: x\nstorage_path: '${SWEETSPOT_SURELY_UNSET}/r'\n",
            "storage_path: the environment variable SWEETSPOT_SURELY_UNSET",
        ),
        ("name: x\nmodel: {name: '${SWEETSPOT_SURELY_UNSET}'}\n", "model.name: the environment variable SWEETSPOT_SURELY_UNSET"),
    ],
    ids=[
        "alias_bomb",
        "deep_nesting",
        "oversized_file",
        "seeds_1e9",
        "seed_negative",
        "metric_unreported",
        "storage_path_unset_var",
        "model_name_unset_var",
    ],
)
def test_a_config_that_would_exhaust_or_mislead_is_refused_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "exp.yaml"
    path.write_text(content)
    before = sorted(tmp_path.rglob("*"))
    code, err = _run(["search", str(path), "--dry-run"], capsys)
    assert code == 2 and err and all(l.startswith("sweetspot search: error: ") for l in err), err
    assert any(message in l for l in err), err
    assert sorted(tmp_path.rglob("*")) == before


def test_a_device_or_fifo_as_the_config_is_refused_without_reading_it(tmp_path, capsys):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        code, err = _run(["search", path, "--dry-run"], capsys)
        assert code == 2 and err == [
            f"sweetspot search: error: {path}: not a regular file (a device, FIFO or socket); give an experiment YAML file"
        ]


def test_a_password_with_a_slash_is_found_by_sqlalchemys_parser_and_never_echoed(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "name: x\nstorage_path: " + str(tmp_path / "r") + "\nmodel: {name: tiny-distilbert}\n"
        "search: {study_storage: 'postgresql://ann:pa/ss@db.example/s'}\n"
    )
    code, err = _run(["search", str(path)], capsys)
    assert code == 2 and "holds a password (the password after the user name)" in err[0] and "pa/ss" not in "".join(err)
    assert not (tmp_path / "r").exists()


def test_a_study_password_from_the_environment_is_percent_encoded_into_the_url():
    from sweetspot.redact import expand

    url = expand("postgresql://ann:${PW}@db/s", key="k", environ={"PW": "a@b%{}"}, url=True)
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    assert (parsed.password, parsed.host) == ("a@b%{}", "db") and "{" not in url


def test_a_short_signing_key_is_refused(monkeypatch):
    monkeypatch.setenv(signing.KEY_ENV, "k")
    with pytest.raises(signing.SigningError, match="shorter than 16"):
        signing.signing_key()


def test_the_signature_binds_the_folder_and_the_run(tmp_path):
    key = b"k" * 32
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "tuner.pkl").write_bytes(b"state")
    signing.sign(str(folder), key=key, run_id="r1")
    assert signing.verified_copy(str(folder), key=key, run_id="r1") == {"tuner.pkl": b"state"}
    with pytest.raises(signing.SigningError, match="signed for another run"):
        signing.verified_copy(str(folder), key=key, run_id="r2")
    moved = tmp_path / "moved"
    folder.rename(moved)
    with pytest.raises(signing.SigningError, match="copied or moved"):
        signing.verified_copy(str(moved), key=key, run_id="r1")
