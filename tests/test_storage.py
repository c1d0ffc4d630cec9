"""sweetspot/storage.py: a local file rewritten while another process or thread reads it (the
run records, `summary.json`, while `sweetspot status` polls them) is never seen half-written."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sweetspot import storage


def _documents(n: int) -> list[str]:
    """Documents of ~200 kB (a 100-trial summary.json's size), each different."""
    return [
        json.dumps({"version": i, "trials": [{"trial_id": f"{i}-{k}", "pad": "x" * 2000} for k in range(100)]}) for i in range(n)
    ]


def _read_while_written(path: Path, write, documents: list[str]) -> tuple[int, int]:
    """(reads, reads that did not parse) of a reader polling `path` while `write` writes each document."""
    path.write_text(documents[0])
    done = threading.Event()

    def writer():
        for doc in documents[1:]:
            write(path, doc)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = torn = 0
    while not done.is_set():
        data = path.read_bytes()
        reads += 1
        try:
            json.loads(data)
        except ValueError:
            torn += 1
    thread.join()
    return reads, torn


def test_a_reader_polling_a_file_never_sees_it_torn_while_write_text_replaces_it(tmp_path):
    reads, torn = _read_while_written(tmp_path / "summary.json", lambda p, doc: storage.write_text(str(p), doc), _documents(60))
    assert reads > 20 and torn == 0
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left behind


def test_the_reader_does_see_torn_files_when_a_file_is_rewritten_in_place(tmp_path):
    """The check above can fail: the same reader against a plain in-place write (open, truncate, write)."""

    def in_place(path: Path, doc: str) -> None:
        with open(path, "w") as f:
            for start in range(0, len(doc), 4096):
                f.write(doc[start : start + 4096])
                f.flush()

    _, torn = _read_while_written(tmp_path / "summary.json", in_place, _documents(60))
    assert torn > 0


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "summary.json"
    target.mkdir()  # os.replace cannot put a file over a folder
    with pytest.raises(OSError):
        storage.write_text(str(target), "{}")
    assert target.is_dir() and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
