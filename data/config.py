"""The `data:` section of an experiment file, as a typed frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataConfig:
    """Which multi-label text dataset to prepare, and how.

    Attributes:
        source: Name of a reader in `data.sources.SOURCES` (`go_emotions`, `jsonl`).
        path: Folder holding the source files. `None` means `$SWEETSPOT_DATA_DIR/<source>` and,
            for sources that have one, the Hugging Face hub copy when no local folder exists.
        files: Split name -> file name inside `path`, for sources made of one file per split
            (`jsonl`). Splits are `train`, `validation`, `test`.
        text_field: Key of the document text in each JSON object (`jsonl`).
        labels_field: Key of the list of label names in each JSON object (`jsonl`).
        max_len: Tokens kept per document, [CLS] and [SEP] included; longer documents are truncated.
        train_limit: Keep a seeded random subset of this many training documents (`None`: all).
        validation_limit: The same for the validation split.
        test_limit: The same for the test split.
        validation_fraction: Share of train carved out as validation when the source has none.
        seed: Seed of every subsample and of the validation carve-out.
        tokenizer: Tokenizer (hub id or folder); `None` means the model's own tokenizer.
        cache_dir: Where prepared datasets live; `None` means `$SWEETSPOT_CACHE_DIR` or
            `~/.cache/sweetspot/prepared`.
    """

    source: str = "go_emotions"
    path: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    text_field: str = "text"
    labels_field: str = "labels"
    max_len: int = 128
    train_limit: int | None = None
    validation_limit: int | None = None
    test_limit: int | None = None
    validation_fraction: float = 0.1
    seed: int = 0
    tokenizer: str | None = None
    cache_dir: str | None = None
