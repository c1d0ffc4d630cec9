"""Preparation reads the real datasets once into Parquet shards whose numbers we re-derive here."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from sweetspot.data.config import DataConfig
from sweetspot.data.load import batches_from_windows, parquet_windows
from sweetspot.data.prepare import prepare
from sweetspot.data.sources import DataError


def _read(prepared, split):
    return pq.read_table(prepared.split_dir(split)).to_pylist()


def test_go_emotions_slice_is_tokenized_once_into_unpadded_shards(datasets_dir, cache_dir, minilm_path):
    cfg = DataConfig(
        source="go_emotions",
        path=str(datasets_dir / "go_emotions"),
        max_len=32,
        train_limit=400,
        validation_limit=150,
        test_limit=100,
        seed=3,
    )
    prepared = prepare(cfg, tokenizer=minilm_path)
    manifest = prepared.manifest

    names = (datasets_dir / "go_emotions" / "emotions.txt").read_text().split()
    labels = json.loads((prepared.path / "labels.json").read_text())
    train = _read(prepared, "train")
    # Label ids follow emotions.txt order, restricted to labels present in the train subset.
    train_counts = Counter(i for row in train for i in row["label_ids"])
    assert [l["name"] for l in labels] == [n for n in names if n in {l["name"] for l in labels}]
    assert {l["id"]: l["train_count"] for l in labels} == {i: train_counts[i] for i in range(len(labels))}
    assert manifest["stats"]["num_labels"] == len(labels)
    assert manifest["stats"]["num_train"] == len(train) == 400
    assert manifest["stats"]["avg_labels_per_point"] == pytest.approx(np.mean([len(r["label_ids"]) for r in train]))
    assert manifest["stats"]["avg_points_per_label"] == pytest.approx(sum(train_counts.values()) / len(labels))

    # The same ids the Hugging Face tokenizer gives, for the same subsample of train.tsv, in the same
    # order: train's draw is the first of data.seed's generator, a permutation cut to train_limit.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path)
    texts = [l.split("\t")[0] for l in (datasets_dir / "go_emotions" / "train.tsv").read_text(encoding="utf-8").splitlines()]
    kept = np.random.default_rng(3).permutation(len(texts))[:400]
    assert [r["input_ids"] for r in train] == tok([texts[i] for i in kept], truncation=True, max_length=32)["input_ids"]

    for row in train:  # unpadded token ids with [CLS] ... [SEP], truncated to max_len
        assert row["length"] == len(row["input_ids"]) <= 32
        assert row["input_ids"][0] == 101 and row["input_ids"][-1] == 102 and 0 not in row["input_ids"]
        assert row["label_ids"] and all(0 <= i < len(labels) for i in row["label_ids"])

    # The floor: share of validation documents holding the most frequent train label.
    majority = max(train_counts, key=lambda i: (train_counts[i], -i))
    val = _read(prepared, "validation")
    assert manifest["majority_label"]["id"] == majority
    assert manifest["splits"]["validation"]["majority_p1"] == pytest.approx(np.mean([majority in r["label_ids"] for r in val]))


def test_cache_hit_returns_the_same_folder_and_any_change_misses(datasets_dir, cache_dir, minilm_path):
    cfg = DataConfig(
        source="go_emotions",
        path=str(datasets_dir / "go_emotions"),
        max_len=32,
        train_limit=100,
        validation_limit=50,
        test_limit=50,
    )
    first = prepare(cfg, tokenizer=minilm_path)
    stamp = (first.path / "manifest.json").stat().st_mtime_ns
    again = prepare(cfg, tokenizer=minilm_path)
    assert again.path == first.path and (again.path / "manifest.json").stat().st_mtime_ns == stamp
    changed = prepare(DataConfig(**{**cfg.__dict__, "max_len": 48}), tokenizer=minilm_path)
    assert changed.path != first.path
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted([first.path.name, changed.path.name])


def test_full_go_emotions_matches_the_official_counts(datasets_dir, full_go_emotions):
    prepared = full_go_emotions  # max_len 64
    splits, stats = prepared.manifest["splits"], prepared.manifest["stats"]
    assert (splits["train"]["rows"], splits["validation"]["rows"], splits["test"]["rows"]) == (43_410, 5_426, 5_427)
    assert stats["num_train"] == 43_410 and stats["num_test"] == 5_427 and stats["num_labels"] == 28
    # The statistics table, recomputed from the raw TSV.
    raw = [line.split("\t") for line in (datasets_dir / "go_emotions" / "train.tsv").read_text(encoding="utf-8").splitlines()]
    label_counts = Counter(i for _, ids, _ in raw for i in ids.split(","))
    assert stats["avg_labels_per_point"] == pytest.approx(sum(label_counts.values()) / len(raw))
    assert stats["avg_points_per_label"] == pytest.approx(sum(label_counts.values()) / 28)
    neutral = label_counts.most_common(1)[0][0]
    assert prepared.manifest["majority_label"]["name"] == "neutral" and neutral == "27"
    dev = [
        line.split("\t")[1].split(",")
        for line in (datasets_dir / "go_emotions" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    ]
    assert splits["validation"]["majority_p1"] == pytest.approx(sum("27" in ids for ids in dev) / len(dev))
    for split in ("train", "validation", "test"):
        assert 0 <= splits[split]["truncation_rate"] < 0.01
        assert splits[split]["length_p50"] <= splits[split]["length_p90"] <= splits[split]["length_p99"] <= 64


def test_reuters_r90_counts_minus_documented_empty_text_drops(datasets_dir, cache_dir, minilm_path, monkeypatch):
    from sweetspot.search.config import load_experiment
    from tests.conftest import REPO

    monkeypatch.setenv("SWEETSPOT_DATA_DIR", str(datasets_dir))
    cfg = load_experiment(REPO / "examples" / "reuters.yaml").data
    prepared = prepare(cfg, tokenizer=minilm_path)
    splits, stats = prepared.manifest["splits"], prepared.manifest["stats"]
    folder = datasets_dir / "reuters21578"
    raw = {s: [json.loads(l) for l in (folder / f"modapte_r90_{s}.jsonl").read_text().splitlines()] for s in ("train", "test")}
    assert len(raw["train"]) == splits["train"]["source_rows"] == 7_770
    assert len(raw["test"]) == splits["test"]["source_rows"] == 3_019
    empty = {s: sum(1 for r in rows if not r["text"].strip()) for s, rows in raw.items()}
    assert empty == {"train": 47, "test": 14}
    assert splits["train"]["dropped"]["empty_text"] == 47 and splits["test"]["dropped"]["empty_text"] == 14
    # Validation is carved from train (10%): together they are the 7,723 non-empty train documents.
    assert splits["train"]["rows"] + splits["validation"]["rows"] == 7_770 - 47
    assert splits["validation"]["rows"] == round(0.1 * 7_723)
    assert stats["num_test"] == 3_019 - 14
    assert stats["num_labels"] == 90
    names = (folder / "labels_r90.txt").read_text().split()
    assert sorted(l["name"] for l in json.loads((prepared.path / "labels.json").read_text())) == sorted(names)
    train_rows = _read(prepared, "train")
    assert stats["avg_labels_per_point"] == pytest.approx(np.mean([len(r["label_ids"]) for r in train_rows]))


def test_windows_become_padded_batches_with_multi_hot_labels(datasets_dir, cache_dir, minilm_path):
    cfg = DataConfig(
        source="go_emotions",
        path=str(datasets_dir / "go_emotions"),
        max_len=32,
        train_limit=200,
        validation_limit=50,
        test_limit=50,
    )
    prepared = prepare(cfg, tokenizer=minilm_path)
    rows = _read(prepared, "train")
    seen, padded = 0, 0
    for batch in batches_from_windows(
        parquet_windows(prepared.split_dir("train"), window_rows=160, shuffle_seed=0),
        batch_size=16,
        num_labels=prepared.num_labels,
        shuffle_seed=0,
    ):
        lengths = batch["attention_mask"].sum(1)
        assert batch["input_ids"].shape[1] == lengths.max()  # padded to the longest in the batch only
        assert (batch["labels"].sum(1) >= 1).all() and set(batch["labels"].unique().tolist()) <= {0.0, 1.0}
        seen += len(lengths)
        padded += batch["input_ids"].numel()
    real = sum(r["length"] for r in rows)
    assert seen == len(rows)
    assert real / padded > 0.85  # length bucketing keeps padding small (10 batches per window)
    assert real / padded > 1.5 * real / (len(rows) * 32)  # far less than padding to max_len


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("train.tsv", "good text\t1\tid1\nbad line without tabs\n", "train.tsv:2: expected 3 tab-separated fields"),
        ("train.tsv", "text\t99\tid1\n", "train.tsv:1: label id '99' is not in 0..2"),
        ("dev.tsv", b"ok\t0\ta\n\xff\xfe\t0\tb\n", "dev.tsv:2: not valid utf-8"),
    ],
)
def test_bad_go_emotions_input_names_file_and_line_and_writes_nothing(tmp_path, cache_dir, minilm_path, name, content, message):
    folder = tmp_path / "go_emotions"
    folder.mkdir()
    (folder / "emotions.txt").write_text("joy\nanger\nneutral\n")
    for split in ("train.tsv", "dev.tsv", "test.tsv"):
        (folder / split).write_text("some text\t0\tid0\n")
    (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message):
        prepare(DataConfig(source="go_emotions", path=str(folder)), tokenizer=minilm_path)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_invalid_json_line_is_named(tmp_path, cache_dir, minilm_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "labels": ["x"]}\n{"text": "b", "labels": [\n')
    (tmp_path / "test.jsonl").write_text('{"text": "a", "labels": ["x"]}\n')
    with pytest.raises(DataError, match=r"train.jsonl:2: invalid JSON"):
        prepare(DataConfig(source="jsonl", path=str(tmp_path)), tokenizer=minilm_path)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_missing_folder_and_unknown_source_are_named(tmp_path, cache_dir, minilm_path):
    with pytest.raises(DataError, match=r"no such folder \(data.path\)"):
        prepare(DataConfig(source="go_emotions", path=str(tmp_path / "nope")), tokenizer=minilm_path)
    with pytest.raises(DataError, match=r"data.source: unknown source 'eurlex9'"):
        prepare(DataConfig(source="eurlex9", path=str(tmp_path)), tokenizer=minilm_path)


def test_data_dir_env_is_used_when_no_path_is_given(datasets_dir, cache_dir, minilm_path, monkeypatch):
    monkeypatch.setenv("SWEETSPOT_DATA_DIR", str(datasets_dir))
    prepared = prepare(
        DataConfig(source="go_emotions", train_limit=50, validation_limit=20, test_limit=20), tokenizer=minilm_path
    )
    assert prepared.manifest["source_path"] == str((datasets_dir / "go_emotions").resolve())


def test_without_local_copy_go_emotions_falls_back_to_the_hub_and_says_so_offline(tmp_path, cache_dir, minilm_path, monkeypatch):
    # The hub is unreachable here: the fallback is attempted and fails with one clear message.
    monkeypatch.setenv("SWEETSPOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(
        DataError, match=r"no local go_emotions copy .* hub dataset google-research-datasets/go_emotions could not be loaded"
    ):
        prepare(DataConfig(source="go_emotions"), tokenizer=minilm_path)


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000,  # one giant word: BERT's WordPiece makes it one [UNK]
        "ab." * 300_000,  # words joined by punctuation, no whitespace
        "short words " * 100 + "x" * 500_000,  # the giant word after the kept tokens
        "[" + "x" * 150 + "] " + "y " * 80,  # an [UNK] word among the kept tokens, then ordinary words
    ],
    ids=["giant-word", "punctuation-only", "giant-word-later", "unk-then-words"],
)
def test_a_document_is_tokenized_only_up_to_a_bound_and_gives_the_whole_texts_first_tokens(text, minilm_path):
    from transformers import AutoTokenizer

    from sweetspot.data import prepare as prep

    tok = AutoTokenizer.from_pretrained(minilm_path)
    (ids,) = prep._tokenize(tok, [text], 32, "test")
    assert ids == tok(text, truncation=True, max_length=32)["input_ids"]
    from tokenizers import Tokenizer

    whole = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    whole.no_truncation()
    whole.no_padding()
    assert len(prep._bounded(whole, text, 30)) <= 30 * prep.MAX_CHARS_PER_TOKEN  # never the whole 1 MB
