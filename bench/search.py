"""Search benchmark: what the driver costs over the trials themselves.

    SWEETSPOT_DATA_DIR=../shared/datasets python bench/search.py [--trials 8] [--epochs 2]

Runs one `sweetspot search` (TPE + FIFO, 2 trials at a time on this machine's 2 CPUs, a small
go_emotions slice with MiniLM) and reports
    overhead = search wall time / (sum of the trials' own times / concurrency),
where a trial's own time is Tune's `time_total_s` (its process start to its last report). The wall
time is measured around `run_search`, with Ray already started, so it covers scheduling, trial
start-up, result handling, checkpoints and the run records; data preparation (a cache hit) and
Ray's own start are reported apart. Goal: <= 1.10. Results: docs/benchmarks-search.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks-search.json"))
    args = parser.parse_args()
    os.environ.setdefault("SWEETSPOT_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    work = Path(tempfile.mkdtemp(prefix="sweetspot-bench-search-"))
    os.environ["SWEETSPOT_CACHE_DIR"] = str(work / "cache")

    import ray

    from sweetspot.search.config import load_experiment_dict
    from sweetspot.search.runner import prepare_data, run_search

    config = load_experiment_dict(
        {
            "name": "bench-search",
            "storage_path": str(work / "results"),
            "data": {
                "source": "go_emotions",
                "max_len": 48,
                "train_limit": args.docs,
                "validation_limit": args.docs // 4,
                "test_limit": 64,
            },
            "model": {"name": "minilm-l6"},
            "train": {"epochs": args.epochs, "batch_size": 16},
            "search": {
                "algorithm": "tpe",
                "num_samples": args.trials,
                "max_concurrent_trials": 2,
                "scheduler": {"name": "fifo"},
                "space": {"optimizer": ["adam", "adamw"], "lr": {"low": 1e-5, "high": 1e-3}},
            },
            "resources": {"cpus_per_trial": 1},
        }
    )
    start = time.perf_counter()
    prepare_data(config)
    prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start_s = time.perf_counter() - start
    start = time.perf_counter()
    folder = Path(run_search(config))
    wall = time.perf_counter() - start
    ray.shutdown()
    trial_s = []
    for result_file in folder.glob("trial_*/result.json"):
        rows = [json.loads(l) for l in result_file.read_text().splitlines()]
        trial_s.append(rows[-1]["time_total_s"])
    ideal = sum(trial_s) / 2
    results = {
        "trials": len(trial_s),
        "epochs": args.epochs,
        "train_docs": args.docs,
        "concurrency": 2,
        "search_wall_s": wall,
        "sum_trial_s": sum(trial_s),
        "ideal_wall_s": ideal,
        "overhead": wall / ideal,
        "prepare_cache_hit_s": prepare_s,
        "ray_start_s": ray_start_s,
    }
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
