"""Results folders and prepared-data folders written by hand, with outcomes the tests know. Results
folders are written through the code that writes real ones (sweetspot/layout.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sweetspot import layout
from sweetspot.trainable.collapse import is_collapsed
from sweetspot.trainable.config import TrainConfig

FLOOR = 0.30  # majority_p1 of every hand-written trial
TRUE_ENTROPY = 0.8


def row(epoch: float, p1: float, *, entropy: float = 0.6, top: int = 0, diverged: int = 0, **extra: Any) -> dict[str, Any]:
    """One report with every collapse signal; healthy unless `entropy` and `p1` say otherwise."""
    return {
        "epoch": epoch,
        "step": int(epoch * 10),
        "train_loss": 0.5 / epoch,
        "val_loss": 0.4 - 0.01 * p1,
        "val_p1": p1,
        "val_p3": p1 / 2,
        "val_p5": p1 / 3,
        "val_pred_entropy": entropy,
        "val_true_entropy": TRUE_ENTROPY,
        "val_top_label": top,
        "majority_p1": FLOOR,
        "diverged": diverged,
        "collapsed": int(
            is_collapsed(
                pred_entropy=entropy,
                true_entropy=TRUE_ENTROPY,
                p1=p1,
                majority_p1=FLOOR,
                embed_rank=extra.get("val_embed_rank"),
                entropy_fraction=TrainConfig.collapse_entropy_fraction,
                p1_margin=TrainConfig.collapse_p1_margin,
            )
        ),
        **extra,
    }


def trial(
    trial_id: str,
    optimizer: str,
    lr: float,
    p1s: Sequence[float] | None = None,
    *,
    wd: float = 0.0,
    seed: int | None = None,
    status: str | None = None,
    rows: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """A trial for `write_results`. `status` is what its run record must say (checked there);
    None takes whatever the run-record rule gives an ended trial with these rows."""
    config = {"optimizer": optimizer, "lr": lr, "weight_decay": wd, **({"seed": seed} if seed is not None else {})}
    rows = rows if rows is not None else [row(i + 1, p) for i, p in enumerate(p1s or [])]
    return {"trial_id": trial_id, "config": config, "rows": rows, "status": status, "error": error}


# The Tune status a trial with this run-record status had; every other status is an ended trial.
_TUNE_STATUS = {status: tune for tune, status in layout.RECORD_STATUS.items()}


def write_results(
    folder: Path,
    trials: list[dict[str, Any]],
    *,
    epochs: int = 3,
    prepared: Path | None = None,
    train: dict[str, Any] | None = None,
    name: str = "handmade",
    metric: str = "val_p1",
    mode: str = "max",
    collapse_patience: int | None = None,
) -> Path:
    """A results folder as `sweetspot search` writes it, through the same layout code: sweetspot.yaml,
    trial_<id>/params.json and result.json (one line per report, as Tune writes them: the reported
    keys plus Tune's own), and summary.json from `layout.trial_record` / `layout.summary_document`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "name": name,
        "model": {"name": "tiny-distilbert"},
        "train": {"epochs": epochs, **(train or {})},
        "search": {"metric": metric, "mode": mode, "stop_on_collapse": collapse_patience},
    }
    if prepared is not None:
        config["prepared_path"] = str(prepared)
    (folder / layout.CONFIG_FILE).write_text(yaml.safe_dump(config))
    records = []
    for t in trials:
        unrecorded = [k for r in t["rows"] for k in r if k not in layout.reported(r)]
        assert not unrecorded, f"trial {t['trial_id']}: keys the search does not record: {unrecorded}"
        trial_dir = folder / layout.trial_folder(t["trial_id"])
        trial_dir.mkdir()
        (trial_dir / layout.PARAMS_FILE).write_text(json.dumps(t["config"]))
        if t["rows"]:  # a trial that never reported has no result.json
            lines = [
                json.dumps({**r, "trial_id": t["trial_id"], "training_iteration": i + 1, "config": t["config"]})
                for i, r in enumerate(t["rows"])
            ]
            (trial_dir / layout.RESULT_FILE).write_text("".join(line + "\n" for line in lines))
        record = layout.trial_record(
            trial_id=t["trial_id"],
            tune_status=_TUNE_STATUS.get(t["status"], "TERMINATED"),
            config=t["config"],
            rows=t["rows"],
            metric=metric,
            mode=mode,
            max_epochs=epochs,
            collapse_patience=collapse_patience,
            folder=trial_dir.name,
            error=t["error"],
        )
        assert t["status"] in (None, record["status"]), (
            f"trial {t['trial_id']}: its rows make it {record['status']}, not {t['status']}"
        )
        records.append(record)
    summary = layout.summary_document(records, metric=metric, mode=mode, max_epochs=epochs, updated="2026-01-01T00:00:00+0000")
    (folder / layout.SUMMARY_FILE).write_text(json.dumps(summary))
    return folder


def write_prepared(
    folder: Path, labels: Sequence[tuple[str, int]], splits: dict[str, list[tuple[list[int], list[int]]]], *, majority: int = 0
) -> Path:
    """A prepared-data folder: Parquet shards per split (input_ids, label_ids, length), labels.json, manifest.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    stats = {}
    for split, docs in splits.items():
        (folder / split).mkdir()
        table = pa.table(
            {
                "input_ids": pa.array([d for d, _ in docs], pa.list_(pa.int32())),
                "label_ids": pa.array([y for _, y in docs], pa.list_(pa.int32())),
                "length": pa.array([len(d) for d, _ in docs], pa.int32()),
            }
        )
        pq.write_table(table, folder / split / "part-00000.parquet")
        stats[split] = {"rows": len(docs), "majority_p1": sum(majority in y for _, y in docs) / max(len(docs), 1)}
    (folder / "labels.json").write_text(json.dumps([{"id": i, "name": n, "train_count": c} for i, (n, c) in enumerate(labels)]))
    manifest = {
        "splits": stats,
        "majority_label": {"id": majority, "name": labels[majority][0]},
        "tokenizer": {"name": "no-such-tokenizer", "pad_token_id": 0},
        "stats": {"num_labels": len(labels)},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder
