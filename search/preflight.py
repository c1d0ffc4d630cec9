"""Checks of a valid config against the machine it runs on, before any folder is written or Ray
is started: the model can be found and takes `data.max_len` tokens, the prepared-data cache and the
results folder can be written, the study's database driver is installed, and the embedded Ray has
the CPUs and GPUs a trial asks for. (Each field's own range is checked where it is declared.)

Every problem is one line, `<dotted.key>: <what is wrong>`, raised together as one `ConfigError`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sweetspot import storage
from sweetspot.search.config import ConfigError, ExperimentConfig
from sweetspot.search.ray_start import usable_cpus


def check_environment(config: ExperimentConfig, *, results: bool = True, address: str | None = None) -> None:
    """Raises `ConfigError` listing every problem; `results=False` (prepare) skips what only a
    search needs (the results folder, the study, Ray's resources)."""
    problems = _model(config) + _cache_dir(config)
    if results:
        problems += _storage_path(config) + _study_storage(config)
        if not (address or os.environ.get("RAY_ADDRESS")):
            problems += _local_resources(config)
    if problems:
        raise ConfigError("\n".join(problems))


def _model(config: ExperimentConfig) -> list[str]:
    from sweetspot.trainable.model import ModelNotFound, encoder_config, position_limit

    try:
        encoder = encoder_config(config.model.name)
    except ModelNotFound as e:
        return [f"model.name: {e}"]
    limit = position_limit(encoder) if encoder is not None else None
    if limit is not None and config.data.max_len > limit:
        return [
            f"data.max_len: {config.data.max_len} is more than {config.model.name}'s {limit} positions "
            f"(max_position_embeddings in its config); use at most {limit}"
        ]
    return []


PROBE_BYTES = 64 * 1024  # written and removed at once: a disk without room for this is full for a search


def unwritable(path: Path) -> str | None:
    """Why the folder `path` cannot be created or written, or `None`. Writes nothing that stays: its
    nearest existing folder is probed with a temporary folder holding `PROBE_BYTES`, removed at once."""
    path = path.expanduser().absolute()
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{path} cannot be created: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{path} cannot be {'written' if existing == path else 'created'}: {existing} is not writable"
    try:  # probed by writing: read-only file systems, /proc, ACLs that os.access does not see (as root), a full disk
        probe = tempfile.mkdtemp(dir=existing, prefix=".sweetspot-probe-")
        try:
            with open(os.path.join(probe, "probe"), "wb") as f:
                f.write(bytes(PROBE_BYTES))
                f.flush()
                os.fsync(f.fileno())
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    except OSError as e:
        return f"{path} cannot be {'written' if existing == path else 'created'}: {e.strerror}"
    return None


def _cache_dir(config: ExperimentConfig) -> list[str]:
    from sweetspot.data.prepare import default_cache_dir

    if config.data.cache_dir:
        key, folder = "data.cache_dir", Path(config.data.cache_dir)
    else:
        key, folder = ("SWEETSPOT_CACHE_DIR" if os.environ.get("SWEETSPOT_CACHE_DIR") else "data.cache_dir"), default_cache_dir()
    why = unwritable(folder)
    return [f"{key}: the prepared-data cache {why}"] if why else []


def _storage_path(config: ExperimentConfig) -> list[str]:
    if storage.is_uri(config.storage_path):
        return []  # an object store: its credentials and bucket are checked when Tune writes
    why = unwritable(Path(config.storage_path))
    return [f"storage_path: {why}"] if why else []


def _study_storage(config: ExperimentConfig) -> list[str]:
    url = config.search.study_storage
    if not url or config.search.algorithm in ("grid", "edges"):  # no Optuna study: no driver needed
        return []
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from sweetspot.redact import redact
    from sweetspot.search.config import ConfigError
    from sweetspot.search.study import check_no_secret

    try:  # a written-out password first: it is refused whatever the driver (and never echoed)
        check_no_secret(url)
    except ConfigError as e:
        return [str(e)]
    url = redact(url)
    try:
        parsed = make_url(config.search.study_storage)
        parsed.get_dialect().import_dbapi()
    except ArgumentError:
        return [f"search.study_storage: {url!r} is not a database URL (e.g. sqlite:///study.db, postgresql://user@host/db)"]
    except NoSuchModuleError:
        return [f"search.study_storage: unknown database {url.split(':', 1)[0]!r} (sqlite, postgresql, mysql, ...)"]
    except ImportError as e:
        return [
            f"search.study_storage: the database driver for {parsed.drivername} is not installed "
            f"(no module {e.name!r}): pip install it, or name an installed driver in the URL"
        ]
    return []


def _gpus() -> int:
    """GPUs the embedded Ray would see (it reads CUDA_VISIBLE_DEVICES as torch does)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _local_resources(config: ExperimentConfig) -> list[str]:
    r, problems = config.resources, []
    cpus = usable_cpus()
    if r.cpus_per_trial > cpus:
        problems.append(
            f"resources.cpus_per_trial: {r.cpus_per_trial:g} CPUs per trial, but the embedded Ray has {cpus} "
            "(the CPUs this process may use); no trial would ever start (use --address to run on a cluster)"
        )
    if r.gpus_per_trial > 0:
        gpus = _gpus()
        if r.gpus_per_trial > gpus:
            problems.append(
                f"resources.gpus_per_trial: {r.gpus_per_trial:g} GPUs per trial, but the embedded Ray has "
                f"{gpus}; no trial would ever start (use 0 on a CPU machine, or --address to run on a cluster)"
            )
    return problems


def trial_bundles(config: ExperimentConfig) -> list[dict[str, float]]:
    """What one trial holds, as the resource bundles Ray places: one bundle for a single-worker trial;
    for `train.workers_per_trial` > 1 the trial's own process and one bundle per worker, each worker
    on whichever node has room (search/trials.py, trainable/entry.py's `_worker_resources`)."""
    from sweetspot.search.trials import DDP_DRIVER_CPU

    r, workers = config.resources, config.train.workers_per_trial
    if workers == 1:
        return [{"CPU": r.cpus_per_trial, "GPU": r.gpus_per_trial}]
    worker = {"CPU": (r.cpus_per_trial - DDP_DRIVER_CPU) / workers, "GPU": r.gpus_per_trial / workers}
    return [{"CPU": DDP_DRIVER_CPU, "GPU": 0.0}] + [dict(worker) for _ in range(workers)]


def bundles_fit(bundles: list[dict[str, float]], nodes: list[dict[str, float]]) -> bool:
    """Whether the bundles can all be placed on the nodes (their free resources) at once: first fit,
    largest bundle first, which is exact for the equal worker bundles of one trial.

    Example:
        >>> bundles_fit([{"CPU": 2}, {"CPU": 2}], [{"CPU": 2}, {"CPU": 2}]), bundles_fit([{"CPU": 4}], [{"CPU": 2}, {"CPU": 2}])
        (True, False)
    """
    free = [dict(node) for node in nodes]
    for bundle in sorted(bundles, key=lambda b: (b.get("GPU", 0.0), b.get("CPU", 0.0)), reverse=True):
        node = next((n for n in free if all(n.get(k, 0.0) + 1e-9 >= v for k, v in bundle.items() if v)), None)
        if node is None:
            return False
        for k, v in bundle.items():
            node[k] = node.get(k, 0.0) - v
    return True


def check_cluster_resources(config: ExperimentConfig) -> str | None:
    """After joining a cluster: refuses a trial the cluster's nodes cannot hold (`ConfigError`), unless
    the cluster autoscales; then returns the message to print while Tune waits for bigger nodes. A
    multi-worker trial's workers may sit on different nodes."""
    import ray
    from ray._private import ray_constants
    from ray.experimental.internal_kv import _internal_kv_get

    r, workers = config.resources, config.train.workers_per_trial
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if bundles_fit(trial_bundles(config), nodes):
        return None
    biggest = (
        max((node.get("CPU", 0.0) for node in nodes), default=0.0),
        max((node.get("GPU", 0.0) for node in nodes), default=0.0),
    )
    wanted = f"{r.cpus_per_trial:g} CPUs" + (f" and {r.gpus_per_trial:g} GPUs" if r.gpus_per_trial else "")
    if workers == 1:
        wanted += " on one node"
        have = (
            "the cluster's largest node has " + f"{biggest[0]:g} CPUs" + (f" and {biggest[1]:g} GPUs" if r.gpus_per_trial else "")
        )
    else:
        wanted += f" in {workers} workers, which may sit on different nodes"
        total = (sum(n.get("CPU", 0.0) for n in nodes), sum(n.get("GPU", 0.0) for n in nodes))
        have = (
            f"the cluster's {len(nodes)} node(s) hold {total[0]:g} CPUs"
            + (f" and {total[1]:g} GPUs" if r.gpus_per_trial else "")
            + f", the largest {biggest[0]:g} CPUs"
            + (f" and {biggest[1]:g} GPUs" if r.gpus_per_trial else "")
        )
    if _autoscales(_internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)):
        return f"resources: a trial needs {wanted}, {have}: waiting for the autoscaler to add nodes (Ctrl-C to stop)"
    key = "resources.gpus_per_trial" if r.gpus_per_trial > biggest[1] * workers else "resources.cpus_per_trial"
    raise ConfigError(f"{key}: a trial needs {wanted}, but {have} and the cluster does not autoscale; no trial would ever start")


def _autoscales(status: bytes | None) -> bool:
    """Whether the joined cluster can add nodes. Ray's monitor runs on every head and reports its
    nodes by type in `status`: a cluster started by `ray start` (fixed) names each node `node_<id>`,
    one launched from a cluster file (`ray up`) names them by their `available_node_types`; the v2
    autoscaler also publishes its cluster config."""
    import json

    from ray._private.state import state

    try:
        if state.get_cluster_config() is not None:
            return True
    except Exception:  # an older GCS without the v2 config
        pass
    try:
        report = json.loads(status or b"{}").get("autoscaler_report") or {}
    except ValueError:
        return False
    types = set(report.get("active_nodes") or {}) | {p[1] for p in report.get("pending_nodes") or [] if len(p) > 1}
    return any(not str(t).startswith("node_") for t in types)
