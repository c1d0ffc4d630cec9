"""`sweetspot export`: the winner of a search as a Hugging Face model folder.

Which checkpoint: the best configuration of the analysis (`find_sweet_spots(...).best`), its seed
with the best score, and that trial's kept best checkpoint (`layout.best_checkpoint`: the evaluation
that gives the trial its score, trainable/score.py); or, with `trial_id`, that trial's.

What the folder holds:

    config.json, model.safetensors    the encoder: `transformers.AutoModel.from_pretrained(folder)`
    tokenizer files                   `transformers.AutoTokenizer.from_pretrained(folder)`
    head.safetensors                  the classification head: weight [labels, hidden], bias [labels]
    sweetspot_head.json               pooling (`cls` or `mean`), dropout, problem_type
                                      (multi_label_classification: a sigmoid per label), the label
                                      names (id2label, label2id), and where the weights came from
                                      (results folder, trial, checkpoint, epoch, its validation P@1)

config.json carries id2label and label2id too. The head is not a standard
`AutoModelForSequenceClassification` head: sweetspot's classifier is the encoder's pooled output
(the [CLS] token's last hidden state, or the mean over real tokens) -> dropout -> one linear layer,
whereas BERT's classification model puts its pooler (a dense layer and tanh) before the linear layer
and DistilBERT's a dense layer and ReLU; neither maps onto it exactly. `load(folder)` builds the
same classifier as the trial trained (`trainable.model.Classifier`), in eval mode:

    >>> from sweetspot.export import load  # doctest: +SKIP
    >>> model, tokenizer = load("exported/")  # doctest: +SKIP
    >>> batch = tokenizer(["the text"], return_tensors="pt")  # doctest: +SKIP
    >>> scores = model(batch["input_ids"], batch["attention_mask"]).sigmoid()  # doctest: +SKIP
    >>> model.labels[int(scores.argmax())]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweetspot import layout, storage

HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "sweetspot_head.json"


class ExportError(ValueError):
    """What cannot be exported, in one line."""


@dataclass(frozen=True)
class Exported:
    """What `export` wrote, and from where."""

    folder: Path
    trial_id: str
    checkpoint: str  # the checkpoint folder's name in the trial's folder
    epoch: float
    val_p1: float  # the trial's recorded validation P@1 at that evaluation


def choose(results_dir: str, trial_id: str | None = None) -> tuple[Any, str, dict[str, Any]]:
    """The loaded results, the trial to export, and the report of its kept best checkpoint."""
    from sweetspot.analysis.results import load_results
    from sweetspot.analysis.sweetspot import find_sweet_spots

    results = load_results(results_dir)
    trials = {t.trial_id: t for t in results.trials}
    if trial_id is None:
        spots = find_sweet_spots(results)
        if spots.best is None:
            raise ExportError(
                f"{results_dir}: no best configuration ({spots.note or 'no trial was scored'}); name a trial with --trial"
            )
        scores = spots.comparison.scores
        sign = 1.0 if spots.mode == "max" else -1.0
        trial_id = max(
            spots.best.trial_ids,
            key=lambda t: (_finite(scores[t].value), sign * scores[t].value if _finite(scores[t].value) else 0.0),
        )
    elif trial_id not in trials:
        known = ", ".join(sorted(trials)[:8]) + (" ..." if len(trials) > 8 else "")
        raise ExportError(f"--trial {trial_id}: no such trial in {results_dir} (trials: {known})")
    trial = trials[trial_id]
    folder = storage.join(results.folder, trial.folder or layout.trial_folder(trial_id))
    text = storage.read_text(storage.join(folder, layout.RESULT_FILE)) or ""
    best = layout.best_checkpoint(layout.parse_result_lines(text, where=storage.join(folder, layout.RESULT_FILE)))
    if best is None:
        raise ExportError(
            f"trial {trial_id}: no checkpoint of a scored evaluation (no epoch-end evaluation counted: "
            "diverged, constant predictions, or none reached)"
        )
    if not storage.exists(storage.join(folder, best[layout.CHECKPOINT_DIR_KEY], "model.safetensors")):
        raise ExportError(
            f"trial {trial_id}: its best checkpoint {best[layout.CHECKPOINT_DIR_KEY]} is not in {folder} "
            "(a search from before the keep-best policy keeps only the latest)"
        )
    return results, trial_id, best


def export(results_dir: str, out: str | Path, *, trial_id: str | None = None) -> Exported:
    """Writes the chosen trial's best checkpoint to `out` as a Hugging Face folder (module docstring).
    `out` must not exist or be empty; nothing is left there on an error.

    Raises:
        ExportError: no trial to export, its best checkpoint is gone, or `out` holds files.
    """
    import torch
    from safetensors.torch import load as load_bytes
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from sweetspot.trainable.model import build_model, tokenizer_name

    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"--out {out}: exists and is not an empty folder")
    results, trial_id, best = choose(results_dir, trial_id)
    labels = _label_names(results)
    model_config = results.model_config
    trial = next(t for t in results.trials if t.trial_id == trial_id)
    checkpoint = storage.join(results.folder, trial.folder or layout.trial_folder(trial_id), best[layout.CHECKPOINT_DIR_KEY])
    weights = load_bytes(storage.read_bytes(storage.join(checkpoint, "model.safetensors")))
    num_labels = int(weights["head.weight"].shape[0])
    if labels is not None and len(labels) != num_labels:
        raise ExportError(f"{results.prepared_path}: {len(labels)} label names, but the head has {num_labels} outputs")
    labels = labels or [f"LABEL_{i}" for i in range(num_labels)]
    torch.manual_seed(0)
    model = build_model(model_config, num_labels)
    model.load_state_dict(weights)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_name(model_config.name))

    id2label = {i: name for i, name in enumerate(labels)}
    model.encoder.config.id2label = id2label
    model.encoder.config.label2id = {name: i for i, name in id2label.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.encoder.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        save_file(
            {"weight": model.head.weight.detach().contiguous(), "bias": model.head.bias.detach().contiguous()},
            str(staging / HEAD_WEIGHTS),
        )
        head = {
            "pooling": model_config.pooling,
            "dropout": model_config.dropout,
            "num_labels": num_labels,
            "problem_type": "multi_label_classification",
            "id2label": {str(i): n for i, n in id2label.items()},
            "label2id": {n: i for i, n in id2label.items()},
            "encoder": model_config.name,
            "source": {
                "results": str(results.folder),
                "trial_id": trial_id,
                "checkpoint": best[layout.CHECKPOINT_DIR_KEY],
                "epoch": best.get("epoch"),
                "val_p1": best.get("val_p1"),
            },
        }
        (staging / HEAD_CONFIG).write_text(json.dumps(head, indent=1, ensure_ascii=False))
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Exported(
        folder=out,
        trial_id=trial_id,
        checkpoint=best[layout.CHECKPOINT_DIR_KEY],
        epoch=float(best["epoch"]),
        val_p1=float(best["val_p1"]),
    )


def command(args) -> int:
    """`sweetspot export RESULTS_DIR [--trial ID] --out DIR` (the parser: sweetspot/cli.py)."""
    import sys

    from sweetspot.analysis.results import ResultsError

    try:
        done = export(args.results_dir, args.out, trial_id=args.trial)
    except (ExportError, ResultsError) as e:
        print(f"sweetspot export: error: {e}", file=sys.stderr)
        return 2
    print(f"exported trial {done.trial_id}, {done.checkpoint} (epoch {done.epoch:g}, val_p1 {done.val_p1:.4f}) to {done.folder}")
    print(f"load: sweetspot.export.load({str(done.folder)!r}), or its encoder with transformers.AutoModel")
    return 0


def load(folder: str | Path):
    """An exported folder as (model, tokenizer): the trial's classifier (`trainable.model.Classifier`,
    eval mode; logits [batch, labels], a sigmoid per label) with `model.labels` (names by id), and its
    tokenizer."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from sweetspot.trainable.model import Classifier

    folder = Path(folder)
    head = json.loads((folder / HEAD_CONFIG).read_text())
    model = Classifier(AutoModel.from_pretrained(folder), head["num_labels"], dropout=head["dropout"], pooling=head["pooling"])
    model.head.load_state_dict(load_file(str(folder / HEAD_WEIGHTS)))
    model.labels = [head["id2label"][str(i)] for i in range(head["num_labels"])]
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def _label_names(results) -> list[str] | None:
    """The label names by id, from the prepared data's labels.json (None when it is not there)."""
    if not results.prepared_path:
        return None
    path = Path(results.prepared_path) / "labels.json"
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())
    return [row["name"] for row in sorted(rows, key=lambda r: r["id"])]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
