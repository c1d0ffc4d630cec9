"""The `data:` section of an experiment file, as a typed frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field

from sweetspot.checks import at_least, between, known_encoding, non_empty, optional, registered, rule


def _sources():
    from sweetspot.data.sources import SOURCES

    return SOURCES


@dataclass(frozen=True)
class DataConfig:
    """Which multi-label text dataset to prepare, and how.

    Attributes:
        source: Name of a reader in `data.sources.SOURCES`: `go_emotions`, `eurlex`,
            `stackexchange`, `jsonl`, `csv`, `parquet`, `hub`.
        path: Folder holding the source files; `${VAR}` is expanded (e.g.
            `${SWEETSPOT_DATA_DIR}/reuters21578`). `None` means `$SWEETSPOT_DATA_DIR/<source>` and,
            for `go_emotions`, the Hugging Face hub copy when no local folder exists.
        files: Split name (`train`, `validation`, `test`) -> file name inside `path`, for sources
            made of one file per split (`jsonl`, `csv`, `parquet`); for `hub`, -> the hub split name.
        text_field: Column (or JSON key) of the document text (`jsonl`, `csv`, `parquet`, `hub`).
        labels_field: Column of the labels: a list of names, or one string split on
            `label_delimiter`.
        label_delimiter: Separator of labels given as one string (`csv`, or string-valued columns).
        encoding: Text encoding of the source files; bytes that do not decode are an error.
        hub_id: Hugging Face dataset id (`hub` source).
        hub_config: Its configuration name, if any.
        max_len: Tokens kept per document, [CLS] and [SEP] included; longer documents are truncated.
        top_k_labels: Keep only the k most frequent training labels (`None`: all).
        min_label_count: Drop labels with fewer training documents than this.
        drop_duplicates: Drop documents whose text repeats an earlier one in the same split.
        strict: Empty texts and documents without labels are errors instead of counted drops.
        train_limit: Keep a seeded random subset of this many training documents (`None`: all).
        validation_limit: The same for the validation split.
        test_limit: The same for the test split.
        validation_fraction: Share of train carved out as validation when the source has none.
        test_fraction: Share of train carved out as test when the source has no test split.
        seed: Seed of every subsample and carve-out, and of the order the splits are stored in.
        tokenizer: Tokenizer (hub id or folder); `None` means the model's own tokenizer.
        cache_dir: Where prepared datasets live; `None` means `$SWEETSPOT_CACHE_DIR` or
            `~/.cache/sweetspot/prepared`.
    """

    source: str = field(default="go_emotions", metadata=rule(registered(_sources, "source")))
    path: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    text_field: str = "text"
    labels_field: str = "labels"
    label_delimiter: str = field(default=",", metadata=rule(non_empty))
    encoding: str = field(default="utf-8", metadata=rule(known_encoding))
    hub_id: str | None = None
    hub_config: str | None = None
    max_len: int = field(default=128, metadata=rule(at_least(8)))  # above the model's positions: search/preflight.py
    top_k_labels: int | None = field(default=None, metadata=rule(optional(at_least(1))))
    min_label_count: int = field(default=1, metadata=rule(at_least(1)))
    drop_duplicates: bool = False
    strict: bool = False
    train_limit: int | None = field(default=None, metadata=rule(optional(at_least(1))))
    validation_limit: int | None = field(default=None, metadata=rule(optional(at_least(1))))
    test_limit: int | None = field(default=None, metadata=rule(optional(at_least(1))))
    validation_fraction: float = field(default=0.1, metadata=rule(between(0.0, 1.0, include_low=False)))
    test_fraction: float = field(default=0.2, metadata=rule(between(0.0, 1.0, include_low=False)))
    seed: int = field(default=0, metadata=rule(between(0, 2**32 - 1, include_high=True)))  # numpy takes [0, 2**32)
    tokenizer: str | None = None
    cache_dir: str | None = None
