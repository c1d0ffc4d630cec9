"""Prepare a dataset once: read -> subsample -> assign label ids -> tokenize -> Parquet shards.

Output folder (named by the cache key, written atomically: a temporary folder renamed at the end):

    <cache_dir>/<source>-<key12>/
        train/part-00000.parquet       input_ids: list<int32> (unpadded), label_ids: list<int32>, length: int32
                                       (rows in a seeded random order, not the source's)
        validation/part-00000.parquet
        test/part-00000.parquet
        labels.json                    [{"id", "name", "train_count"}]
        manifest.json                  fingerprints, tokenizer, options, statistics

The cache key covers the input files' content, the tokenizer's full definition and every option,
so a second `prepare` with the same inputs only hashes files and returns.

Example:
    >>> prepared = prepare(DataConfig(source="go_emotions", train_limit=500), tokenizer="...")  # doctest: +SKIP
    >>> prepared.manifest["stats"]["num_labels"]  # doctest: +SKIP
    28

Over 400 lines on purpose: the preparation is one pipeline read top to bottom (read, subsample, label
ids, tokenize, shard, rename), with its cache key and manifest beside the steps they describe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import socket
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sweetspot.data.config import DataConfig
from sweetspot.data.sources import SPLITS, DataError, Example, RawDataset, get_source, resolve_folder

FORMAT_VERSION = 2  # bump when the prepared layout or row selection changes: old cache entries become misses
# 2: every split stored in a seeded random order (1 kept the source's order), draws from one generator
SHARD_ROWS = 50_000
SCHEMA = pa.schema(
    [
        ("input_ids", pa.list_(pa.int32())),
        ("label_ids", pa.list_(pa.int32())),
        ("length", pa.int32()),
    ]
)


@dataclass(frozen=True)
class Prepared:
    """A prepared dataset folder and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def num_labels(self) -> int:
        return int(self.manifest["stats"]["num_labels"])

    def split_dir(self, split: str) -> Path:
        return self.path / split

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    @classmethod
    def load(cls, path: str | Path) -> Prepared:
        path = Path(path)
        return cls(path, json.loads((path / "manifest.json").read_text()))

    def label_prior_bce(self) -> float:
        """The label-prior plateau: the training BCE (nats, mean over documents and labels) of
        predicting every label at its training rate for every document, whatever the text. A run
        whose training loss sits here has learnt the label prior and nothing more."""
        labels = json.loads((self.path / "labels.json").read_text())
        return label_prior_bce([label["train_count"] for label in labels], int(self.manifest["splits"]["train"]["rows"]))


def label_prior_bce(train_counts: Sequence[int], num_docs: int) -> float:
    """Mean binary entropy (nats) of the labels' training rates: the BCE of the best constant predictor.

    Example:
        >>> round(label_prior_bce([50, 0, 100], 100), 4)  # rates 0.5, 0, 1: only the first is uncertain
        0.231
    """

    def entropy(p: float) -> float:
        return 0.0 if p <= 0.0 or p >= 1.0 else -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))

    return sum(entropy(count / num_docs) for count in train_counts) / len(train_counts) if train_counts and num_docs else 0.0


def default_cache_dir() -> Path:
    env = os.environ.get("SWEETSPOT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "sweetspot" / "prepared"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_tokenizer(name: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, use_fast=True)
    except Exception as e:
        raise DataError(f"data.tokenizer: cannot load tokenizer {name!r}: {str(e).splitlines()[0]}") from None


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "added_tokens.json")


def _tokenizer_fingerprint(name: str) -> str:
    """A hash of the tokenizer's definition. For a local folder, its files (no loading, so a cache
    hit stays fast); for a hub id, the loaded fast tokenizer's full JSON definition."""
    folder = Path(name)
    if folder.is_dir():
        h = hashlib.sha256()
        for file in _TOKENIZER_FILES:
            if (folder / file).is_file():
                h.update(file.encode() + b"\0" + _sha256_file(folder / file).encode())
        return h.hexdigest()
    return hashlib.sha256(_load_tokenizer(name).backend_tokenizer.to_str().encode()).hexdigest()


def _options(cfg: DataConfig) -> dict[str, Any]:
    """Every option that changes the output (not where it is read from or cached)."""
    skip = {"path", "cache_dir", "tokenizer"}
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip}


def _draw(examples: list[Example], limit: int | None, rng: np.random.Generator) -> list[Example]:
    """A seeded random draw of `limit` examples (all of them when `None`), in a random order.

    Neither what a split holds nor the order it is stored in follows the source's order: a source
    sorted by date or label would otherwise give a skewed subsample and a split whose blocks each
    hold one kind of document.
    """
    return [examples[i] for i in rng.permutation(len(examples))[:limit]]


def _tokenize(tokenizer, texts: list[str], max_len: int, desc: str) -> list[list[int]]:
    """Token ids with [CLS]/[SEP], truncated to `max_len`, unpadded.

    Calls the Rust tokenizer behind the Hugging Face one directly: the same ids, without building
    a Python `BatchEncoding` (attention masks, offsets) per document, which costs a third of the
    time on short texts.
    """
    from tokenizers import Tokenizer
    from tqdm.auto import tqdm

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy: settings stay local
    backend.no_padding()
    whole = Tokenizer.from_str(backend.to_str())
    whole.no_truncation()
    backend.enable_truncation(max_length=max_len)
    content = max_len - tokenizer.num_special_tokens_to_add(pair=False)
    ids: list[list[int]] = []
    step = 2048
    with tqdm(total=len(texts), desc=f"tokenizing {desc}", unit="doc", file=sys.stderr, disable=None) as bar:
        for start in range(0, len(texts), step):
            chunk = [_bounded(whole, t, content) for t in texts[start : start + step]]
            ids.extend(encoding.ids for encoding in backend.encode_batch(chunk, add_special_tokens=True))
            bar.update(len(chunk))
    return ids


CHARS_PER_TOKEN = 32  # a first cut: a document's first N tokens rarely span more than 32 N characters
MAX_CHARS_PER_TOKEN = 8192  # the cut stops growing here: a document is never tokenized past N × this


def _bounded(whole, text: str, content: int) -> str:
    """`text` cut to a prefix that gives the same first `content` tokens, so that memory and time stay
    bounded by `data.max_len`, not by the document (a 100 MB line). The prefix is accepted when its
    tokens (`whole`: no truncation) go past `content` and the word of the last kept token ends
    before the cut (whitespace follows it: no word is cut that a kept token belongs to); else it grows,
    up to `content` × `MAX_CHARS_PER_TOKEN` characters. A text with no whitespace that far (one giant
    word, or words joined by punctuation) is cut there: a WordPiece token spans at most one word, and a
    word longer than the model's limit (100 characters for BERT's vocabularies) is one [UNK] however
    long it is, so the kept tokens come out the same unless `content` [UNK] words of thousands of
    characters each precede the cut."""
    cut, cap = max(content, 1) * CHARS_PER_TOKEN, max(content, 1) * MAX_CHARS_PER_TOKEN
    while cut < len(text) and cut <= cap:
        prefix = text[:cut]
        encoding = whole.encode(prefix, add_special_tokens=False)
        if len(encoding.ids) > content:
            end = encoding.offsets[content - 1][1] if content > 0 else 0
            if any(c.isspace() for c in prefix[end:]):
                return prefix
        cut *= 4
    return text[:cap]


def _write_split(folder: Path, input_ids: list[list[int]], label_ids: list[list[int]]) -> None:
    folder.mkdir(parents=True)
    for shard, start in enumerate(range(0, max(len(input_ids), 1), SHARD_ROWS)):
        rows = slice(start, start + SHARD_ROWS)
        table = pa.table(
            {
                "input_ids": pa.array(input_ids[rows], pa.list_(pa.int32())),
                "label_ids": pa.array(label_ids[rows], pa.list_(pa.int32())),
                "length": pa.array([len(x) for x in input_ids[rows]], pa.int32()),
            },
            schema=SCHEMA,
        )
        pq.write_table(table, folder / f"part-{shard:05d}.parquet")


def _split_stats(lengths: np.ndarray, max_len: int, label_ids: list[list[int]], majority: int) -> dict[str, Any]:
    n = len(lengths)
    return {
        "rows": n,
        "truncation_rate": float(np.mean(lengths >= max_len)) if n else 0.0,
        "length_p50": float(np.percentile(lengths, 50)) if n else 0.0,
        "length_p90": float(np.percentile(lengths, 90)) if n else 0.0,
        "length_p99": float(np.percentile(lengths, 99)) if n else 0.0,
        "length_max": int(lengths.max()) if n else 0,
        "avg_labels_per_doc": float(np.mean([len(x) for x in label_ids])) if n else 0.0,
        # P@1 of always predicting the most frequent training label: the floor a model must beat.
        "majority_p1": float(np.mean([majority in x for x in label_ids])) if n else 0.0,
    }


def prepare(cfg: DataConfig, *, tokenizer: str, cache_dir: str | Path | None = None, force: bool = False) -> Prepared:
    """Prepares `cfg`'s dataset with `tokenizer`, or returns the cached copy.

    Args:
        cfg: The `data:` section.
        tokenizer: Tokenizer hub id or folder (`cfg.tokenizer` wins when set).
        cache_dir: Overrides `cfg.cache_dir` and the default cache folder.
        force: Prepare again even when the cache holds this key.

    Raises:
        DataError: bad input, naming the file and line or the config key. Nothing is written.
    """
    tokenizer_name = cfg.tokenizer or tokenizer
    source = get_source(cfg.source)
    folder = resolve_folder(cfg)

    if folder is not None:  # local files: their content hashes identify the input, no parsing yet
        fingerprint = {role: f"{p.name}:sha256:{_sha256_file(p)}" for role, p in source.files(cfg, folder).items()}
        raw: RawDataset | None = None
    else:  # hub: the dataset's own fingerprint identifies the input
        raw = source.read(cfg, None) if source.files is None else source.hub_fallback(cfg)
        fingerprint = raw.fingerprint
    key_material = {
        "format": FORMAT_VERSION,
        "source": cfg.source,
        "inputs": fingerprint,
        "tokenizer": _tokenizer_fingerprint(tokenizer_name),
        "options": _options(cfg),
    }
    key = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()
    root = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else Path(cache_dir) if cache_dir else default_cache_dir()
    final = root.resolve() / f"{cfg.source}-{key[:12]}"
    if final.is_dir() and (final / "manifest.json").is_file() and not force:
        return Prepared.load(final)

    if raw is None:
        raw = source.read(cfg, folder)
    splits, report, order = _select_rows(raw, cfg)
    tok = _load_tokenizer(tokenizer_name)
    label_id = {name: i for i, name in enumerate(order)}
    train_counts = Counter(name for ex in splits["train"] for name in ex.labels)
    majority = max(range(len(order)), key=lambda i: (train_counts[order[i]], -i))

    root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(root)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{final.name}-{_owner()}-", dir=root))
    try:
        split_stats = {}
        for split, examples in splits.items():
            texts = [ex.text for ex in examples]
            ids = [[label_id[n] for n in dict.fromkeys(ex.labels)] for ex in examples]
            input_ids = _tokenize(tok, texts, cfg.max_len, split)
            _write_split(tmp / split, input_ids, ids)
            lengths = np.array([len(x) for x in input_ids])
            split_stats[split] = {**_split_stats(lengths, cfg.max_len, ids, majority), **report[split]}
        labels_json = [{"id": i, "name": n, "train_count": train_counts[n]} for i, n in enumerate(order)]
        (tmp / "labels.json").write_text(json.dumps(labels_json, indent=1, ensure_ascii=False))
        manifest = {
            "key": key,
            "format": FORMAT_VERSION,
            "source": cfg.source,
            "source_path": str(folder) if folder else None,
            "inputs": fingerprint,
            "tokenizer": {
                "name": tokenizer_name,
                "fingerprint": key_material["tokenizer"],
                "pad_token_id": int(tok.pad_token_id or 0),
            },
            "max_len": cfg.max_len,
            "options": key_material["options"],
            "splits": split_stats,
            "majority_label": {"id": majority, "name": order[majority]},
            # The study's statistics table (as reported for EURLex-4K), over the final splits.
            "stats": {
                "num_train": split_stats["train"]["rows"],
                "num_labels": len(order),
                "num_test": split_stats["test"]["rows"],
                "avg_points_per_label": sum(train_counts[n] for n in order) / len(order),
                "avg_labels_per_point": split_stats["train"]["avg_labels_per_doc"],
            },
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same key first: keep theirs
            if not (final / "manifest.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Prepared.load(final)


# A prepare writes into `.tmp-<final name>-<host>_<pid>-<random>` and renames it at the end; one
# killed midway (SIGKILL, a lost node) leaves that folder behind. The next prepare on the same host
# removes the folders whose process is gone (a live one may be preparing right now).
_TMP_PREFIX = ".tmp-"


def _owner() -> str:
    return f"{socket.gethostname().replace('-', '_')}_{os.getpid()}"


def _remove_abandoned(root: Path) -> None:
    host = socket.gethostname().replace("-", "_")
    for folder in root.glob(f"{_TMP_PREFIX}*-{host}_*-*"):
        pid = folder.name.rsplit("-", 2)[-2].rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _carve(examples: list[Example], fraction: float, rng: np.random.Generator) -> tuple[list[Example], list[Example]]:
    """Splits off a seeded random `fraction` of `examples` (at least one): (rest, carved)."""
    order = rng.permutation(len(examples))
    cut = max(1, round(len(examples) * fraction))
    return [examples[i] for i in order[cut:]], [examples[i] for i in order[:cut]]


def _select_rows(raw: RawDataset, cfg: DataConfig) -> tuple[dict[str, list[Example]], dict[str, dict[str, Any]], list[str]]:
    """Row and label policy, in this order:

    1. per source split: drop empty texts and unlabelled documents (counted; errors if `strict`),
       then repeated texts if `drop_duplicates`;
    2. the label vocabulary comes from the source's train split (before any carving or
       subsampling, so it does not change with `train_limit`): labels with fewer than
       `min_label_count` documents are dropped, then all but the `top_k_labels` most frequent;
       label names outside it are dropped from every split (counted), and so are documents left
       without labels;
    3. test, then validation, are carved from train when the source has none;
    4. each split is subsampled to its `*_limit`, and stored in a random order.

    Every random choice (3, 4) comes from one generator seeded with `data.seed`.

    Returns the splits, a per-split report of what was dropped, and the label order.
    """
    if not raw.splits.get("train"):
        raise DataError(f"{cfg.source}: the train split is empty")
    report: dict[str, dict[str, Any]] = {}
    cleaned: dict[str, list[Example]] = {}
    for split, examples in raw.splits.items():
        kept, dropped = [], Counter()
        seen: set[str] = set()
        for ex in examples:
            if not ex.text.strip():
                if cfg.strict:
                    raise DataError(f"{ex.where}: empty text (data.strict is true)")
                dropped["empty_text"] += 1
            elif not ex.labels:
                if cfg.strict:
                    raise DataError(f"{ex.where}: no labels (data.strict is true)")
                dropped["no_labels"] += 1
            elif cfg.drop_duplicates and ex.text.strip() in seen:
                dropped["duplicate_text"] += 1
            else:
                seen.add(ex.text.strip())
                kept.append(ex)
        if not kept:
            raise DataError(f"{cfg.source}: the {split} split is empty after dropping empty or unlabelled documents")
        cleaned[split] = kept
        report[split] = {
            "source_rows": len(examples),
            "dropped": {k: dropped[k] for k in ("empty_text", "no_labels", "duplicate_text")},
        }

    counts = Counter(name for ex in cleaned["train"] for name in ex.labels)
    vocabulary = [n for n, c in counts.items() if c >= cfg.min_label_count]
    if cfg.top_k_labels is not None:
        vocabulary = sorted(vocabulary, key=lambda n: (-counts[n], n))[: cfg.top_k_labels]
    if not vocabulary:
        raise DataError("data.min_label_count / data.top_k_labels: no training label is left")
    keep = set(vocabulary)
    order = [n for n in raw.label_order if n in keep] if raw.label_order else sorted(keep)
    for split, examples in cleaned.items():
        outside = Counter(n for ex in examples for n in ex.labels if n not in keep)
        filtered = [
            ex if all(n in keep for n in ex.labels) else ex._replace(labels=[n for n in ex.labels if n in keep])
            for ex in examples
        ]
        cleaned[split] = [ex for ex in filtered if ex.labels]
        if not cleaned[split]:
            missing = sorted(n for n in outside if n not in counts)
            why = (
                (
                    f"its labels are missing from train ({', '.join(map(repr, missing[:5]))}{', ...' if len(missing) > 5 else ''} "
                    "never occur in the train split)"
                )
                if missing
                else "its labels were all dropped by data.min_label_count / data.top_k_labels"
            )
            raise DataError(f"{cfg.source}: the {split} split is empty because {why}")
        report[split]["labels_outside_vocabulary"] = {"distinct": len(outside), "occurrences": sum(outside.values())}
        report[split]["dropped"]["only_dropped_labels"] = len(filtered) - len(cleaned[split])
    # Nothing to learn: every run would sit at the floor and be reported collapsed.
    if len(keep) < 2:
        raise DataError(
            f"{cfg.source}: the train split has one label ({order[0]!r}); multi-label classification needs at least two"
        )
    if all(len(set(ex.labels)) == len(keep) for ex in cleaned["train"]):
        raise DataError(
            f"{cfg.source}: every train document has every label ({len(keep)}); there is nothing to tell documents apart by"
        )

    rng = np.random.default_rng(cfg.seed % 2**64)  # numpy seeds must be non-negative
    for carved, fraction in (("test", cfg.test_fraction), ("validation", cfg.validation_fraction)):
        if carved not in cleaned:
            cleaned["train"], cleaned[carved] = _carve(cleaned["train"], fraction, rng)
            report[carved] = {"carved_from_train": fraction}

    limits = {"train": cfg.train_limit, "validation": cfg.validation_limit, "test": cfg.test_limit}
    selected = {split: _draw(cleaned[split], limits[split], rng) for split in SPLITS}
    for split, examples in selected.items():
        if not examples:
            raise DataError(f"{cfg.source}: the {split} split is empty")
    return selected, report, order
