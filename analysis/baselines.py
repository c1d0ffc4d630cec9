"""Reference lines for the report: what a model must beat, on the same prepared splits.

- `majority`: every document gets the training labels ranked by frequency (P@1 is the
  trainable's `majority_p1` floor).
- `tfidf`: TF-IDF over the prepared token ids + one-vs-rest linear SVMs (scikit-learn). The token
  ids are the vocabulary (unigrams and bigrams of ids, sublinear tf, ids seen in ≥ 2 training
  documents): no tokenizer is loaded, and the features see exactly the truncated documents the
  encoder saw. Labels absent from the training split get a constant score.

Both report P@1/3/5 on every prepared split except train. Results are cached in
`<prepared>/baselines.json` (written atomically) with the settings they came from; the prepared
folder is keyed by its content, so the cache is only recomputed when the settings change.

Example:
    >>> base = compute_baselines("~/.cache/sweetspot/prepared/go_emotions-2372119daa08")  # doctest: +SKIP
    >>> base.tfidf["validation"]["p1"] > base.majority["validation"]["p1"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweetspot import storage

CACHE_FILE = "baselines.json"
SETTINGS = {
    "version": 1,
    "features": "token-id unigrams+bigrams",
    "sublinear_tf": True,
    "min_df": 2,
    "classifier": "OneVsRest(LinearSVC(C=1.0))",
    "ks": [1, 3, 5],
}


@dataclass(frozen=True)
class Baselines:
    majority: dict[str, dict[str, float]]  # split -> {"p1": .., "p3": .., "p5": ..}
    tfidf: dict[str, dict[str, float]]
    settings: dict[str, Any]
    seconds: float  # time to compute (not to read the cache)
    cached: bool = False


def _read_split(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    import pyarrow.parquet as pq

    ids, labels = [], []
    for path in sorted(folder.glob("*.parquet")):
        table = pq.read_table(path, columns=["input_ids", "label_ids"])
        ids += [np.asarray(x, dtype=np.int64) for x in table.column("input_ids").to_pylist()]
        labels += [np.asarray(x, dtype=np.int64) for x in table.column("label_ids").to_pylist()]
    return ids, labels


def precision_at_k(scores: np.ndarray, label_ids: list[np.ndarray], k: int) -> float:
    """Mean over documents of |top-k ∩ true| / k (the trainable's P@k; stable order on ties).

    Example:
        >>> precision_at_k(np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1]]), [np.array([0]), np.array([0, 2])], 1)
        0.5
    """
    if len(label_ids) == 0:
        return float("nan")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = [len(set(row.tolist()) & set(t.tolist())) for row, t in zip(top, label_ids)]
    return float(np.mean(hits) / k)


def _features(ids: np.ndarray) -> list[str]:
    tokens = [str(t) for t in ids.tolist()]
    return tokens + [f"{a}_{b}" for a, b in zip(tokens, tokens[1:])]


def _tfidf_scores(train_ids, train_labels, evals: dict[str, list[np.ndarray]], num_labels: int) -> dict[str, np.ndarray]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.svm import LinearSVC

    min_df = SETTINGS["min_df"] if len(train_ids) >= 2 * SETTINGS["min_df"] else 1
    vectorizer = TfidfVectorizer(analyzer=_features, sublinear_tf=SETTINGS["sublinear_tf"], min_df=min_df)
    x = vectorizer.fit_transform(train_ids)
    y = MultiLabelBinarizer(classes=list(range(num_labels))).fit_transform([t.tolist() for t in train_labels])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Label k is present in all/no training examples"
        model = OneVsRestClassifier(LinearSVC(C=1.0), n_jobs=1).fit(x, y)
        return {
            split: np.asarray(model.decision_function(vectorizer.transform(ids))).reshape(len(ids), num_labels)
            for split, ids in evals.items()
            if ids
        }


def compute_baselines(prepared_path: str, *, use_cache: bool = True) -> Baselines:
    """The majority and TF-IDF baselines of a prepared dataset folder (cached in it).

    Raises:
        FileNotFoundError: the folder has no manifest.json (the prepared data was deleted).
    """
    folder = Path(prepared_path).expanduser()
    manifest_file = folder / "manifest.json"
    if not manifest_file.is_file():
        raise FileNotFoundError(f"{folder}: no prepared data (manifest.json missing)")
    cache = folder / CACHE_FILE
    if use_cache and cache.is_file():
        try:
            saved = json.loads(cache.read_text())
            if saved.get("settings") == SETTINGS:
                return Baselines(**{**saved, "cached": True})
        except (ValueError, TypeError):
            pass  # unreadable or from another layout: compute again
    start = time.perf_counter()
    manifest = json.loads(manifest_file.read_text())
    labels = json.loads((folder / "labels.json").read_text())
    num_labels = len(labels)
    counts = np.zeros(num_labels)
    for x in labels:
        counts[int(x["id"])] = x.get("train_count") or 0
    train_ids, train_labels = _read_split(folder / "train")
    evals = {split: _read_split(folder / split) for split in manifest["splits"] if split != "train"}
    ks = SETTINGS["ks"]
    # Most frequent first, lowest id on ties: -count with a tiny id penalty keeps argsort stable.
    prior = -np.arange(num_labels) * 1e-9 + counts
    majority = {
        split: {f"p{k}": precision_at_k(np.tile(prior, (len(lab), 1)), lab, k) for k in ks}
        for split, (_, lab) in evals.items()
        if lab
    }
    scores = _tfidf_scores(train_ids, train_labels, {s: ids for s, (ids, _) in evals.items()}, num_labels)
    tfidf = {split: {f"p{k}": precision_at_k(s, evals[split][1], k) for k in ks} for split, s in scores.items()}
    result = Baselines(majority=majority, tfidf=tfidf, settings=SETTINGS, seconds=time.perf_counter() - start)
    try:
        storage.write_bytes(str(cache), json.dumps(asdict(result), indent=1).encode())
    except OSError:  # a read-only cache: the baselines are still in the report
        pass
    return result
