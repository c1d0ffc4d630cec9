"""Readers of raw multi-label text datasets, one per input layout, looked up by name in `SOURCES`.

A reader turns a folder into `RawDataset`: per split, a list of `(text, [label names])`. Readers
only parse; subsampling, label-id assignment and tokenization happen once in `data.prepare`.
Every parse error is a `DataError` naming the file and line.

Example:
    >>> from data.sources import SOURCES
    >>> sorted(SOURCES)
    ['go_emotions', 'jsonl']
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from data.config import DataConfig

Example = tuple[str, list[str]]  # (document text, label names)
SPLITS = ("train", "validation", "test")


class DataError(ValueError):
    """Bad input data; the message names the file and line (or the config key)."""


@dataclass
class RawDataset:
    """Parsed splits before preparation.

    Attributes:
        splits: Split name (`train`, `validation`, `test`) -> examples. A missing `validation`
            is carved from train by `data.prepare`.
        label_order: Label names in the source's own order (e.g. emotions.txt), or `None`.
        fingerprint: What identifies the input: file names and content hashes, or a hub id.
    """

    splits: dict[str, list[Example]]
    label_order: list[str] | None = None
    fingerprint: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """One registry entry: how to list a folder's input files and how to read them."""

    files: Callable[[DataConfig, Path], dict[str, Path]]  # role -> file, for the cache key
    read: Callable[[DataConfig, Path], RawDataset]
    hub_fallback: Callable[[DataConfig], RawDataset] | None = None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, line without newline), refusing bytes that are not UTF-8."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{number}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
            yield number, line.rstrip("\r\n")


def _require(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return path


# ---------------------------------------------------------------------------------------------
# go_emotions: the official TSV layout (train/dev/test.tsv with `text<TAB>ids<TAB>comment id`,
# emotions.txt naming the label ids in order), or the hub dataset (config `simplified`).

_GO_EMOTIONS_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


def _go_emotions_files(cfg: DataConfig, folder: Path) -> dict[str, Path]:
    files = {split: folder / name for split, name in _GO_EMOTIONS_FILES.items()}
    files["labels"] = folder / "emotions.txt"
    return {role: _require(p) for role, p in files.items()}


def _read_go_emotions(cfg: DataConfig, folder: Path) -> RawDataset:
    files = _go_emotions_files(cfg, folder)
    names = [line.strip() for _, line in _lines(files["labels"]) if line.strip()]
    splits: dict[str, list[Example]] = {}
    for split in SPLITS:
        path = files[split]
        examples = []
        for number, line in _lines(path):
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 3:
                raise DataError(f"{path}:{number}: expected 3 tab-separated fields (text, label ids, id), got {len(fields)}")
            labels = []
            for token in fields[1].split(","):
                if not token.strip().isdigit() or int(token) >= len(names):
                    raise DataError(f"{path}:{number}: label id {token!r} is not in 0..{len(names) - 1} ({files['labels'].name})")
                labels.append(names[int(token)])
            examples.append((fields[0], labels))
        splits[split] = examples
    return RawDataset(splits=splits, label_order=names)


def _hub_go_emotions(cfg: DataConfig) -> RawDataset:
    import datasets  # local: only the hub fallback needs it

    repo, config = "google-research-datasets/go_emotions", "simplified"
    try:
        ds = datasets.load_dataset(repo, config)
    except Exception as e:  # offline, or the hub is unreachable
        raise DataError(
            f"data.path: no local go_emotions copy (set data.path or $SWEETSPOT_DATA_DIR) and the hub "
            f"dataset {repo} could not be loaded: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from None
    names = ds["train"].features["labels"].feature.names
    splits = {
        split: [(row["text"], [names[i] for i in row["labels"]]) for row in ds[split]]
        for split in SPLITS
    }
    return RawDataset(splits=splits, label_order=list(names), fingerprint={"hub": f"{repo}/{config}@{ds['train']._fingerprint}"})


# ---------------------------------------------------------------------------------------------
# jsonl: one JSON object per line, `{"text": ..., "labels": [names]}` (field names configurable),
# one file per split named in `data.files`.

_JSONL_DEFAULT_FILES = {"train": "train.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"}


def _jsonl_files(cfg: DataConfig, folder: Path) -> dict[str, Path]:
    for split in cfg.files:
        if split not in SPLITS:
            raise DataError(f"data.files.{split}: unknown split (expected {', '.join(SPLITS)})")
    names = cfg.files or _JSONL_DEFAULT_FILES
    files = {split: folder / name for split, name in names.items()}
    for split in ("train", "test"):
        if split not in files:
            raise DataError(f"data.files.{split}: required for the jsonl source")
        _require(files[split])
    if "validation" in files and not files["validation"].is_file():
        if cfg.files.get("validation"):
            _require(files["validation"])
        del files["validation"]  # the default name is optional: carved from train instead
    return files


def _read_jsonl(cfg: DataConfig, folder: Path) -> RawDataset:
    splits: dict[str, list[Example]] = {}
    for split, path in _jsonl_files(cfg, folder).items():
        examples = []
        for number, line in _lines(path):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{number}: invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            for key in (cfg.text_field, cfg.labels_field):
                if key not in obj:
                    raise DataError(f"{path}:{number}: no field {key!r} (data.text_field / data.labels_field)")
            text, labels = obj[cfg.text_field], obj[cfg.labels_field]
            if not isinstance(text, str):
                raise DataError(f"{path}:{number}: field {cfg.text_field!r} must be a string")
            if not isinstance(labels, list) or not all(isinstance(x, (str, int)) for x in labels):
                raise DataError(f"{path}:{number}: field {cfg.labels_field!r} must be a list of label names")
            examples.append((text, [str(x) for x in labels]))
        splits[split] = examples
    return RawDataset(splits=splits)


SOURCES: dict[str, Source] = {
    "go_emotions": Source(_go_emotions_files, _read_go_emotions, hub_fallback=_hub_go_emotions),
    "jsonl": Source(_jsonl_files, _read_jsonl),
}


def resolve_folder(cfg: DataConfig) -> Path | None:
    """The folder to read: `data.path`, else `$SWEETSPOT_DATA_DIR/<source>`; `None` when neither
    exists and the source has a hub fallback."""
    source = get_source(cfg.source)
    if cfg.path:
        folder = Path(cfg.path).expanduser().resolve()
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (data.path)")
        return folder
    root = os.environ.get("SWEETSPOT_DATA_DIR")
    if root and (Path(root) / cfg.source).is_dir():
        return (Path(root) / cfg.source).resolve()
    if source.hub_fallback is not None:
        return None
    where = f"$SWEETSPOT_DATA_DIR/{cfg.source} ({Path(root) / cfg.source})" if root else "$SWEETSPOT_DATA_DIR (unset)"
    raise DataError(f"data.path: not set, and {where} does not exist")


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise DataError(f"data.source: unknown source {name!r} (known: {', '.join(SOURCES)})") from None
