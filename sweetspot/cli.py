"""`sweetspot` command line: prepare, search, analyze.

Every user error ends with one line on stderr naming the file and line or the config key, and
exit code 2. Heavy imports (torch, Ray) happen inside the subcommands that need them.

Over 400 lines on purpose: the whole command-line surface (every subcommand's parser and handler) in one
file, so its help, exit codes and error lines stay consistent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence


class UserError(Exception):
    """Shown as one line and exit code 2."""


def _load(args):
    from sweetspot.search.config import load_experiment

    return load_experiment(args.config, args.set or [])


def _check(config, where: str, **kwargs) -> None:
    """The config against this machine (search/preflight.py), before anything is written or Ray starts."""
    from sweetspot.search.config import ConfigError
    from sweetspot.search.preflight import check_environment

    try:
        check_environment(config, **kwargs)
    except ConfigError as e:
        raise ConfigError("\n".join(f"{where}: {line}" for line in str(e).splitlines())) from None


def _origin(split_stats: dict) -> str:
    """Where a split's rows came from: carved from train, or the source's rows minus drops."""
    if "carved_from_train" in split_stats:
        return f"carved from train ({split_stats['carved_from_train']:.0%})"
    drops = ", ".join(f"{n:,} {why.replace('_', ' ')}" for why, n in split_stats["dropped"].items() if n)
    return f"{split_stats['source_rows']:,} in source" + (f", dropped {drops}" if drops else "")


def _stats_table(manifest: dict) -> str:
    s = manifest["stats"]
    rows = [
        ("num training points", f"{s['num_train']:,}"),
        ("num labels", f"{s['num_labels']:,}"),
        ("num test points", f"{s['num_test']:,}"),
        ("avg training points per label", f"{s['avg_points_per_label']:.2f}"),
        ("avg labels per training point", f"{s['avg_labels_per_point']:.2f}"),
    ]
    for split, st in manifest["splits"].items():
        rows.append(
            (
                f"{split}: rows / truncated / p50,p90,p99 tokens",
                f"{st['rows']:,} / {st['truncation_rate']:.1%} / {st['length_p50']:.0f},{st['length_p90']:.0f},{st['length_p99']:.0f}"
                f"   ({_origin(st)})",
            )
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def cmd_prepare(args) -> int:
    config = _load(args)
    _check(config, args.config, results=False)
    from sweetspot.search.runner import prepare_data

    prepared = prepare_data(config)
    if args.json:
        print(json.dumps({**prepared.manifest, "path": str(prepared.path)}, indent=1))
    else:
        print(_stats_table(prepared.manifest))
        print(f"prepared: {prepared.path}")
    return 0


def _dry_run(args, config) -> int:
    """The plan without running it: a grid's trials, every algorithm's worst case (trials, trial-epochs)."""

    from sweetspot.search.console import plan_lines, trial_cap
    from sweetspot.search.ray_start import usable_cpus
    from sweetspot.search.runner import experiment_dir
    from sweetspot.search.space import grid

    search = config.search
    configs = grid(search.space, seeds=search.seeds, first_seed=config.train.seed) if search.algorithm == "grid" else None
    cap = trial_cap(config)
    if args.json:  # a grid: its trial list, as before; the other algorithms sample theirs while they run
        print(
            json.dumps(
                configs
                if configs is not None
                else {
                    "algorithm": search.algorithm,
                    "max_trials": cap,
                    "max_trial_epochs": cap * config.train.epochs,
                    "epochs": config.train.epochs,
                    "trials": None,
                },
                indent=1,
            )
        )
        return 0
    for line in plan_lines(config, folder=experiment_dir(config), cpus=usable_cpus()):
        print(line)
    for c in configs or ():
        print(f"  {c['optimizer']:<9} lr={c['lr']:<10g} weight_decay={c['weight_decay']:<8g} seed={c['seed']}")
    bound = "" if configs is not None else "at most "
    print(
        f"{bound}{cap} trials, {bound}{cap * config.train.epochs} trial-epochs"
        + ("" if configs is not None else f" ({search.algorithm} chooses them while it runs)")
    )
    return 0


def _console(args):
    from sweetspot.search.console import Console

    return Console(verbose=args.verbose)


def _before_ray(args, config) -> None:
    """What must hold before Ray starts: the address answers, the trackers are installed."""
    from sweetspot.search.callbacks import check_trackers

    check_trackers(config)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if address:
        from sweetspot.search.address import probe

        probe(address)


def cmd_search(args) -> int:
    config = _load(args)  # before the heavy imports: a bad file is refused at once
    if args.dry_run:
        return _dry_run(args, config)
    from sweetspot.search.runner import run_search

    _check(config, args.config, address=args.address)
    _before_ray(args, config)
    return _searched(
        args,
        lambda: run_search(
            config,
            address=args.address,
            overwrite=args.overwrite,
            dashboard=args.dashboard,
            resume=args.resume,
            retry_errored=args.retry_errored,
            trust_folder=args.trust_results_folder,
            report_every=_report_every(args),
            console=_console(args),
        ),
    )


def _searched(args, search) -> int:
    """Runs `search` (a search or a resume) and turns its end into an exit code: 0; 130 after
    Ctrl-C (143 after SIGTERM), with the command that resumes it; 1 when every trial errored, with the first error."""
    from sweetspot import layout, storage
    from sweetspot.search.runner import SearchInterrupted
    from sweetspot.search.tuner import terminated

    try:
        folder = search()
    except SearchInterrupted as e:
        how = "terminated (SIGTERM)" if e.terminated else "interrupted"
        print(
            f"sweetspot {args.command}: {how}; the search is saved, continue it with: sweetspot resume {e.folder}",
            file=sys.stderr,
        )
        return 143 if e.terminated else 130
    except KeyboardInterrupt:  # outside the Tuner's run (before it, or while the search ends)
        if not terminated():
            raise
        print(f"sweetspot {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    summary_file = storage.join(folder, layout.SUMMARY_FILE)
    text = storage.read_text(summary_file)
    trials = layout.read_summary(text, where=summary_file)["trials"] if text else []
    if trials and all(t["status"] == "errored" for t in trials):
        first = trials[0]
        log = storage.join(storage.join(folder, first["folder"]), "error.txt") if first.get("folder") else folder
        print(
            f"sweetspot {args.command}: error: every trial errored ({len(trials)}); the first: {first.get('error')} (log: {log})",
            file=sys.stderr,
        )
        return 1
    if not args.verbose:
        for line in _answer_lines(folder):
            print(line)
    _study_hint(folder)
    print(f"results: {folder}\nnext: sweetspot analyze {folder}   (the report, the study's claims, every trial)")
    return 0


def _study_hint(folder: str) -> None:
    """Where the Optuna study is, for a search that has one (tpe, random): optuna-dashboard opens it."""
    import yaml

    from sweetspot import layout, storage

    saved = yaml.safe_load(storage.read_text(storage.join(folder, layout.CONFIG_FILE)) or "{}") or {}
    url = saved.get("optuna_storage")
    if url and (saved.get("search") or {}).get("algorithm") in ("tpe", "random"):
        print(f"study: optuna-dashboard {url}")


def _answer_lines(folder: str) -> list[str]:
    """The analysis's answer block (analysis/answer.py) for a finished search; the report is left to
    `sweetspot analyze`. An analysis that fails here costs the user nothing: the search is saved."""
    import textwrap

    from sweetspot.analysis.answer import answer
    from sweetspot.analysis.report import analyze
    from sweetspot.analysis.results import ResultsError, load_results

    try:
        results = load_results(folder)
        if not any(t.history for t in results.trials):
            return []
        lines = answer(analyze(results)).lines()
    except (ResultsError, ValueError, OSError) as e:
        return [f"(no answer yet: {e})"]
    return ["", "THE ANSWER", *(textwrap.fill(line, 100, initial_indent="  ", subsequent_indent="      ") for line in lines)]


def cmd_resume(args) -> int:
    from sweetspot.search.runner import load_saved_config, run_search

    config = load_saved_config(args.results_dir)
    _check(config, args.results_dir, address=args.address)
    _before_ray(args, config)
    return _searched(
        args,
        lambda: run_search(
            config,
            address=args.address,
            dashboard=args.dashboard,
            resume=True,
            retry_errored=args.retry_errored,
            trust_folder=args.trust_results_folder,
            report_every=_report_every(args),
            console=_console(args),
        ),
    )


def _report_every(args) -> float | None:
    from sweetspot.analysis.live import parse_duration

    try:
        return None if args.report_every is None else parse_duration(args.report_every)
    except ValueError as e:
        raise UserError(f"--report-every: {e}") from None


def cmd_status(args) -> int:
    from sweetspot.search.status import format_runs, format_status, list_runs, read_status

    if args.results_dir is None:  # every search under storage_path
        runs = list_runs(args.storage_path)
        print(json.dumps(runs, indent=1) if args.json else format_runs(runs, args.storage_path))
        return 0
    summary = read_status(args.results_dir)
    print(json.dumps(summary, indent=1) if args.json else format_status(summary))
    return 0


def cmd_analyze(args) -> int:
    from sweetspot.analysis import live
    from sweetspot.analysis.report import analyze, format_answer, format_summary, format_table, to_json, write_report
    from sweetspot.analysis.results import ResultsError, load_results

    if not (args.delta >= 0.0):  # also refuses NaN
        raise UserError(f"--delta: must be a number >= 0, got {args.delta}")
    if args.epoch is not None and not (args.epoch > 0):
        raise UserError(f"--epoch: must be > 0, got {args.epoch}")
    results = load_results(args.results_dir, metric=args.metric)
    if not any(t.history for t in results.trials):
        errored = [t for t in results.trials if t.status == "errored"]
        if results.trials and len(errored) == len(results.trials):  # not "yet": nothing more will come
            first = errored[0]
            raise ResultsError(
                f"{results.folder}: every trial errored before its first report ({len(errored)} of {len(results.trials)}); "
                f"the first, {first.trial_id}: {(first.error or 'no error recorded').splitlines()[0]}"
            )
        raise ResultsError(f"{results.folder}: no trial has reported a result yet")
    if not any(results.metric in row for t in results.trials for row in t.history):
        reported = sorted({k for t in results.trials for row in t.history for k in row if k.startswith(("val_", "test_"))})
        raise UserError(f"--metric {results.metric}: no trial reported it (reported: {', '.join(reported)})")
    partial = live.partial_state(results)  # None once the search finished; read with the results
    analysis = analyze(results, delta=args.delta, epoch=args.epoch, baselines=not args.no_baselines, rule=args.rule)
    try:
        report = None if args.no_report else write_report(analysis, args.out, attention=not args.no_attention, partial=partial)
    except OSError as e:  # a read-only results folder, a full disk
        raise UserError(f"cannot write the report: {e} (use --out DIR, or --no-report)") from None
    if args.json:
        print(json.dumps({**to_json(analysis, report=report), "partial": live.to_json(partial, analysis.spots)}, indent=1))
    else:  # the answer first, then the details
        if partial is not None:
            print(live.format_partial(partial, analysis.spots) + "\n")
        print(format_answer(analysis))
        print()
        print(format_table(results))
        print()
        print(format_summary(analysis))
        if report:
            print(f"report: {report}/report.html")
    return 0


def _ray_options(p) -> None:
    """Where the trials run: `search` and `resume` take the same two options."""
    p.add_argument(
        "--address",
        help="Ray cluster to join ('auto', 'HOST:PORT', 'ray://…'); default: $RAY_ADDRESS, else an embedded local Ray",
    )
    p.add_argument(
        "--dashboard", action="store_true", help="start Ray's dashboard with the embedded local Ray (a cluster has its own)"
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="Tune's own console (status tables, result boxes, Ray's logs) instead of sweetspot's plan, trial lines and progress",
    )


def _trust_option(p) -> None:
    p.add_argument(
        "--trust-results-folder",
        action="store_true",
        help="resume even when the folder's Tune state is not signed by your sweetspot key (it is unpickled: "
        "only for a folder no one else can write)",
    )


def _live_options(p) -> None:
    """`search` and `resume`: the report refreshed while the search runs (search/live.py)."""
    p.add_argument(
        "--report-every",
        metavar="DURATION",
        help="refresh RESULTS_DIR/report while the search runs, e.g. 5m, "
        "90s, 1h (a partial report that reloads itself; the final one at the end)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweetspot", description="Find where a BERT-family encoder fine-tunes on a multi-label text dataset."
    )
    parser.add_argument("--version", action="version", version=f"sweetspot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def experiment_args(p):
        p.add_argument(
            "config",
            metavar="CONFIG",
            help="experiment YAML file (sample configs are in the source "
            "repository's examples/ folder; the installed package has none)",
        )
        p.add_argument(
            "--set", action="append", metavar="KEY=VALUE", help="override a key, e.g. --set train.epochs=2 (repeatable)"
        )

    p = sub.add_parser(
        "prepare",
        help="tokenize a dataset once into Parquet shards (cached)",
        description="Tokenize the experiment's dataset once into Parquet shards, or find it in the cache, and print its statistics.",
    )
    experiment_args(p)
    p.add_argument("--json", action="store_true", help="print the manifest (with the prepared folder's path) as JSON")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser(
        "search",
        help="run the hyperparameter search on Ray Tune",
        description="Prepare the data, then run the experiment's search (search.algorithm: edges, tpe, random or grid) on an embedded local Ray or a cluster.",
    )
    experiment_args(p)
    _ray_options(p)
    _live_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing results folder of the same name")
    p.add_argument("--resume", action="store_true", help="continue the interrupted experiment in the results folder")
    p.add_argument(
        "--retry-errored", action="store_true", help="with --resume: run errored trials again from their last checkpoint"
    )
    _trust_option(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (a grid: its trials) and the worst case (trials, trial-epochs) and exit; nothing is prepared or run",
    )
    p.add_argument(
        "--json", action="store_true", help="with --dry-run: a grid's trials as a JSON list, else the worst case as a JSON object"
    )
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "resume",
        help="continue an interrupted search from its results folder",
        description="Continue the experiment saved in RESULTS_DIR: finished trials are kept, unfinished ones continue from their last checkpoint.",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR")
    _ray_options(p)
    _live_options(p)
    p.add_argument("--retry-errored", action="store_true", help="run errored trials again from their last checkpoint")
    _trust_option(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser(
        "status",
        help="the run records of a search, while it runs or after",
        description="List every trial of a search: status, config, epochs, latest and best metric, error.",
    )
    p.add_argument(
        "results_dir", metavar="RESULTS_DIR", nargs="?", help="a results folder; without it, every search under --storage-path"
    )
    p.add_argument(
        "--storage-path",
        default="./results",
        help="where to list searches when no RESULTS_DIR is given (default ./results, the configs' default storage_path)",
    )
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "analyze",
        help="report on a results folder: sweet spots, collapse, importance (no Ray needed)",
        description="Read a results folder (a local path or a storage URI), print its trials sorted by the "
        "metric, its sweet spots and collapsed runs, and write RESULTS_DIR/report/ "
        "(report.html, report.md, figures, trials.csv, epochs.csv).",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="the experiment's results folder, e.g. results/quickstart")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the machine-readable summary (trials, sweet_spots, collapsed, "
        "diverged, importances, baselines) instead of the text",
    )
    p.add_argument(
        "--metric",
        default="val_p1",
        help="validation metric to rank trials and find sweet spots by "
        "(default: val_p1); losses are minimised, everything else maximised",
    )
    p.add_argument(
        "--rule",
        choices=("trains", "near-best"),
        default="trains",
        help="sweet spot: where a configuration trains, beating the majority-label floor by --delta (default), "
        "or where it is within --delta of the best configuration (near-best)",
    )
    p.add_argument(
        "--delta",
        type=float,
        default=0.02,
        help="the sweet spot's relative margin: over the floor (trains) or to the best (near-best); default 0.02 = 2%%",
    )
    p.add_argument(
        "--epoch",
        type=float,
        help="compare at epoch N instead of the budget (train.epochs), e.g. to read an ASHA search at a rung",
    )
    p.add_argument("--out", metavar="DIR", help="write the report here instead of RESULTS_DIR/report")
    p.add_argument("--no-report", action="store_true", help="only print; write no report folder")
    p.add_argument("--no-baselines", action="store_true", help="skip the majority-label and TF-IDF baselines")
    p.add_argument("--no-attention", action="store_true", help="skip figure (f), the only one that loads checkpoints (torch)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser(
        "env",
        help="versions, devices and Ray's state, for a bug report",
        description="Print sweetspot's, Python's and the main libraries' versions, the devices torch sees, "
        "and whether a Ray cluster runs on this machine.",
    )
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p.set_defaults(func=cmd_env)

    from sweetspot.export import command as cmd_export  # light: its heavy imports happen when it runs

    p = sub.add_parser(
        "export",
        help="the best configuration's best checkpoint as a Hugging Face model folder",
        description="Write the best checkpoint of the best configuration (or of --trial) as a folder that "
        "transformers' AutoModel/AutoTokenizer load (the head: sweetspot.export.load).",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR")
    p.add_argument("--trial", metavar="ID", help="export this trial's best checkpoint instead")
    p.add_argument("--out", metavar="DIR", required=True, help="the folder to write (must not exist, or be empty)")
    p.set_defaults(func=cmd_export)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sweetspot")
    except PackageNotFoundError:
        return "unknown (not installed)"


def environment() -> dict:
    """What a bug report needs: versions, devices, Ray's state on this machine."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from sweetspot.search.ray_start import usable_cpus

    def v(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    info: dict = {
        "sweetspot": _version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
    }
    for name in ("torch", "ray", "transformers", "optuna", "pyarrow", "mlflow", "wandb"):
        info[name] = v(name)
    try:
        import torch

        devices = [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            devices.append("mps")
        info["devices"] = devices or ["cpu only"]
    except ImportError:
        info["devices"] = ["torch not installed"]
    try:
        from ray._private.services import find_bootstrap_address

        found = find_bootstrap_address(None)
        info["ray_cluster"] = (sorted(found) if isinstance(found, (set, list)) else found) or None
    except Exception as e:  # Ray's private API moved: say so rather than fail a bug report
        info["ray_cluster"] = f"unknown ({type(e).__name__})"
    info["ray_address_env"] = os.environ.get("RAY_ADDRESS")
    return info


def cmd_env(args) -> int:
    info = environment()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    for k, value in info.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else ("-" if value is None else value)
        print(f"{k:<16} {shown}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `sweetspot status | head`: the reader left; say nothing more
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not raise again
        except (OSError, ValueError):  # stdout is not a real file (a test's capture)
            pass
        return 141  # 128 + SIGPIPE, as a program the signal ended


def _main(argv: Sequence[str] | None) -> int:
    from sweetspot.analysis.results import ResultsError
    from sweetspot.data.sources import DataError
    from sweetspot.search.config import ConfigError

    args = build_parser().parse_args(argv)
    args.verbose = getattr(args, "verbose", False)
    try:
        return args.func(args)
    except (ConfigError, DataError, ResultsError, UserError) as e:
        for line in str(e).splitlines():  # a config with several problems: one line each
            print(f"sweetspot {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sweetspot {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
