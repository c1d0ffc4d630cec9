"""Secrets and signing keys, refused or hidden through the CLI's `main(argv)` (in-process: no Ray, no
model). The inputs that could exhaust the machine or mislead (an alias bomb, a FIFO as the config, a
billion seeds, ...) are cases of tests/test_reliability.py, which writes them into docs/reliability.md."""

from __future__ import annotations

import pytest

from sweetspot import signing
from sweetspot.cli import main


def _run(argv, capsys) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err.splitlines()
    return code, err


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
