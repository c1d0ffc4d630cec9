"""Loop benchmark: what does running a trial through Ray Tune cost over a bare PyTorch loop, and
how does it compare with Hugging Face's Trainer? All three measured in one run, interleaved.

    SWEETSPOT_DATA_DIR=../shared/datasets python bench/loop.py [--docs 2000] [--epochs 3] [--repeats 2]

Same model (all-MiniLM-L6-v2 + dropout + linear head, BCE), same prepared go_emotions documents,
batch size, epochs, torch threads (2) and one validation pass per epoch.
- bare: a plain PyTorch loop over the same length-bucketed, dynamically padded batches;
- tune: one `sweetspot search` trial (Ray Data batches, a checkpoint and `tune.report` every
  epoch), timed by Tune's `time_this_iter_s` per epoch;
- hf_trainer: `transformers.Trainer` with dynamic padding and length-grouped sampling, evaluating
  every epoch, saving nothing, timed per epoch by a callback.
Steady-state throughput = training documents / median time of one epoch (train + evaluation +
report), over epochs 2..E (epoch 1 carries one-off allocation costs on every side).
A running Ray instance costs CPU by itself (raylet, GCS, agents; Ray's workers also run at nice 15,
below them), so the three are measured with the same embedded Ray up, as during a search, and the
bare loop once more before Ray starts: `tune_vs_bare` is what the trial path costs,
`tune_vs_bare_without_ray` what Tune and its runtime cost together. The fixed
start-up cost of a Tune trial (worker process, imports, model load) is reported apart: it is paid
once per trial, not per epoch.
Results: docs/benchmarks-loop.json, summarised in docs/benchmarks.md.

    SWEETSPOT_DATA_DIR=../shared/datasets python bench/loop.py --part checkpoint

measures only what a trial's checkpoint makes its training loop wait (`checkpoint_wait`), on a
DistilBERT-sized model: `trainable.loop.fit` with the trials' report path, the checkpoint written in
the loop (as the trials did) and by `trainable.checkpoint.BackgroundWriter` (as they do), a few
steps an epoch. Results: docs/benchmarks-loop-checkpoint.json and its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from sweetspot.data.config import DataConfig
from sweetspot.data.load import batches_from_windows, parquet_windows
from sweetspot.data.prepare import Prepared, prepare
from sweetspot.trainable.config import ModelConfig
from sweetspot.trainable.model import build_model, tokenizer_name
from sweetspot.trainable.optimizers import build_optimizer

REPO = Path(__file__).resolve().parents[1]

THREADS, BATCH, EVAL_BATCH, WINDOW = 2, 16, 64, 50


def bare_loop(prepared: Prepared, epochs: int) -> list[float]:
    """Seconds per epoch (train + evaluation) of a plain PyTorch loop."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="minilm-l6"), prepared.num_labels)
    optimizer = build_optimizer("adam", model.parameters(), lr=1e-4, weight_decay=0.0)  # as the trials build it
    loss_fn = torch.nn.BCEWithLogitsLoss()
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        for batch in batches_from_windows(
            parquet_windows(prepared.split_dir("train"), window_rows=BATCH * WINDOW, shuffle_seed=epoch),
            batch_size=BATCH,
            num_labels=prepared.num_labels,
            shuffle_seed=epoch,
        ):
            loss = loss_fn(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for batch in batches_from_windows(
                parquet_windows(prepared.split_dir("validation"), window_rows=EVAL_BATCH * WINDOW),
                batch_size=EVAL_BATCH,
                num_labels=prepared.num_labels,
            ):
                model(batch["input_ids"], batch["attention_mask"])
        seconds.append(time.perf_counter() - start)
    return seconds


def tune_trial(config_file: Path, folder: Path) -> list[dict]:
    """The per-epoch result rows of one Tune trial (`time_this_iter_s`: the epoch's seconds)."""
    from sweetspot.search.config import load_experiment
    from sweetspot.search.runner import run_search

    out = Path(run_search(load_experiment(config_file, [f"storage_path={folder}"]), overwrite=True))
    return [json.loads(l) for l in next(out.glob("trial_*/result.json")).read_text().splitlines()]


def checkpoint_seconds(prepared: Prepared, repeats: int = 3) -> tuple[float, float]:
    """Median seconds of what a Tune report adds per epoch on top of training: writing the
    checkpoint (weights + Adam state + scheduler + trainer state) and Tune's copy of it into the
    trial folder; and the checkpoint's size in MB."""
    import shutil

    from sweetspot.trainable.loop import TrainerState, save_checkpoint
    from sweetspot.trainable.optimizers import build_scheduler

    model = build_model(ModelConfig(name="minilm-l6"), prepared.num_labels)
    optimizer = build_optimizer("adam", model.parameters(), lr=1e-4, weight_decay=0.0)
    batch = next(
        batches_from_windows(
            parquet_windows(prepared.split_dir("train"), window_rows=BATCH), batch_size=BATCH, num_labels=prepared.num_labels
        )
    )
    torch.nn.functional.binary_cross_entropy_with_logits(
        model(batch["input_ids"], batch["attention_mask"]), batch["labels"]
    ).backward()
    optimizer.step()  # Adam's state exists only after a step
    scheduler = build_scheduler(optimizer, schedule="constant", total_steps=1)
    seconds, size = [], 0.0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            save_checkpoint(Path(tmp, "src"), model, optimizer, scheduler, TrainerState())
            shutil.copytree(Path(tmp, "src"), Path(tmp, "dst"))
            seconds.append(time.perf_counter() - start)
            size = sum(p.stat().st_size for p in Path(tmp, "src").iterdir()) / 1e6
    return statistics.median(seconds), size


def checkpoint_wait(prepared: Prepared, *, epochs: int, steps: int, batch: int) -> dict:
    """Seconds the training loop waits on each checkpoint against the seconds the checkpoint's own
    write takes (its files, then Tune's copy of the folder into the trial folder), on DistilBERT-base's
    architecture with random weights (66 M parameters; weights and Adam's two moments make the
    checkpoint) + a head, fine-tuned by `trainable.loop.fit` for `steps` steps an epoch, one
    checkpoint an epoch. `in_loop`: written in the training thread, as the trials did (the loop waits
    for all of it); `background`: the trials' `BackgroundWriter` (the loop waits for the copy off the
    model, and for a write still in flight)."""
    import shutil

    from transformers import DistilBertConfig, DistilBertModel

    from sweetspot.trainable.checkpoint import BackgroundWriter
    from sweetspot.trainable.config import TrainConfig
    from sweetspot.trainable.loop import TrainerState, fit, save_checkpoint
    from sweetspot.trainable.model import Classifier
    from sweetspot.trainable.optimizers import build_scheduler

    def batches(split: str, size: int, seed: int | None = None):
        windows = parquet_windows(prepared.split_dir(split), window_rows=size * WINDOW, shuffle_seed=seed)
        return batches_from_windows(windows, batch_size=size, num_labels=prepared.num_labels, shuffle_seed=seed)

    def run(mode: str, work: Path) -> dict:
        torch.manual_seed(0)
        model = Classifier(DistilBertModel(DistilBertConfig()), prepared.num_labels, dropout=0.1, pooling="cls")
        optimizer = build_optimizer("adam", model.parameters(), lr=1e-4, weight_decay=0.0)
        scheduler = build_scheduler(optimizer, schedule="constant", total_steps=1)
        waits, writes, marks, count = [], [], [time.perf_counter()], [0]

        def tune_copy(folder: Path) -> None:  # what Tune's report does with a checkpoint folder: copies it into the trial folder
            count[0] += 1
            target = work / "trial" / f"checkpoint_{count[0]:06d}"
            shutil.copytree(folder, target)
            shutil.rmtree(target)  # keep the disk in use bounded; not timed apart

        def publish(metrics: dict, folder: Path) -> None:
            tune_copy(folder)

        writer = BackgroundWriter(publish) if mode == "background" else None

        def report(metrics: dict, state: TrainerState) -> None:
            start = time.perf_counter()
            if writer is not None:
                writer.report(metrics, model, optimizer, scheduler, state)
            else:
                with tempfile.TemporaryDirectory(dir=work) as tmp:
                    save_checkpoint(Path(tmp), model, optimizer, scheduler, state)
                    tune_copy(Path(tmp))
                writes.append(time.perf_counter() - start)
            waits.append(time.perf_counter() - start)
            marks.append(time.perf_counter())

        train = TrainConfig(epochs=epochs, batch_size=batch, eval_batch_size=EVAL_BATCH)
        fit(
            model,
            optimizer,
            scheduler,
            train=train,
            state=TrainerState(),
            report=report,
            train_batches=lambda epoch: itertools.islice(batches("train", batch, seed=epoch), steps),
            eval_batches={"val": lambda: batches("validation", EVAL_BATCH)},
            majority_p1=prepared.manifest["splits"]["validation"]["majority_p1"],
        )
        close_wait = 0.0
        if writer is not None:
            writer.close()
            writes, close_wait = writer.stats.writes, writer.stats.close_wait
        size = 0.0
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            save_checkpoint(Path(tmp), model, optimizer, scheduler, TrainerState())
            size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        return {
            "wait_s": waits,
            "write_s": writes,
            "epoch_s": [b - a for a, b in zip(marks, marks[1:])],
            "close_wait_s": close_wait,
            "checkpoint_mb": size,
            "parameters": sum(p.numel() for p in model.parameters()),
        }

    out = {}
    with tempfile.TemporaryDirectory(prefix="sweetspot-bench-ckpt-") as tmp:
        for mode in ("in_loop", "background"):
            (Path(tmp) / mode).mkdir()
            out[mode] = run(mode, Path(tmp) / mode)
    later = {mode: out[mode]["wait_s"][1:] for mode in out}  # checkpoint 1 also allocates the host buffers
    for mode, row in out.items():
        row["wait_s_median"] = statistics.median(row["wait_s"])
        row["write_s_median"] = statistics.median(row["write_s"])
        row["wait_over_write"] = sum(row["wait_s"]) / sum(row["write_s"])
        row["wait_over_write_after_first"] = sum(later[mode]) / sum(row["write_s"][1:])
    return out


def write_checkpoint_section(result: dict, command: str) -> None:
    """The checkpoint measurement's section of docs/benchmarks.md (between its markers)."""
    sys.path.insert(0, str(REPO / "bench"))
    from docsection import write_section

    bg, loop = result["background"], result["in_loop"]

    def ms(xs):
        return ", ".join(f"{x * 1000:.0f}" for x in xs)

    body = f"""### What a checkpoint makes the training loop wait (`bench/loop.py --part checkpoint`)

Command: `{command}` → `docs/benchmarks-loop-checkpoint.json`. DistilBERT-base's architecture with
random weights ({bg["parameters"] / 1e6:.1f} M parameters) + a linear head of {result["labels"]} outputs,
fused Adam, {result["steps"]} steps of {result["batch"]} go_emotions documents (max_len {result["max_len"]})
an epoch, {result["epochs"]} epochs, a checkpoint at every epoch end ({bg["checkpoint_mb"]:.0f} MB: weights and
Adam's two moments), 2 torch threads on the shared 2-core machine (load average {result["load_average"]:.1f}
when it started). The write = the checkpoint's files + the copy Tune makes of the folder into the trial
folder; the wait = the time `report` held the training loop.

| checkpoint written | loop waits per checkpoint (ms) | write per checkpoint (ms) | wait / write (all checkpoints) | … after the first | end of training waits for the last write |
|---|---|---|---|---|---|
| in the training loop (before) | {ms(loop["wait_s"])} | {ms(loop["write_s"])} | {loop["wait_over_write"]:.3f} | {loop["wait_over_write_after_first"]:.3f} | — |
| **background thread** (`trainable/checkpoint.py`) | {ms(bg["wait_s"])} | {ms(bg["write_s"])} | **{bg["wait_over_write"]:.3f}** | **{bg["wait_over_write_after_first"]:.3f}** | {bg["close_wait_s"] * 1000:.0f} ms |

Goal: wait ≤ 0.10 of the write. The first checkpoint also allocates the host buffers that later
snapshots reuse. Epoch seconds (train + evaluation + report): in the loop {", ".join(f"{x:.1f}" for x in loop["epoch_s"])};
background {", ".join(f"{x:.1f}" for x in bg["epoch_s"])} (the write then shares the CPU with training: on
this 2-core machine a background write is not free, only off the loop's critical path)."""
    write_section("loop-checkpoint", body, by="bench/loop.py --part checkpoint")


def hf_trainer(prepared: Prepared, epochs: int, folder: Path) -> list[float]:
    """Seconds per epoch (train + evaluation) of transformers.Trainer."""
    import datasets
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    def load(split):
        ds = datasets.Dataset.from_parquet(str(next(prepared.split_dir(split).glob("*.parquet"))))
        labels = prepared.num_labels

        def to_features(row):
            multi_hot = [0.0] * labels
            for i in row["label_ids"]:
                multi_hot[i] = 1.0
            return {"input_ids": row["input_ids"], "attention_mask": [1] * len(row["input_ids"]), "labels": multi_hot}

        return ds.map(to_features, remove_columns=["label_ids"])  # "length" feeds the length-grouped sampler

    class WithLoss(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, labels):
            logits = self.inner(input_ids, attention_mask)
            return {"loss": torch.nn.functional.binary_cross_entropy_with_logits(logits, labels), "logits": logits}

    marks: list[float] = []

    class EpochClock(TrainerCallback):  # an epoch's evaluation runs between its end and the next begin
        def on_epoch_begin(self, args, state, control, **kw):
            marks.append(time.perf_counter())

        def on_train_end(self, args, state, control, **kw):
            marks.append(time.perf_counter())

    torch.manual_seed(0)
    model = WithLoss(build_model(ModelConfig(name="minilm-l6"), prepared.num_labels))
    args = TrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=EVAL_BATCH,
        num_train_epochs=epochs,
        learning_rate=1e-4,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        train_sampling_strategy="group_by_length",
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=load("train"),
        eval_dataset=load("validation"),
        data_collator=DataCollatorWithPadding(AutoTokenizer.from_pretrained(tokenizer_name("minilm-l6"))),
        callbacks=[EpochClock()],
    )
    trainer.train()
    return [b - a for a, b in zip(marks, marks[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--out", default=None, help="default: docs/benchmarks-loop.json (--part checkpoint: docs/benchmarks-loop-checkpoint.json)"
    )
    parser.add_argument(
        "--part",
        choices=("all", "checkpoint"),
        default="all",
        help="checkpoint: only what a checkpoint makes the loop wait, on a DistilBERT-sized model",
    )
    parser.add_argument("--steps", type=int, default=6, help="--part checkpoint: training steps an epoch")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    data_dir = Path(os.environ.get("SWEETSPOT_DATA_DIR", REPO.parent / "shared" / "datasets"))
    os.environ["SWEETSPOT_DATA_DIR"] = str(data_dir)
    work = Path(tempfile.mkdtemp(prefix="sweetspot-bench-loop-"))
    os.environ["SWEETSPOT_CACHE_DIR"] = str(work / "cache")
    if args.part == "checkpoint":
        max_len, batch = 32, 8
        data = {
            "source": "go_emotions",
            "max_len": max_len,
            "train_limit": args.steps * batch * 2,
            "validation_limit": 32,
            "test_limit": 16,
        }
        prepared = prepare(DataConfig(**{**data, "path": str(data_dir / "go_emotions")}), tokenizer=tokenizer_name("minilm-l6"))
        load = os.getloadavg()[0]
        result = {
            "epochs": args.epochs,
            "steps": args.steps,
            "batch": batch,
            "max_len": max_len,
            "threads": THREADS,
            "labels": prepared.num_labels,
            "load_average": load,
            **checkpoint_wait(prepared, epochs=args.epochs, steps=args.steps, batch=batch),
        }
        Path(args.out or REPO / "docs" / "benchmarks-loop-checkpoint.json").write_text(json.dumps(result, indent=1))
        command = (
            "SWEETSPOT_DATA_DIR=../shared/datasets python bench/loop.py --part checkpoint"
            + (f" --epochs {args.epochs}" if args.epochs != 3 else "")
            + (f" --steps {args.steps}" if args.steps != 6 else "")
        )
        write_checkpoint_section(result, command)
        print(json.dumps(result, indent=1))
        return
    args.out = args.out or str(REPO / "docs" / "benchmarks-loop.json")
    data = {
        "source": "go_emotions",
        "max_len": 64,
        "train_limit": args.docs,
        "validation_limit": args.docs // 4,
        "test_limit": 64,
    }
    prepared = prepare(DataConfig(**{**data, "path": str(data_dir / "go_emotions")}), tokenizer=tokenizer_name("minilm-l6"))
    config_file = work / "bench.yaml"
    config_file.write_text(
        json.dumps(
            {
                "name": "bench-loop",
                "data": data,
                "model": {"name": "minilm-l6"},
                "train": {
                    "epochs": args.epochs,
                    "batch_size": BATCH,
                    "eval_batch_size": EVAL_BATCH,
                    "bucket_window": WINDOW,
                    "threads": THREADS,
                },
                "search": {
                    "num_samples": 1,
                    "max_concurrent_trials": 1,
                    "scheduler": {"name": "fifo"},
                    "checkpoints_to_keep": 10,
                    "space": {"optimizer": ["adam"], "lr": {"low": 1e-4, "high": 1e-4}},
                },
                "resources": {"cpus_per_trial": THREADS},
            }
        )
    )
    epochs = {"bare_without_ray": [], "bare": [], "tune": [], "hf_trainer": []}
    for _ in range(args.repeats):
        epochs["bare_without_ray"] += bare_loop(prepared, args.epochs)[1:]
    import ray

    ray.init(address="local", num_cpus=THREADS, include_dashboard=False, log_to_driver=False)  # as `sweetspot search` starts it
    tune_total, tune_rows = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits all three alike
        epochs["bare"] += bare_loop(prepared, args.epochs)[1:]
        rows = tune_trial(config_file, work / "results")
        per_epoch = [r["time_this_iter_s"] for r in rows]
        epochs["tune"] += per_epoch[1:]
        tune_total.append(
            rows[-1]["time_total_s"] - sum(per_epoch[1:]) - statistics.median(per_epoch[1:])
        )  # start-up = epoch 1's excess
        tune_rows = rows
        epochs["hf_trainer"] += hf_trainer(prepared, args.epochs, work / "hf")[1:]
    checkpoint_s, checkpoint_mb = checkpoint_seconds(prepared)
    docs = prepared.manifest["splits"]["train"]["rows"]
    rate = {k: docs / statistics.median(v) for k, v in epochs.items()}
    results = {
        "train_docs": docs,
        "validation_docs": prepared.manifest["splits"]["validation"]["rows"],
        "epochs": args.epochs,
        "repeats": args.repeats,
        "threads": THREADS,
        "batch": BATCH,
        "epoch_seconds_2_to_E": epochs,
        "docs_per_s_median": rate,
        "tune_vs_bare": rate["tune"] / rate["bare"],
        "tune_vs_bare_without_ray": rate["tune"] / rate["bare_without_ray"],
        "bare_with_ray_vs_without": rate["bare"] / rate["bare_without_ray"],
        "tune_vs_hf_trainer": rate["tune"] / rate["hf_trainer"],
        "tune_trial_startup_s_median": statistics.median(tune_total),
        # What the Tune side does per epoch that the other two do not: a checkpoint.
        "checkpoint_s_median": checkpoint_s,
        "checkpoint_mb": checkpoint_mb,
        "checkpoint_share_of_tune_epoch": checkpoint_s / statistics.median(epochs["tune"]),
        # The Tune trial is Adam at lr 1e-4 on MiniLM: a healthy run, which the collapse
        # rule must not flag once it has trained (epoch 1 can sit at the floor).
        "tune_trial_per_epoch": [
            {k: r[k] for k in ("epoch", "val_p1", "majority_p1", "val_pred_entropy", "val_true_entropy", "collapsed")}
            for r in tune_rows
        ],
    }
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
