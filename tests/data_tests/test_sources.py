"""Each source layout, written by the tests in exactly that layout (no copied data), and the
row and label options."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweetspot.data.config import DataConfig
from sweetspot.data.prepare import prepare
from sweetspot.data.sources import DataError, strip_html


def _labels(prepared):
    return [l["name"] for l in json.loads((prepared.path / "labels.json").read_text())]


def _rows(prepared, split):
    return pq.read_table(prepared.split_dir(split)).to_pylist()


def _write_eurlex(folder, splits):
    folder.mkdir(exist_ok=True)
    for prefix, docs in splits.items():
        (folder / f"{prefix}_texts.txt").write_text("".join(t + "\n" for t, _ in docs))
        (folder / f"{prefix}_labels.txt").write_text("".join(" ".join(l) + "\n" for _, l in docs))


def test_eurlex_layout_reads_label_names_line_by_line(tmp_path, cache_dir, minilm_path):
    train = [
        (f"regulation {i} on fisheries and customs duties", ["fisheries", "customs"] if i % 2 else ["customs"]) for i in range(30)
    ]
    test = [("a directive on fisheries", ["fisheries"]), ("tariff customs", ["customs", "unseen_label"])]
    valid = [("valid doc on customs", ["customs"])]
    _write_eurlex(tmp_path / "eurlex", {"train": train, "test": test, "valid": valid})
    prepared = prepare(DataConfig(source="eurlex", path=str(tmp_path / "eurlex"), max_len=32), tokenizer=minilm_path)
    splits = prepared.manifest["splits"]
    assert (splits["train"]["rows"], splits["validation"]["rows"], splits["test"]["rows"]) == (30, 1, 2)
    assert sorted(_labels(prepared)) == ["customs", "fisheries"]
    assert splits["test"]["labels_outside_vocabulary"] == {"distinct": 1, "occurrences": 1}
    rows = _rows(prepared, "train")
    ids = {name: i for i, name in enumerate(_labels(prepared))}
    assert sorted(rows[1]["label_ids"]) == sorted([ids["fisheries"], ids["customs"]])
    assert rows[0]["label_ids"] == [ids["customs"]]


def test_eurlex_without_valid_files_carves_validation(tmp_path, cache_dir, minilm_path):
    _write_eurlex(
        tmp_path / "eurlex", {"train": [(f"doc {i}", ["a" if i % 2 else "b"]) for i in range(20)], "test": [("t", ["a"])]}
    )
    prepared = prepare(
        DataConfig(source="eurlex", path=str(tmp_path / "eurlex"), validation_fraction=0.25), tokenizer=minilm_path
    )
    assert prepared.manifest["splits"]["validation"]["rows"] == 5 and prepared.manifest["splits"]["train"]["rows"] == 15


def test_eurlex_texts_labels_mismatch_is_an_error(tmp_path, cache_dir, minilm_path):
    _write_eurlex(tmp_path / "eurlex", {"train": [("a", ["x"]), ("b", ["y"])], "test": [("t", ["x"])]})
    (tmp_path / "eurlex" / "train_labels.txt").write_text("x\n")
    with pytest.raises(DataError, match=r"train_labels.txt: 1 lines, but train_texts.txt has 2"):
        prepare(DataConfig(source="eurlex", path=str(tmp_path / "eurlex")), tokenizer=minilm_path)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def _write_stackexchange(folder, questions, tags):
    folder.mkdir()
    with open(folder / "Questions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Id", "OwnerUserId", "CreationDate", "Score", "Title", "Body"])
        w.writerows(questions)
    with open(folder / "Tags.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Id", "Tag"])
        w.writerows(tags)


def test_stackexchange_joins_tags_and_strips_html(tmp_path, cache_dir, minilm_path):
    questions = [
        (
            i,
            7,
            "2010-07-19T19:12:12Z",
            3,
            f"Question {i} about regression?",
            f"<p>How do I fit a <code>glm</code> with n &lt; {i}?</p>\n<pre>y ~ x</pre>",
        )
        for i in range(1, 41)
    ]
    tags = [(i, t) for i in range(1, 41) for t in (["regression", "r"] if i % 2 else ["regression"])]
    _write_stackexchange(tmp_path / "se", questions, tags + [(999, "orphan")])
    prepared = prepare(
        DataConfig(source="stackexchange", path=str(tmp_path / "se"), test_fraction=0.25, validation_fraction=0.2, max_len=64),
        tokenizer=minilm_path,
    )
    splits = prepared.manifest["splits"]
    assert splits["test"]["rows"] == 10 and splits["validation"]["rows"] == 6 and splits["train"]["rows"] == 24
    assert sorted(_labels(prepared)) == ["r", "regression"]
    from transformers import AutoTokenizer

    text = AutoTokenizer.from_pretrained(minilm_path).decode(_rows(prepared, "train")[0]["input_ids"], skip_special_tokens=True)
    assert "<" not in text.replace("n <", "") and "glm" in text and "question" in text
    assert strip_html("<p>a&amp;b</p><br/>c") == "a&bc"


def test_csv_with_delimited_label_string_and_parquet_with_list_column(tmp_path, cache_dir, minilm_path):
    folder = tmp_path / "csvset"
    folder.mkdir()
    for split, n in (("train", 20), ("test", 4)):
        with open(folder / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["body", "tags"])
            w.writerows([(f"text number {i}", "alpha|beta" if i % 2 else "alpha") for i in range(n)])
    cfg = DataConfig(source="csv", path=str(folder), text_field="body", labels_field="tags", label_delimiter="|")
    prepared = prepare(cfg, tokenizer=minilm_path)
    assert sorted(_labels(prepared)) == ["alpha", "beta"] and prepared.manifest["splits"]["test"]["rows"] == 4

    pfolder = tmp_path / "pq"
    pfolder.mkdir()
    for split, n in (("train", 20), ("validation", 3), ("test", 4)):
        pq.write_table(
            pa.table({"t": [f"doc {i}" for i in range(n)], "y": [["x", "y"] if i % 3 == 0 else ["y"] for i in range(n)]}),
            pfolder / f"{split}.parquet",
        )
    prepared = prepare(DataConfig(source="parquet", path=str(pfolder), text_field="t", labels_field="y"), tokenizer=minilm_path)
    assert sorted(_labels(prepared)) == ["x", "y"]
    assert [prepared.manifest["splits"][s]["rows"] for s in ("train", "validation", "test")] == [20, 3, 4]
    with pytest.raises(DataError, match=r"train.parquet: unknown column 'text' \(data.text_field\); columns are: t, y"):
        prepare(DataConfig(source="parquet", path=str(pfolder)), tokenizer=minilm_path)


def _jsonl(folder, name, rows):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_label_options_top_k_min_count_duplicates_and_limits(tmp_path, cache_dir, minilm_path):
    # Label frequencies in train: a=12, b=8, c=4, d=1; 3 duplicate texts.
    rows = (
        [{"text": f"doc {i}", "labels": ["a"]} for i in range(8)]
        + [{"text": f"doc b{i}", "labels": ["b", "a"] if i < 4 else ["b"]} for i in range(8)]
        + [{"text": f"doc c{i}", "labels": ["c"]} for i in range(4)]
        + [{"text": "doc d", "labels": ["d"]}]
        + [{"text": "doc 0", "labels": ["a"]}] * 3
    )
    folder = tmp_path / "j"
    _jsonl(folder, "train.jsonl", rows)
    _jsonl(
        folder,
        "test.jsonl",
        [{"text": "t1", "labels": ["a"]}, {"text": "t2", "labels": ["d"]}, {"text": "t3", "labels": ["c", "e"]}],
    )
    _jsonl(folder, "validation.jsonl", [{"text": "v1", "labels": ["b"]}])

    prepared = prepare(
        DataConfig(source="jsonl", path=str(folder), min_label_count=2, drop_duplicates=True), tokenizer=minilm_path
    )
    splits = prepared.manifest["splits"]
    assert sorted(_labels(prepared)) == ["a", "b", "c"]  # d has one document
    assert splits["train"]["dropped"]["duplicate_text"] == 3
    assert splits["train"]["dropped"]["only_dropped_labels"] == 1 and splits["train"]["rows"] == 20
    assert splits["test"]["dropped"]["only_dropped_labels"] == 1 and splits["test"]["rows"] == 2
    assert splits["test"]["labels_outside_vocabulary"] == {"distinct": 2, "occurrences": 2}  # d, e

    top2 = prepare(DataConfig(source="jsonl", path=str(folder), top_k_labels=2, train_limit=10, seed=1), tokenizer=minilm_path)
    assert sorted(_labels(top2)) == ["a", "b"] and top2.manifest["splits"]["train"]["rows"] == 10
    # The vocabulary comes from the whole source train split, not the 10-document subsample.
    assert top2.manifest["stats"]["num_labels"] == 2


def test_empty_texts_and_unlabelled_documents_are_dropped_or_errors_when_strict(tmp_path, cache_dir, minilm_path):
    folder = tmp_path / "j"
    _jsonl(
        folder,
        "train.jsonl",
        [
            {"text": "ok", "labels": ["a"]},
            {"text": "  ", "labels": ["a"]},
            {"text": "no labels", "labels": []},
            {"text": "ok2", "labels": ["a"]},
            {"text": "ok3", "labels": ["b"]},
        ],
    )
    _jsonl(folder, "test.jsonl", [{"text": "t", "labels": ["a"]}])
    prepared = prepare(DataConfig(source="jsonl", path=str(folder), validation_fraction=0.3), tokenizer=minilm_path)
    dropped = prepared.manifest["splits"]["train"]["dropped"]
    assert dropped["empty_text"] == 1 and dropped["no_labels"] == 1
    with pytest.raises(DataError, match=r"train.jsonl:2: empty text \(data.strict is true\)"):
        prepare(DataConfig(source="jsonl", path=str(folder), strict=True), tokenizer=minilm_path)
