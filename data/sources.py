"""Readers of raw multi-label text datasets, one per input layout, looked up by name in `SOURCES`.

A reader turns a folder into `RawDataset`: per split, a list of `Example(text, labels, where)`,
where `where` is `file:line` (or `file:row N`) for error messages. Readers only parse;
filtering, label ids and tokenization happen once in `data.prepare`. Every parse error is a
`DataError` naming the file and line.

Example:
    >>> from data.sources import SOURCES
    >>> sorted(SOURCES)
    ['csv', 'eurlex', 'go_emotions', 'hub', 'jsonl', 'parquet', 'stackexchange']

Over 400 lines on purpose: every reader (about 40 lines each) sits beside the registry that names it, so
adding a layout touches this file only.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NamedTuple

from sweetspot.data.config import DataConfig

SPLITS = ("train", "validation", "test")


class Example(NamedTuple):
    text: str
    labels: list[str]
    where: str  # file:line, for error messages


class DataError(ValueError):
    """Bad input data; the message names the file and line (or the config key)."""


@dataclass
class RawDataset:
    """Parsed splits before preparation.

    Attributes:
        splits: Split name (`train`, `validation`, `test`) -> examples. A missing `validation`
            or `test` is carved from train by `data.prepare`.
        label_order: Label names in the source's own order (e.g. emotions.txt), or `None`.
        fingerprint: What identifies a hub input (local inputs are fingerprinted by file content).
    """

    splits: dict[str, list[Example]]
    label_order: list[str] | None = None
    fingerprint: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """One registry entry.

    `files(cfg, folder)` lists the input files by role (their content hashes make the cache key,
    so a cache hit never parses); `read(cfg, folder)` parses them. A source without a folder
    (`hub`) has `files=None` and reads from `cfg` alone.
    """

    read: Callable[[DataConfig, Path | None], RawDataset]
    files: Callable[[DataConfig, Path], dict[str, Path]] | None = None
    hub_fallback: Callable[[DataConfig], RawDataset] | None = None


# ---------------------------------------------------------------------------------------------
# Shared parsing helpers


def _require(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return path


def _lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, line without newline), refusing bytes that do not decode."""
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: not valid {encoding} ({e.reason} at byte {e.start}; set data.encoding)") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, start=1):
        yield number, line.rstrip("\r")


def _split_labels(value: Any, cfg: DataConfig, where: str) -> list[str]:
    """Labels given as a list, or as one string split on `label_delimiter` (or a JSON list)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise DataError(f"{where}: labels {text[:40]!r} look like a list but are not valid JSON") from None
        else:
            return [x.strip() for x in text.split(cfg.label_delimiter) if x.strip()]
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        if all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in items):
            return [str(x) for x in items]
    raise DataError(f"{where}: labels must be a list of names or a {cfg.label_delimiter!r}-separated string, got {value!r:.60}")


def _text(value: Any, cfg: DataConfig, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: column {cfg.text_field!r} must hold text, got {type(value).__name__}")
    return value


def _check_columns(path: Path, columns: list[str], cfg: DataConfig) -> None:
    for key, name in (("data.text_field", cfg.text_field), ("data.labels_field", cfg.labels_field)):
        if name not in columns:
            raise DataError(f"{path}: unknown column {name!r} ({key}); columns are: {', '.join(map(str, columns))}")


def _split_files(cfg: DataConfig, folder: Path, suffix: str) -> dict[str, Path]:
    """`data.files` (split -> file), or `train/validation/test.<suffix>`; train and test required
    unless only train exists (then both are carved); validation optional."""
    for split in cfg.files:
        if split not in SPLITS:
            raise DataError(f"data.files.{split}: unknown split (expected {', '.join(SPLITS)})")
    if cfg.files:
        if "train" not in cfg.files:
            raise DataError("data.files.train: required")
        return {split: _require(folder / name) for split, name in cfg.files.items()}
    files = {split: folder / f"{split}.{suffix}" for split in SPLITS}
    _require(files["train"])
    return {split: p for split, p in files.items() if p.is_file()}


# ---------------------------------------------------------------------------------------------
# go_emotions: the official TSV layout (train/dev/test.tsv with `text<TAB>ids<TAB>comment id`,
# emotions.txt naming the label ids in order), or the hub dataset (config `simplified`).

_GO_EMOTIONS_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


def _go_emotions_files(cfg: DataConfig, folder: Path) -> dict[str, Path]:
    files = {split: folder / name for split, name in _GO_EMOTIONS_FILES.items()}
    files["labels"] = folder / "emotions.txt"
    return {role: _require(p) for role, p in files.items()}


def _read_go_emotions(cfg: DataConfig, folder: Path | None) -> RawDataset:
    files = _go_emotions_files(cfg, folder)
    names = [line.strip() for _, line in _lines(files["labels"], cfg.encoding) if line.strip()]
    splits: dict[str, list[Example]] = {}
    for split in SPLITS:
        path = files[split]
        examples = []
        for number, line in _lines(path, cfg.encoding):
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
            examples.append(Example(fields[0], labels, f"{path}:{number}"))
        splits[split] = examples
    return RawDataset(splits=splits, label_order=names)


def _hub_go_emotions(cfg: DataConfig) -> RawDataset:
    hub_cfg = DataConfig(
        **{
            **cfg.__dict__,
            "hub_id": "google-research-datasets/go_emotions",
            "hub_config": "simplified",
            "text_field": "text",
            "labels_field": "labels",
            "files": {},
        }
    )
    try:
        return _read_hub(hub_cfg, None)
    except DataError as e:
        raise DataError(f"data.path: no local go_emotions copy (set data.path or $SWEETSPOT_DATA_DIR), and {e}") from None


# ---------------------------------------------------------------------------------------------
# eurlex: the EURLex-4K raw-text layout of AttentionXML / LightXML. One document per line in
# `<split>_texts.txt`, its labels (space-separated names) on the same line of `<split>_labels.txt`.

_EURLEX_PREFIX = {"train": "train", "validation": "valid", "test": "test"}


def _eurlex_files(cfg: DataConfig, folder: Path) -> dict[str, Path]:
    files = {}
    for split, prefix in _EURLEX_PREFIX.items():
        texts, labels = folder / f"{prefix}_texts.txt", folder / f"{prefix}_labels.txt"
        if split == "validation" and not texts.is_file() and not labels.is_file():
            continue  # optional: carved from train
        files[f"{split}_texts"], files[f"{split}_labels"] = _require(texts), _require(labels)
    return files


def _read_eurlex(cfg: DataConfig, folder: Path | None) -> RawDataset:
    files = _eurlex_files(cfg, folder)
    splits = {}
    for split in SPLITS:
        if f"{split}_texts" not in files:
            continue
        texts_path, labels_path = files[f"{split}_texts"], files[f"{split}_labels"]
        texts = [line for _, line in _lines(texts_path, cfg.encoding)]
        labels = [line.split() for _, line in _lines(labels_path, cfg.encoding)]
        if len(texts) != len(labels):
            raise DataError(
                f"{labels_path}: {len(labels)} lines, but {texts_path.name} has {len(texts)}: "
                f"texts and labels must match line for line"
            )
        splits[split] = [Example(t, l, f"{texts_path}:{i + 1}") for i, (t, l) in enumerate(zip(texts, labels))]
    return RawDataset(splits=splits)


# ---------------------------------------------------------------------------------------------
# stackexchange: the Kaggle "Questions from Cross Validated" layout: Questions.csv (Id, Title,
# Body with HTML, ...) and Tags.csv (Id, Tag), joined on Id. No splits: test and validation are
# carved from it.


class _TextOnly(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def strip_html(markup: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed.

    >>> strip_html("<p>Is <code>x &lt; y</code>?</p>")
    'Is x < y?'
    """
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\s+", " ", html.unescape("".join(parser.parts))).strip()


def _stackexchange_files(cfg: DataConfig, folder: Path) -> dict[str, Path]:
    return {"questions": _require(folder / "Questions.csv"), "tags": _require(folder / "Tags.csv")}


def _csv_rows(path: Path, encoding: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV file as dicts, with the line number each row starts on."""
    text = "\n".join(line for _, line in _lines(path, encoding))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    line = reader.line_num + 1
    try:
        for row in reader:
            if None in row:
                raise DataError(f"{path}:{line}: more fields than the header has")
            yield line, row
            line = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None


def _read_stackexchange(cfg: DataConfig, folder: Path | None) -> RawDataset:
    files = _stackexchange_files(cfg, folder)
    tags: dict[str, list[str]] = {}
    for _, row in _csv_rows(files["tags"], cfg.encoding):
        if "Id" not in row or "Tag" not in row:
            raise DataError(f"{files['tags']}: expected columns Id, Tag; got {', '.join(row)}")
        tags.setdefault(row["Id"], []).append(row["Tag"])
    examples = []
    for line, row in _csv_rows(files["questions"], cfg.encoding):
        if not {"Id", "Title", "Body"} <= set(row):
            raise DataError(f"{files['questions']}: expected columns Id, Title, Body; got {', '.join(row)}")
        text = (row["Title"] or "").strip() + "\n" + strip_html(row["Body"] or "")
        examples.append(Example(text.strip(), tags.get(row["Id"], []), f"{files['questions']}:{line}"))
    return RawDataset(splits={"train": examples})


# ---------------------------------------------------------------------------------------------
# jsonl / csv / parquet: one file per split, configurable text and label columns.


def _read_jsonl(cfg: DataConfig, folder: Path | None) -> RawDataset:
    splits: dict[str, list[Example]] = {}
    for split, path in _split_files(cfg, folder, "jsonl").items():
        examples = []
        for number, line in _lines(path, cfg.encoding):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            for key, name in (("data.text_field", cfg.text_field), ("data.labels_field", cfg.labels_field)):
                if name not in obj:
                    raise DataError(f"{where}: unknown column {name!r} ({key}); keys are: {', '.join(obj)}")
            examples.append(_example(obj, cfg, where))
        splits[split] = examples
    return RawDataset(splits=splits)


def _example(record: dict[str, Any], cfg: DataConfig, where: str) -> Example:
    """One document from a record with the configured text and labels fields."""
    return Example(_text(record[cfg.text_field], cfg, where), _split_labels(record[cfg.labels_field], cfg, where), where)


def _read_csv(cfg: DataConfig, folder: Path | None) -> RawDataset:
    splits: dict[str, list[Example]] = {}
    for split, path in _split_files(cfg, folder, "csv").items():
        examples = []
        for line, row in _csv_rows(path, cfg.encoding):
            if not examples:
                _check_columns(path, list(row), cfg)
            examples.append(_example(row, cfg, f"{path}:{line}"))
        splits[split] = examples
    return RawDataset(splits=splits)


def _read_parquet(cfg: DataConfig, folder: Path | None) -> RawDataset:
    import pyarrow.parquet as pq

    splits: dict[str, list[Example]] = {}
    for split, path in _split_files(cfg, folder, "parquet").items():
        try:
            table = pq.read_table(path)
        except Exception as e:
            raise DataError(f"{path}: not a readable Parquet file ({e})") from None
        _check_columns(path, table.column_names, cfg)
        texts = table.column(cfg.text_field).to_pylist()
        labels = table.column(cfg.labels_field).to_pylist()
        splits[split] = [
            Example(_text(t, cfg, f"{path}:row {i + 1}"), _split_labels(l, cfg, f"{path}:row {i + 1}"), f"{path}:row {i + 1}")
            for i, (t, l) in enumerate(zip(texts, labels))
        ]
    return RawDataset(splits=splits)


def _file_set(suffix: str) -> Callable[[DataConfig, Path], dict[str, Path]]:
    return lambda cfg, folder: _split_files(cfg, folder, suffix)


# ---------------------------------------------------------------------------------------------
# hub: any Hugging Face dataset (where the hub is reachable), with a column mapping.


def _read_hub(cfg: DataConfig, folder: Path | None) -> RawDataset:
    import datasets  # local: only hub sources need it

    if not cfg.hub_id:
        raise DataError("data.hub_id: required for the hub source")
    try:
        ds = datasets.load_dataset(cfg.hub_id, cfg.hub_config)
    except Exception as e:  # offline, unknown id, or the hub is unreachable
        first = str(e).splitlines()[0] if str(e) else ""
        raise DataError(f"the hub dataset {cfg.hub_id} could not be loaded ({type(e).__name__}: {first})") from None
    names = {split: cfg.files.get(split, split) for split in SPLITS}
    splits, label_order = {}, None
    for split, hub_split in names.items():
        if hub_split not in ds:
            continue
        part = ds[hub_split]
        _check_columns(Path(f"{cfg.hub_id}[{hub_split}]"), part.column_names, cfg)
        feature = part.features[cfg.labels_field]
        class_names = getattr(getattr(feature, "feature", feature), "names", None)  # ClassLabel ids -> names
        label_order = label_order or class_names
        examples = []
        for i, row in enumerate(part):
            where = f"{cfg.hub_id}[{hub_split}]:row {i + 1}"
            value = row[cfg.labels_field]
            if class_names is not None:
                value = [class_names[v] for v in (value if isinstance(value, list) else [value])]
            examples.append(Example(_text(row[cfg.text_field], cfg, where), _split_labels(value, cfg, where), where))
        splits[split] = examples
    if "train" not in splits:
        raise DataError(f"{cfg.hub_id}: no train split (data.files.train names the hub split)")
    fingerprint = {"hub": f"{cfg.hub_id}/{cfg.hub_config}", **{s: ds[n]._fingerprint for s, n in names.items() if n in ds}}
    return RawDataset(splits=splits, label_order=label_order, fingerprint=fingerprint)


SOURCES: dict[str, Source] = {
    "go_emotions": Source(_read_go_emotions, _go_emotions_files, hub_fallback=_hub_go_emotions),
    "eurlex": Source(_read_eurlex, _eurlex_files),
    "stackexchange": Source(_read_stackexchange, _stackexchange_files),
    "jsonl": Source(_read_jsonl, _file_set("jsonl")),
    "csv": Source(_read_csv, _file_set("csv")),
    "parquet": Source(_read_parquet, _file_set("parquet")),
    "hub": Source(_read_hub),
}


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise DataError(f"data.source: unknown source {name!r} (known: {', '.join(SOURCES)})") from None


def resolve_folder(cfg: DataConfig) -> Path | None:
    """The folder to read: `data.path` (with `${VAR}` expanded), else `$SWEETSPOT_DATA_DIR/<source>`;
    `None` for the hub source, and when neither exists for a source with a hub fallback."""
    source = get_source(cfg.source)
    if source.files is None:
        return None
    if cfg.path:
        expanded = os.path.expandvars(cfg.path)
        if "$" in expanded:
            raise DataError(f"data.path: {cfg.path!r} names an environment variable that is not set")
        folder = Path(expanded).expanduser().resolve()
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
