"""Where a search's Optuna study lives, and the study's housekeeping around a run (optuna imported lazily:
`--dry-run` and the CLI's checks need none of it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sweetspot import storage
from sweetspot.search.config import ExperimentConfig
from sweetspot.search.results_folder import experiment_dir

STUDY_FILE = "optuna.db"


def study_storage_url(config: ExperimentConfig) -> str:
    """Where the Optuna study lives: `search.study_storage`, else `optuna.db` in the results
    folder, else (results on a storage URI: SQLite needs a local file) a file beside the driver
    named by the whole results location, so two experiments of one name never share a study."""
    if config.search.study_storage:
        return config.search.study_storage
    folder = experiment_dir(config)
    if storage.is_uri(folder):
        digest = hashlib.sha256(folder.encode()).hexdigest()[:12]
        local = Path.home() / ".cache" / "sweetspot" / "optuna" / f"{config.name}-{digest}.db"
        local.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{local}"
    return f"sqlite:///{Path(folder) / STUDY_FILE}"


def study_elsewhere(config: ExperimentConfig) -> str | None:
    """The study's storage URL when the study lives outside the results folder (`search.study_storage`,
    or results on a URI); `None` when it is the folder's own `optuna.db`, or there is none (grid)."""
    if config.search.algorithm in ("grid", "edges") or not (
        config.search.study_storage or storage.is_uri(experiment_dir(config))
    ):
        return None
    return study_storage_url(config)


def study_exists(config: ExperimentConfig, url: str) -> bool:
    import optuna

    from sweetspot.search.study import connect_url

    return config.name in optuna.get_all_study_names(storage=connect_url(url))


def fail_orphaned_trials(config: ExperimentConfig) -> None:
    """After a search that ran to its end, every trial Optuna handed out has been told its result,
    except those asked for after the last state Tune saved before a killed driver: no trial will
    ever report them, so they are marked failed instead of staying RUNNING in the study forever."""
    import optuna
    from optuna.trial import TrialState

    url = study_storage_url(config)
    if not study_exists(config, url):
        return
    from sweetspot.search.study import connect_url

    study = optuna.load_study(study_name=config.name, storage=connect_url(url))  # `${VAR}`s expanded to connect
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
