"""The majority-label and TF-IDF baselines on a tiny prepared folder with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sweetspot.analysis import baselines
from sweetspot.analysis.baselines import compute_baselines, precision_at_k
from tests.analysis_tests.folders import write_prepared

# Label k is announced by token 10 + k; documents with two labels carry both tokens.
LABELS = [("a", 4), ("b", 3), ("c", 2)]


def _doc(*labels: int) -> tuple[list[int], list[int]]:
    return [101, *[10 + k for k in labels], 5, 102], list(labels)


@pytest.fixture
def prepared(tmp_path):
    train = [_doc(0), _doc(0), _doc(0), _doc(0, 1), _doc(1), _doc(1), _doc(2), _doc(2)]
    validation = [_doc(0), _doc(1), _doc(2), _doc(1, 2)]
    return write_prepared(tmp_path / "prepared", LABELS, {"train": train, "validation": validation, "test": [_doc(2)]})


def test_majority_ranks_by_training_frequency_and_tfidf_reads_the_tokens(prepared):
    base = compute_baselines(str(prepared), use_cache=False)
    # Always a, b, c: P@1 = docs with a (1 of 4); P@3 = |true labels| / 3 averaged = (1 + 1 + 1 + 2) / 12.
    assert base.majority["validation"] == pytest.approx({"p1": 0.25, "p3": 5 / 12, "p5": 5 / 20})
    assert base.majority["test"]["p1"] == 0.0
    assert base.tfidf["validation"]["p1"] == 1.0 and base.tfidf["test"]["p1"] == 1.0
    assert "train" not in base.majority


def test_results_are_cached_beside_the_prepared_data_and_recomputed_when_settings_change(prepared, monkeypatch):
    first = compute_baselines(str(prepared))
    cache = prepared / baselines.CACHE_FILE
    assert cache.is_file() and not first.cached
    assert not [p for p in prepared.iterdir() if p.name.endswith(".tmp")]  # written atomically, nothing left over
    saved = json.loads(cache.read_text())
    saved["tfidf"]["validation"]["p1"] = 0.123  # what the cache says is what is returned
    cache.write_text(json.dumps(saved))
    assert compute_baselines(str(prepared)).cached and compute_baselines(str(prepared)).tfidf["validation"]["p1"] == 0.123
    monkeypatch.setattr(baselines, "SETTINGS", {**baselines.SETTINGS, "version": 999})
    again = compute_baselines(str(prepared))
    assert not again.cached and again.tfidf["validation"]["p1"] == 1.0


def test_precision_at_k_counts_hits_over_k_and_missing_data_is_an_error(tmp_path):
    scores = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.3]])
    assert precision_at_k(scores, [np.array([0, 2]), np.array([0])], 2) == pytest.approx((1 / 2 + 0) / 2)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        compute_baselines(str(tmp_path / "gone"))
