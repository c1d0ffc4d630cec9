"""Every kind of bad input ends `sweetspot prepare` with one line naming the problem, exit code 2,
and nothing written to the prepared-data cache."""

from __future__ import annotations

import json

import pytest

from sweetspot.cli import main


def _go_emotions(folder, train="some text\t0\tid0\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "emotions.txt").write_text("joy\nanger\nneutral\n")
    for name in ("dev.tsv", "test.tsv"):
        (folder / name).write_text("some text\t0\tid0\n")
    (folder / "train.tsv").write_bytes(train if isinstance(train, bytes) else train.encode())
    return folder


def _case_missing_folder(tmp):
    return {"source": "go_emotions", "path": str(tmp / "nowhere")}, "nowhere: no such folder (data.path)"


def _case_missing_file(tmp):
    folder = _go_emotions(tmp / "ge")
    (folder / "dev.tsv").unlink()
    return {"source": "go_emotions", "path": str(folder)}, "dev.tsv: no such file"


def _case_malformed_tsv(tmp):
    folder = _go_emotions(tmp / "ge", "fine\t1\ta\nno tabs here\n")
    return {"source": "go_emotions", "path": str(folder)}, "train.tsv:2: expected 3 tab-separated fields"


def _case_label_id_out_of_range(tmp):
    folder = _go_emotions(tmp / "ge", "fine\t1\ta\nfine too\t0,7\tb\n")
    return {"source": "go_emotions", "path": str(folder)}, "train.tsv:2: label id '7' is not in 0..2"


def _case_not_utf8(tmp):
    folder = _go_emotions(tmp / "ge", b"fine\t1\ta\ncaf\xe9\t0\tb\n")
    return {"source": "go_emotions", "path": str(folder)}, "train.tsv:2: not valid utf-8"


def _case_invalid_json(tmp):
    folder = tmp / "j"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"text": "a", "labels": ["x"]}\n\n{"text": "b", "labels": ["x"],}\n')
    (folder / "test.jsonl").write_text('{"text": "a", "labels": ["x"]}\n')
    return {"source": "jsonl", "path": str(folder)}, "train.jsonl:3: invalid JSON"


def _case_unknown_column(tmp):
    folder = tmp / "c"
    folder.mkdir()
    (folder / "train.csv").write_text("body,tags\nhello,a\n")
    (folder / "test.csv").write_text("body,tags\nhello,a\n")
    return {
        "source": "csv",
        "path": str(folder),
        "labels_field": "tags",
    }, "train.csv: unknown column 'text' (data.text_field); columns are: body, tags"


def _case_line_count_mismatch(tmp):
    folder = tmp / "e"
    folder.mkdir()
    (folder / "train_texts.txt").write_text("a\nb\nc\n")
    (folder / "train_labels.txt").write_text("x\ny\n")
    (folder / "test_texts.txt").write_text("a\n")
    (folder / "test_labels.txt").write_text("x\n")
    return {"source": "eurlex", "path": str(folder)}, "train_labels.txt: 2 lines, but train_texts.txt has 3"


def _case_empty_split(tmp):
    folder = tmp / "j"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"text": "a", "labels": ["x"]}\n')
    (folder / "test.jsonl").write_text('{"text": "", "labels": ["x"]}\n')
    return {"source": "jsonl", "path": str(folder)}, "the test split is empty"


def _case_wrong_yaml_type(tmp):
    return {"source": "go_emotions", "max_len": "long"}, "data.max_len: expected int, got 'long'"


CASES = [
    _case_missing_folder,
    _case_missing_file,
    _case_malformed_tsv,
    _case_label_id_out_of_range,
    _case_not_utf8,
    _case_invalid_json,
    _case_unknown_column,
    _case_line_count_mismatch,
    _case_empty_split,
    _case_wrong_yaml_type,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.removeprefix("_case_") for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, cache_dir, capsys):
    data, message = case(tmp_path)
    config = tmp_path / "exp.yaml"
    config.write_text(json.dumps({"name": "bad", "data": data, "model": {"name": "tiny-distilbert"}}))
    code = main(["prepare", str(config)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sweetspot prepare: error: "), err
    assert message in err, err
    assert out == ""
    assert not cache_dir.exists() or not any(cache_dir.iterdir())
