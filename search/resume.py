"""What a resume checks before it touches a results folder (its saved config, its signed Tune state, its
data), reading a folder's saved config back, setting aside the trials a killed driver lost, and marking
the trials an interruption stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweetspot import layout, signing, storage
from sweetspot.data.prepare import Prepared
from sweetspot.search.config import ConfigError, ExperimentConfig, load_experiment_dict, to_dict

# What sweetspot.yaml records beside the config: where the run's prepared data and study are, and
# the prepared data's fingerprint. None of it is part of the config a resume compares.
# `results_folder` and `run_id` bind the folder's signed state to where and by which run it was written.
RECORDED = ("prepared_path", "prepared_data", "optuna_storage", "results_folder", "run_id")


def _comparable(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved config without what may legitimately differ between a run and its resume."""
    return {k: v for k, v in resolved.items() if k not in ("storage_path", *RECORDED)}


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def check_resumable(
    config: ExperimentConfig, folder: str, *, trust_folder: bool = False
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The folder's saved config and the private, verified copy of its signed files (by relative path;
    empty with `trust_folder`), when it holds an experiment of this config to resume, written in this
    folder, whose state this user's sweetspot signed (`sweetspot.signing`), or `trust_folder`."""
    import ray.tune

    config_file = storage.join(folder, layout.CONFIG_FILE)
    if not storage.exists(config_file) or not ray.tune.Tuner.can_restore(folder):
        raise ConfigError(f"{folder}: holds no experiment to resume")
    saved = _saved_config(storage.read_bytes(config_file), config_file)
    copy: dict[str, bytes] = {}
    if not trust_folder:
        try:
            copy = signing.verified_copy(folder, run_id=str(saved.get("run_id")))
        except signing.SigningError as e:
            raise ConfigError(str(e)) from None
        verified = _saved_config(copy.get(layout.CONFIG_FILE), config_file)
        if verified != saved:  # changed between the two reads
            raise ConfigError(f"{config_file}: changed while it was read; {signing.TRUST_HINT}")
        signing.record_newest(folder)
    written = saved.get("results_folder")
    if written is not None and written != folder:
        raise ConfigError(
            f"{folder}: this search was written in {written}; the folder was copied or moved, and resuming it "
            f"would write into the old one (Tune's state and the study name it): resume it where it was "
            f"written, or start a new search"
        )
    differ = _differences(_comparable(saved), _comparable(to_dict(config)))
    if differ:
        raise ConfigError(f"{folder}: holds an experiment from a different config (differs in: {', '.join(differ)})")
    return saved, copy


def _saved_config(data: bytes | None, where: str) -> dict[str, Any]:
    from sweetspot.search.config import parse_yaml_bytes

    saved = parse_yaml_bytes(data or b"", where)
    if not isinstance(saved, dict):
        raise ConfigError(f"{where}: not a saved experiment config")
    return saved


def data_record(prepared: Prepared) -> dict[str, Any]:
    """What identifies the prepared data: its cache key and what the key covers that a config
    does not show (the input files' content hashes, the tokenizer's fingerprint)."""
    m = prepared.manifest
    return {"key": m["key"], "inputs": m["inputs"], "tokenizer": m["tokenizer"]["fingerprint"]}


def check_same_data(folder: str, saved: dict[str, Any], prepared: Prepared) -> None:
    """Refuses to resume on other data than the search started on (the same config over changed
    input files): the remaining trials would train on it, and the trials would not compare."""
    before, now = saved.get("prepared_data"), data_record(prepared)
    if before is None:  # recorded before the fingerprint was: the prepared folder's name ends in the key
        old_key, changed = Path(str(saved.get("prepared_path"))).name.rsplit("-", 1)[-1], []
    else:
        # An input's fingerprint is "<file name>:sha256:<content hash>": name the files that changed.
        old_key = before["key"]
        changed = [str(f).split(":")[0] for role, f in now["inputs"].items() if before["inputs"].get(role) != f]
        changed += ["the tokenizer"] if before["tokenizer"] != now["tokenizer"] else []
    if now["key"][:12] != old_key[:12]:
        raise ConfigError(
            f"{folder}: the data changed since this search started (changed: {', '.join(changed) or 'the prepared data'}; "
            f"prepared key {old_key[:12]} in {layout.CONFIG_FILE}, {now['key'][:12]} now): resuming would "
            f"train the remaining trials on other data; start a new search instead"
        )


def _saved_trial_states(folder: str) -> dict[str, str] | None:
    """Trial id -> status in Tune's newest experiment state, read as plain JSON: nothing in it is
    unpickled. None when the folder holds no experiment state."""
    import json

    names = sorted(
        name
        for name, is_dir in storage.list_dir(folder)
        if not is_dir and name.startswith("experiment_state-") and name.endswith(".json")
    )
    if not names:
        return None
    document = json.loads(storage.read_text(storage.join(folder, names[-1])) or "{}")
    states = {}
    for entry in document.get("trial_data", []):
        state = json.loads(entry[0]) if isinstance(entry[0], str) else entry[0]
        states[str(state.get("trial_id"))] = str(state.get("status"))
    return states


def unfinished_trials(folder: str) -> frozenset[str]:
    """The ids of the trials Tune's newest experiment state holds unfinished (which a resume continues).
    After Ctrl-C the Tuner's trials in memory all read `TERMINATED`; the state Tune saved first keeps
    them running (saved as `PENDING`) or `PAUSED`."""
    states = _saved_trial_states(folder) or {}
    return frozenset(t for t, status in states.items() if status not in ("TERMINATED", "ERROR"))


def set_aside_lost_trials(folder: str) -> list[str]:
    """Moves the trial folders Tune's saved state does not know into `lost/` and returns their names.
    A killed driver leaves them: trials it started after it last saved its state. A resume cannot
    continue them (Tune starts new trials in their place), and the analysis would read their partial
    results as trials of this search. Nothing is deleted."""
    states = _saved_trial_states(folder)
    if states is None:
        return []
    lost = [
        name
        for name, is_dir in storage.list_dir(folder)
        if is_dir and name.startswith(layout.TRIAL_PREFIX) and name.removeprefix(layout.TRIAL_PREFIX) not in states
    ]
    for name in lost:
        storage.move(storage.join(folder, name), storage.join(folder, layout.LOST_FOLDER, name))
    return lost


def mark_interrupted(folder: str, unfinished: frozenset[str]) -> None:
    """Records the trials an interruption stopped (`unfinished`: the ids of the trials Tune holds
    unfinished, which a resume continues) as `interrupted` in summary.json: Tune ends them as if
    finished, which the records would read as `early_stopped`."""
    import json

    summary_file = storage.join(folder, layout.SUMMARY_FILE)
    summary = layout.read_summary(storage.read_text(summary_file) or "", where=summary_file)
    for record in summary["trials"]:
        if record["trial_id"] in unfinished:
            record["status"], record["error"] = layout.INTERRUPTED, None
    storage.write_text(summary_file, json.dumps(summary, indent=1, default=str))


def load_saved_config(folder: str) -> ExperimentConfig:
    """The experiment config saved in a results folder (for `sweetspot resume`)."""
    config_file = storage.join(folder, layout.CONFIG_FILE)
    if not storage.exists(config_file):
        raise ConfigError(f"{folder}: holds no experiment to resume (no {layout.CONFIG_FILE})")
    saved = _saved_config(storage.read_bytes(config_file), config_file)
    for key in RECORDED:
        saved.pop(key, None)
    location = folder.rstrip("/")
    saved["storage_path"] = location.rsplit("/", 1)[0] if storage.is_uri(location) else str(Path(location).resolve().parent)
    saved["name"] = location.rsplit("/", 1)[1] if storage.is_uri(location) else Path(location).resolve().name
    return load_experiment_dict(saved)
