"""Ground truth: a dense grid at the full budget, run through `sweetspot search` itself, exported to
a compact table that replays many times (a tabular benchmark like NAS-Bench-201 / LCBench).

    SWEETSPOT_DATA_DIR=../shared/datasets python bench/ground_truth.py go_emotions reuters_all

Each table's experiment is an example file (examples/ground-truth-*.yaml): the five study optimizers
× lr = torch's default × 10^k for k in {-3, -2.5, ..., 1} × 2 seeds, grid + FIFO, no stoppers, every
trial to `train.epochs`. The run is resumable: started again after an interruption, it calls
`sweetspot resume` on the results folder, which continues the unfinished trials from their
checkpoints. Each run segment's wall time is logged in the results folder (`ground_truth_runs.json`),
and the table is written once every trial has ended:

    bench/tables/<name>.json   {"name", "config" (as in sweetspot.yaml), "config_file", "commit",
                                "wall_s", "segments", "machine", "trials": [{trial_id, status, config,
                                history: [one row per epoch, trainable.keys names]}]}

`--export-only` rewrites the table from an existing results folder; `--storage` moves the results;
`--set KEY=VALUE` changes how the grid runs, not what it measures (on a GPU machine, for example:
`--set resources.gpus_per_trial=0.08 --set search.max_concurrent_trials=12`); the table records it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO / "bench" / "tables"
EXPERIMENTS = {  # table -> the experiment file that measures it
    "go_emotions": REPO / "examples" / "ground-truth-go_emotions-cpu.yaml",
    "reuters_all": REPO / "examples" / "ground-truth-reuters-all-cpu.yaml",
    # held out: no constant is ever chosen on it (docs/benchmarks.md)
    "reuters_r90": REPO / "examples" / "ground-truth-reuters-r90-cpu.yaml",
    "go_emotions_6ep": REPO / "examples" / "ground-truth-go_emotions-6ep-cpu.yaml",  # held out too
    # docs/study.md: the weight-decay ablation twin, and the study's swapped default lrs of
    # Adagrad (1) and Adadelta (0.01), whose lrs lie outside the grids above
    "go_emotions_wd": REPO / "examples" / "ground-truth-go_emotions-wd-cpu.yaml",
    "go_emotions_adagrad_study": REPO / "examples" / "ground-truth-go_emotions-adagrad-study-cpu.yaml",
    "go_emotions_adadelta_study": REPO / "examples" / "ground-truth-go_emotions-adadelta-study-cpu.yaml",
    "reuters_all_adagrad_study": REPO / "examples" / "ground-truth-reuters-all-adagrad-study-cpu.yaml",
    "reuters_all_adadelta_study": REPO / "examples" / "ground-truth-reuters-all-adadelta-study-cpu.yaml",
}
RUNS_FILE = "ground_truth_runs.json"  # the run segments of one results folder (wall time, commands)
FINISHED = {"terminated", "diverged", "collapsed", "early_stopped"}  # statuses of trials that ended on their own


def _sweetspot(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweetspot.cli", *args]


def _commit() -> str:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return sha + ("-dirty" if dirty else "")


def _machine() -> dict:
    import torch

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def _finished(folder: Path) -> bool:
    """Every trial of the grid has ended (none pending, running or errored)."""
    summary = folder / "summary.json"
    if not summary.is_file():
        return False
    trials = json.loads(summary.read_text())["trials"]
    return bool(trials) and all(t["status"] in FINISHED for t in trials)


def run(name: str, storage: str, overrides: list[str]) -> Path:
    """Runs (or resumes) the grid of table `name` and returns its results folder."""
    from sweetspot.search.config import load_experiment
    from sweetspot.search.runner import experiment_dir, trial_configs

    config_file = EXPERIMENTS[name]
    config = load_experiment(str(config_file), [f"storage_path={storage}", *overrides])
    folder = Path(experiment_dir(config))
    if _finished(folder):
        print(f"{name}: {folder} already holds every trial")
        return folder
    if (folder / "sweetspot.yaml").is_file():
        command = _sweetspot("resume", str(folder))
    else:
        command = _sweetspot(
            "search", str(config_file), *(a for o in [f"storage_path={storage}", *overrides] for a in ("--set", o))
        )
    print(f"{name}: {' '.join(command[1:])}  ({len(trial_configs(config))} trials)", flush=True)
    start = time.time()
    rc = subprocess.run(command, cwd=REPO).returncode
    segment = {
        "command": " ".join(["sweetspot", *command[3:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(start)),
        "wall_s": round(time.time() - start, 1),
        "exit_code": rc,
        "commit": _commit(),
        "machine": _machine(),
    }
    runs_file = folder / RUNS_FILE
    segments = json.loads(runs_file.read_text()) if runs_file.is_file() else []
    runs_file.write_text(json.dumps([*segments, segment], indent=1))
    if rc != 0:
        raise SystemExit(f"{name}: the search ended with exit code {rc}; run this script again to resume it")
    return folder


def export(name: str, folder: Path) -> Path:
    """Writes bench/tables/<name>.json from a finished results folder."""
    from sweetspot.analysis.results import load_results, results_to_table

    if not _finished(folder):
        raise SystemExit(f"{name}: {folder} has unfinished trials; run without --export-only to finish them")
    segments = json.loads((folder / RUNS_FILE).read_text()) if (folder / RUNS_FILE).is_file() else []
    table = {
        **results_to_table(load_results(str(folder))),  # first: the keys below describe the run, not the folder
        "name": name,
        "config_file": str(EXPERIMENTS[name].relative_to(REPO)),
        "commit": segments[-1]["commit"] if segments else _commit(),
        "wall_s": round(sum(s["wall_s"] for s in segments), 1),
        "segments": segments,
        "machine": segments[-1].get("machine") if segments else None,  # where the grid ran
    }
    TABLES.mkdir(parents=True, exist_ok=True)
    out = TABLES / f"{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(table, separators=(",", ":")))
    tmp.replace(out)  # never a half-written table
    print(f"{name}: {len(table['trials'])} trials, {table['wall_s'] / 60:.0f} min of search -> {out.relative_to(REPO)}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", choices=sorted(EXPERIMENTS))
    parser.add_argument("--storage", default=str(REPO / "results"), help="storage_path of the grids' results folders")
    parser.add_argument("--export-only", action="store_true", help="only rewrite the tables from finished results folders")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="how the grid runs (resources, concurrency), passed to sweetspot search",
    )
    args = parser.parse_args()
    os.environ.setdefault("SWEETSPOT_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    for name in args.tables:
        if args.export_only:
            from sweetspot.search.config import load_experiment
            from sweetspot.search.runner import experiment_dir

            folder = Path(experiment_dir(load_experiment(str(EXPERIMENTS[name]), [f"storage_path={args.storage}"])))
        else:
            folder = run(name, args.storage, args.set)
        export(name, folder)


if __name__ == "__main__":
    main()
