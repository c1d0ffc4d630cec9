"""GPU benchmark: one `sweetspot search` trial against a bare PyTorch loop on one GPU, trials
sharing that GPU, and what a checkpoint costs.

    python bench/gpu.py [--train-docs 1000] [--epochs 2] [--trials 1,2,4]   # needs a CUDA GPU
    python bench/gpu.py --dry --out /tmp/gpu-dry.json     # CPU: a tiny model, a few steps (CI)

Model: DistilBERT-base's architecture (6 layers, hidden 768, 12 heads, FFN 3,072, vocabulary
30,522) with *random* weights, because the Hugging Face hub cannot be reached from the GPU machine
(speed does not depend on the weights' values), + dropout 0.1 + a linear head of 3,801 outputs, BCE,
Adam at lr 1e-4 built by the trials' own optimizer table (fused), batch 16, max_len 512, bf16
autocast. It is saved once as a local model folder with the bert-base-uncased vocabulary (which
DistilBERT uses; the copy shipped with all-MiniLM-L6-v2, or `--tokenizer FOLDER`) and both sides load
it as `model.name`, so they start from the same weights.
Data: synthetic and EURLex-4K-shaped: 3,801 labels, about 5.3 a document (every training document
carries ceil(3,801 / training documents) labels in turn, so each label occurs in train and the head
has 3,801 outputs; Zipf-distributed draws make up the rest), texts of random whole-word vocabulary
entries with log-normal lengths (median 700 words), so most documents are cut at 512 tokens as
EURLex's are.
Written as jsonl and prepared by sweetspot's own `prepare`: both sides read the same Parquet shards.

(a) bare: a plain PyTorch loop over the same length-bucketed batches read straight from the shards
    (no Ray), the loss summed on the GPU and read once an epoch; one forward pass over validation
    per epoch. Run a second time reading the loss on the host twice a step (`isfinite` before the
    backward pass, `.item()` after the update), as the trial loop did before: what those reads cost.
(a2) the trials' own loop (`trainable.loop.fit`: metrics, a checkpoint every epoch written and
    copied by the trials' background writer) in this process, without Ray: (b) less Ray Data, Ray and
    Tune; with the seconds the loop waited on each checkpoint against each write's.
(b) one `sweetspot search` trial through `search.runner.run_search` (a grid of one configuration,
    FIFO, gpus_per_trial 1): Ray Data batches, the metrics, a checkpoint and `tune.report` every
    epoch. It is the n = 1 row of (c).
(c) n trials at once (seeds 0..n-1), gpus_per_trial 1/n: aggregate samples/s (the sum of the
    trials' rates), the peak GPU memory of each trial's process (nvidia-smi, sampled every 0.5 s)
    and the trials' final statuses.
(d) the checkpoint written every epoch (weights, Adam state, scheduler, trainer state): its size in
    the trial folder, and the seconds to write it (from the GPU) and to copy it as Tune does.
Throughput = training documents / median epoch seconds over epochs 2..E (train + evaluation; for
trials also the checkpoint and report: Tune's `time_this_iter_s`); epoch 1 carries one-off costs
(CUDA context, kernel selection, allocator growth). Results: docs/benchmarks-gpu.json, summarised
in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from sweetspot.data.config import DataConfig
from sweetspot.data.load import batches_from_windows, parquet_windows
from sweetspot.data.prepare import Prepared, prepare
from sweetspot.trainable.config import ModelConfig
from sweetspot.trainable.model import build_model, tokenizer_name
from sweetspot.trainable.optimizers import build_optimizer

REPO = Path(__file__).resolve().parents[1]
LABELS, LABELS_PER_DOC, LR, BATCH, EVAL_BATCH, WINDOW = 3801, 5.3, 1e-4, 16, 64, 50
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
# Sizes: the GPU run, and the CPU dry run that tests/bench_tests/test_gpu_dry.py runs in CI.
FULL = {"max_len": 512, "median_words": 700, "validation_docs": 1000, "test_docs": 64, "tiny": False}
DRY = {"max_len": 64, "median_words": 40, "validation_docs": 32, "test_docs": 16, "tiny": True}


def random_distilbert(folder: Path, *, tiny: bool, tokenizer: str) -> Path:
    """A model folder: DistilBERT with random weights (seed 0) and the tokenizer's files. `tiny`:
    2 layers of width 64, for the CPU dry run."""
    from transformers import DistilBertConfig, DistilBertModel

    torch.manual_seed(0)
    # DistilBertConfig's defaults are distilbert-base-uncased's architecture.
    config = DistilBertConfig(dim=64, hidden_dim=128, n_layers=2, n_heads=2) if tiny else DistilBertConfig()
    DistilBertModel(config).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (Path(tokenizer) / name).is_file():
            shutil.copy(Path(tokenizer) / name, folder / name)
    return folder


def synthetic_eurlex(folder: Path, docs: dict[str, int], *, median_words: int, vocab: Path, seed: int = 0) -> Path:
    """Writes `<split>.jsonl` files ({"text", "labels"} per line) of EURLex-4K's shape (module doc)."""
    rng = np.random.default_rng(seed)
    words = np.array([w for w in vocab.read_text().split("\n") if w.isalpha() and len(w) > 2])  # one token each
    zipf = 1.0 / np.arange(1, LABELS + 1)
    cover = math.ceil(LABELS / docs["train"])  # labels each training document carries in turn: all occur in train
    folder.mkdir(parents=True)
    for split, n in docs.items():
        with open(folder / f"{split}.jsonl", "w") as f:
            for i in range(n):
                length = int(np.clip(rng.lognormal(math.log(median_words), 0.6), 5, 6 * median_words))
                labels = {(i * cover + j) % LABELS for j in range(cover)} if split == "train" else set()
                wanted = 1 + rng.poisson(LABELS_PER_DOC - 1)
                labels |= set(rng.choice(LABELS, size=max(0, wanted - len(labels)), p=zipf / zipf.sum()).tolist())
                text = " ".join(words[rng.integers(0, len(words), length)])
                f.write(json.dumps({"text": text, "labels": [f"l{x}" for x in sorted(labels)]}) + "\n")
    return folder


def _batches(prepared: Prepared, split: str, batch_size: int, seed: int | None = None):
    windows = parquet_windows(prepared.split_dir(split), window_rows=batch_size * WINDOW, shuffle_seed=seed)
    return batches_from_windows(windows, batch_size=batch_size, num_labels=prepared.num_labels, shuffle_seed=seed)


def bare_loop(prepared: Prepared, model_dir: Path, *, epochs: int, device: torch.device, host_reads: bool = False):
    """Seconds per epoch (train + a validation forward pass) of a plain PyTorch loop, and the
    trained model and optimizer. `host_reads`: read the loss on the host twice a step."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=str(model_dir)), prepared.num_labels).to(device)
    optimizer = build_optimizer("adam", model.parameters(), lr=LR, weight_decay=0.0)  # as the trials build it
    loss_fn = torch.nn.BCEWithLogitsLoss()
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        for batch in _batches(prepared, "train", BATCH, seed=epoch):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(batch["input_ids"], batch["attention_mask"])  # [B, L]
            loss = loss_fn(logits.float(), batch["labels"])
            if host_reads and not torch.isfinite(loss):
                raise FloatingPointError("non-finite loss")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            if host_reads:
                loss.item()
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            for batch in _batches(prepared, "validation", EVAL_BATCH):
                model(batch["input_ids"].to(device, non_blocking=True), batch["attention_mask"].to(device, non_blocking=True))
        if not math.isfinite(loss_sum.item()):  # the read waits for the GPU: the epoch's time is its work's
            raise FloatingPointError("non-finite loss")
        seconds.append(time.perf_counter() - start)
    return seconds, model, optimizer


def loop_in_process(prepared: Prepared, model_dir: Path, *, epochs: int, device: torch.device) -> list[float]:
    """Seconds per epoch of the trials' own loop (`trainable.loop.fit`: the evaluation metrics, a
    checkpoint written and copied at every report as a trial's is) in this process: (b) without
    Ray Data, Ray and Tune."""
    from sweetspot.trainable.checkpoint import BackgroundWriter
    from sweetspot.trainable.config import TrainConfig
    from sweetspot.trainable.loop import TrainerState, fit
    from sweetspot.trainable.optimizers import build_scheduler

    torch.manual_seed(0)
    model = build_model(ModelConfig(name=str(model_dir)), prepared.num_labels).to(device)
    optimizer = build_optimizer("adam", model.parameters(), lr=LR, weight_decay=0.0)
    scheduler = build_scheduler(optimizer, schedule="constant", total_steps=1)
    marks = [time.perf_counter()]

    def publish(metrics: dict, folder: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(folder, Path(tmp, "dst"))  # Tune's copy into the trial folder

    writer = BackgroundWriter(publish)  # as the trials write theirs (trainable/entry.py)

    def report(metrics: dict, state: TrainerState) -> None:
        writer.report(metrics, model, optimizer, scheduler, state)
        marks.append(time.perf_counter())

    train = TrainConfig(epochs=epochs, batch_size=BATCH, eval_batch_size=EVAL_BATCH, bf16=device.type == "cuda")
    fit(
        model,
        optimizer,
        scheduler,
        train=train,
        state=TrainerState(),
        device=device,
        report=report,
        train_batches=lambda epoch: _batches(prepared, "train", BATCH, seed=epoch),
        eval_batches={"val": lambda: _batches(prepared, "validation", EVAL_BATCH)},
        majority_p1=prepared.manifest["splits"]["validation"]["majority_p1"],
    )
    writer.close()
    loop_in_process.checkpoint_waits = writer.stats.waits  # what the loop waited on each checkpoint
    loop_in_process.checkpoint_writes = writer.stats.writes
    return [b - a for a, b in zip(marks, marks[1:])]


def checkpoint_cost(model, optimizer, repeats: int = 3) -> dict[str, float]:
    """Median seconds to write a trial's checkpoint (from wherever the model lives) and to copy it
    once more as Tune does (its temporary folder into the trial folder), and its size."""
    from sweetspot.trainable.loop import TrainerState, save_checkpoint
    from sweetspot.trainable.optimizers import build_scheduler

    scheduler = build_scheduler(optimizer, schedule="constant", total_steps=1)
    write, copy, size = [], [], 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            save_checkpoint(Path(tmp, "src"), model, optimizer, scheduler, TrainerState())
            write.append(time.perf_counter() - start)
            start = time.perf_counter()
            shutil.copytree(Path(tmp, "src"), Path(tmp, "dst"))
            copy.append(time.perf_counter() - start)
            size = sum(p.stat().st_size for p in Path(tmp, "src").iterdir())
    return {"mb": size / 1e6, "write_s": statistics.median(write), "copy_s": statistics.median(copy)}


class GpuMemory(threading.Thread):
    """Peak GPU memory (MiB) per process and for the whole GPU, from nvidia-smi every 0.5 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.per_pid: dict[int, int] = {}
        self.total = 0
        self._stop_event = threading.Event()

    @staticmethod
    def query(what: str) -> list[list[int]]:
        """nvidia-smi's rows of integers; a row with a value it cannot read ("[N/A]") is left out."""
        out = subprocess.run(
            ["nvidia-smi", f"--query-{what}", "--format=csv,noheader,nounits"], capture_output=True, text=True, check=True
        ).stdout
        rows = [[x.strip() for x in line.split(",")] for line in out.strip().splitlines()]
        return [[int(x) for x in row] for row in rows if all(x.isdigit() for x in row)]

    def run(self) -> None:
        while not self._stop_event.wait(0.5):
            for pid, mib in self.query("compute-apps=pid,used_memory"):
                self.per_pid[pid] = max(self.per_pid.get(pid, 0), mib)
            self.total = max(self.total, self.query("gpu=memory.used")[0][0])

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _steady(seconds: list[float]) -> float:
    """Median seconds of epochs 2..E (epoch 1 alone when there is no other)."""
    return statistics.median(seconds[1:] or seconds)


def run_trials(n: int, base: dict, work: Path, *, gpu: bool, train_docs: int) -> dict:
    """n trials of one configuration (seeds 0..n-1) at once through `run_search`."""
    from sweetspot.search.config import load_experiment_dict
    from sweetspot.search.runner import run_search
    from sweetspot.search.status import read_status

    share = 1.0 / n if gpu else 0.0
    config = load_experiment_dict(
        {
            **base,
            "name": f"gpu-{n}",
            "storage_path": str(work / "results"),
            "search": {**base["search"], "seeds": n, "max_concurrent_trials": n},
            "resources": {**base["resources"], "gpus_per_trial": share},
        }
    )
    memory = GpuMemory() if gpu else None
    idle = GpuMemory.query("gpu=memory.used")[0][0] if gpu else 0
    if memory:
        memory.start()
    start = time.perf_counter()
    folder = Path(run_search(config, overwrite=True))
    wall = time.perf_counter() - start
    if memory:
        memory.stop()
    trials = {t["trial_id"]: t["status"] for t in read_status(str(folder))["trials"]}
    epochs, checkpoint_mb = [], 0.0
    for result_file in sorted(folder.glob("trial_*/result.json")):
        epochs.append([json.loads(line)["time_this_iter_s"] for line in result_file.read_text().splitlines()])
        for checkpoint in sorted(result_file.parent.glob("checkpoint_*"))[-1:]:  # the latest: the one with optimizer state
            checkpoint_mb = sum(p.stat().st_size for p in checkpoint.iterdir()) / 1e6
    rates = [train_docs / _steady(e) for e in epochs if len(e) == config.train.epochs]
    row = {
        "trials": n,
        "gpus_per_trial": share,
        "statuses": sorted(trials.values()),
        "failed": sum(s != "terminated" for s in trials.values()),
        "epoch_seconds": epochs,
        "docs_per_s_per_trial": rates,
        "aggregate_docs_per_s": sum(rates),
        "wall_s": wall,
        "checkpoint_mb_in_trial_folder": checkpoint_mb,
    }
    if memory:  # a trial's process: its CUDA context, weights, optimizer state, activations, allocator cache
        trial_pids = {pid: mib for pid, mib in memory.per_pid.items() if pid != os.getpid()}
        # Where nvidia-smi cannot see other processes (a container's PID namespace), the GPU's growth
        # over its idle level, shared equally, is the per-trial figure.
        row["peak_gpu_mib_per_trial"] = sorted(trial_pids.values()) or [(memory.total - idle) / n]
        row["peak_gpu_mib_method"] = "per process (nvidia-smi)" if trial_pids else "GPU total over idle / trials"
        row["peak_gpu_mib_total"] = memory.total
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry", action="store_true", help="CPU, tiny model, a few steps (what CI runs)")
    parser.add_argument("--train-docs", type=int, default=None, help="training documents (default 1,000; dry: 96)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every run (default 2)")
    parser.add_argument("--trials", default=None, help="trial counts sharing the GPU (default 1,2,4; dry: 1)")
    parser.add_argument(
        "--cpus-per-trial", type=int, default=None, help="CPUs (and torch threads) of a trial (default 4; dry: 1)"
    )
    parser.add_argument(
        "--tokenizer", default=None, help="folder with bert-base-uncased's tokenizer files (default: the minilm-l6 package's)"
    )
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks-gpu.json"))
    args = parser.parse_args()
    sizes = DRY if args.dry else FULL
    train_docs = args.train_docs or (96 if args.dry else 1000)
    epochs = args.epochs or 2
    counts = [int(x) for x in (args.trials or ("1" if args.dry else "1,2,4")).split(",")]
    cpus = args.cpus_per_trial or (1 if args.dry else 4)
    gpu = not args.dry
    if gpu and not torch.cuda.is_available():
        sys.exit("bench/gpu.py: no CUDA GPU here (torch.cuda.is_available() is False); --dry runs on the CPU")
    device = torch.device("cuda" if gpu else "cpu")
    torch.set_num_threads(cpus)
    os.environ["HF_HUB_OFFLINE"] = "1"  # everything is local; the GPU machine has no network
    work = Path(tempfile.mkdtemp(prefix="sweetspot-bench-gpu-"))
    os.environ["SWEETSPOT_CACHE_DIR"] = str(work / "cache")

    tokenizer = args.tokenizer or tokenizer_name("minilm-l6")
    model_dir = random_distilbert(work / "model", tiny=sizes["tiny"], tokenizer=tokenizer)
    docs = {"train": train_docs, "validation": sizes["validation_docs"], "test": sizes["test_docs"]}
    data_dir = synthetic_eurlex(work / "data", docs, median_words=sizes["median_words"], vocab=model_dir / "vocab.txt")
    data = {"source": "jsonl", "path": str(data_dir), "files": {s: f"{s}.jsonl" for s in docs}, "max_len": sizes["max_len"]}
    start = time.perf_counter()
    prepared = prepare(DataConfig(**data), tokenizer=str(model_dir))
    prepare_s = time.perf_counter() - start

    bare_s, model, optimizer = bare_loop(prepared, model_dir, epochs=epochs, device=device)
    checkpoint = checkpoint_cost(model, optimizer)
    parameters = sum(p.numel() for p in model.parameters())
    peak_bare = (
        {"allocated_mib": torch.cuda.max_memory_allocated() / 2**20, "reserved_mib": torch.cuda.max_memory_reserved() / 2**20}
        if gpu
        else None
    )
    del model, optimizer
    reads_s = bare_loop(prepared, model_dir, epochs=epochs, device=device, host_reads=True)[0]
    loop_s = loop_in_process(prepared, model_dir, epochs=epochs, device=device)
    gc.collect()
    if gpu:
        torch.cuda.empty_cache()  # the trials get the GPU; this process keeps only its CUDA context

    import ray

    # As `sweetspot search` starts it (search.ray_start.init_ray), before the trials.
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    if gpu and ray.cluster_resources().get("GPU", 0) < 1:  # else the trials would wait for one forever
        sys.exit(f"bench/gpu.py: Ray sees no GPU (resources: {ray.cluster_resources()})")
    base = {
        "data": data,
        "model": {"name": str(model_dir), "dropout": 0.1},
        "train": {
            "epochs": epochs,
            "batch_size": BATCH,
            "eval_batch_size": EVAL_BATCH,
            "bucket_window": WINDOW,
            "threads": cpus,
            "bf16": gpu,
        },
        "search": {
            "algorithm": "grid",
            "scheduler": {"name": "fifo"},
            "space": {"optimizer": ["adam"], "lr": [LR], "weight_decay": [0.0]},
        },
        "resources": {"cpus_per_trial": cpus},
    }
    sharing = [run_trials(n, base, work, gpu=gpu, train_docs=train_docs) for n in counts]
    ray.shutdown()

    bare_rate = train_docs / _steady(bare_s)
    trial = next(row for row in sharing if row["trials"] == 1)
    trial_epoch_s = _steady(trial["epoch_seconds"][0]) if trial["docs_per_s_per_trial"] else math.inf  # inf: it failed
    stats = prepared.manifest["splits"]
    results = {
        "card": torch.cuda.get_device_name() if gpu else "cpu (dry run)",
        "versions": {
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "transformers": __import__("transformers").__version__,
            "ray": ray.__version__,
            "python": sys.version.split()[0],
        },
        "model": {
            "architecture": "DistilBERT-base, random init" if gpu else "DistilBERT 2x64, random init (dry)",
            "parameters": parameters,
            "labels": prepared.num_labels,
        },
        "data": {
            "train_docs": stats["train"]["rows"],
            "validation_docs": stats["validation"]["rows"],
            "max_len": sizes["max_len"],
            "truncation_rate": stats["train"]["truncation_rate"],
            "length_p50": stats["train"]["length_p50"],
            "avg_labels_per_doc": stats["train"]["avg_labels_per_doc"],
            "prepare_s": prepare_s,
        },
        "settings": {
            "batch": BATCH,
            "eval_batch": EVAL_BATCH,
            "epochs": epochs,
            "bf16": gpu,
            "optimizer": "adam (fused)",
            "lr": LR,
            "cpus_per_trial": cpus,
            "cpus": os.cpu_count(),
        },
        "bare": {"epoch_seconds": bare_s, "docs_per_s": bare_rate, "peak_gpu_memory": peak_bare},
        "bare_host_reads_every_step": {
            "epoch_seconds": reads_s,
            "docs_per_s": train_docs / _steady(reads_s),
            "vs_bare": _steady(bare_s) / _steady(reads_s),
        },
        "loop_in_process": {
            "epoch_seconds": loop_s,
            "docs_per_s": train_docs / _steady(loop_s),
            "vs_bare": _steady(bare_s) / _steady(loop_s),
            "checkpoint_wait_s": loop_in_process.checkpoint_waits,
            "checkpoint_write_s": loop_in_process.checkpoint_writes,
        },
        "sharing": sharing,
        # A trial's fixed start-up: its first epoch's excess over a steady one (process, imports, CUDA, model load).
        "trial_startup_s": trial["epoch_seconds"][0][0] - trial_epoch_s if trial["docs_per_s_per_trial"] else None,
        # (b)/(a): the trial path's samples/s over the bare loop's.
        "trial_vs_bare": trial["docs_per_s_per_trial"][0] / bare_rate if trial["docs_per_s_per_trial"] else 0.0,
        "checkpoint": {
            **checkpoint,
            "mb_in_trial_folder": trial["checkpoint_mb_in_trial_folder"],
            "share_of_trial_epoch": (checkpoint["write_s"] + checkpoint["copy_s"]) / trial_epoch_s,
        },
    }
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
