"""Experiment trackers by name: the config's `callbacks: [mlflow, wandb]` -> Ray Tune's logger callbacks.

Each is an optional extra (`pip install sweetspot[mlflow]`, `sweetspot[wandb]`); a name whose package is
missing is refused before Ray starts, with the install command. One table: adding a tracker is one entry.

Example:
    >>> from sweetspot.search.config import load_experiment_dict
    >>> integration_callbacks(load_experiment_dict({}), "/tmp/results/x")
    []
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweetspot import storage
from sweetspot.search.config import ConfigError, ExperimentConfig

MLFLOW_DB = "mlflow.db"


def mlflow_tracking_uri(config: ExperimentConfig, folder: str) -> str:
    """`mlflow.tracking_uri`, else `$MLFLOW_TRACKING_URI`, else a SQLite store `mlflow.db` in a local results
    folder (MLflow 3 refuses a new plain-file store unless MLFLOW_ALLOW_FILE_STORE=true)."""
    if config.mlflow.tracking_uri:
        return config.mlflow.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if storage.is_uri(folder) and not folder.startswith("file://"):
        raise ConfigError("mlflow.tracking_uri: needed when the results go to a storage URI (MLflow's default store is local)")
    return f"sqlite:///{Path(folder.removeprefix('file://'), MLFLOW_DB)}"


def _mlflow(config: ExperimentConfig, folder: str):
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    return MLflowLoggerCallback(
        tracking_uri=mlflow_tracking_uri(config, folder),
        experiment_name=config.mlflow.experiment_name or config.name,
        tags=dict(config.mlflow.tags or {}),
        save_artifact=False,
    )


def _wandb(config: ExperimentConfig, folder: str):
    from ray.air.integrations.wandb import WandbLoggerCallback

    w = config.wandb
    extra: dict[str, Any] = {"mode": w.mode}
    if w.entity:
        extra["entity"] = w.entity
    if w.mode == "offline" and not storage.is_uri(folder):
        extra["dir"] = folder
    return WandbLoggerCallback(project=w.project or config.name, group=w.group or config.name, **extra)


# name -> (the package it needs, the extra that installs it, what builds the callback)
TRACKERS: dict[str, tuple[str, str, Callable[[ExperimentConfig, str], Any]]] = {
    "mlflow": ("mlflow", "mlflow", _mlflow),
    "wandb": ("wandb", "wandb", _wandb),
}


def check_trackers(config: ExperimentConfig) -> None:
    """Refuses a tracker whose package is not installed (before Ray starts)."""
    for name in config.callbacks:
        package, extra, _ = TRACKERS[name]
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"callbacks: {name} needs the {package} package: pip install 'sweetspot[{extra}]'")


def integration_callbacks(config: ExperimentConfig, folder: str) -> list[Any]:
    """The Tune callbacks for `config.callbacks`, in their order."""
    check_trackers(config)
    return [TRACKERS[name][2](config, folder) for name in config.callbacks]
