"""The Optuna study's storage, connected from a URL template (`sweetspot.redact`): `${VAR}`
references are expanded from the environment to connect, and the template, never the expanded
URL, is what gets pickled (Tune pickles the searcher, with its storage, into `tuner.pkl` and
`searcher-state-*.pkl` in the results folder)."""

from __future__ import annotations

import optuna

from sweetspot.redact import expand, literal_secret, redact
from sweetspot.search.config import ConfigError

KEY = "search.study_storage"


def connect_url(template: str) -> str:
    """The URL to connect with: `template` with its `${VAR}`s expanded (ConfigError when one is unset)."""
    try:
        return expand(template, key=KEY, url=True)
    except KeyError as e:
        raise ConfigError(e.args[0]) from None


def check_no_secret(template: str) -> None:
    """Refuses a study storage URL that holds a password written out: it would be stored in
    sweetspot.yaml and Tune's state in the results folder."""
    where = literal_secret(template)
    if where:
        raise ConfigError(
            f"{KEY}: {redact(template)} holds a password ({where}); results folders must not: write "
            f"${{VAR}} in its place and set VAR in the environment, e.g. postgresql://user:${{PGPASSWORD}}@host/db"
        )
    connect_url(template)


class StudyStorage(optuna.storages.RDBStorage):
    """An `RDBStorage` that pickles its URL template, not the expanded URL."""

    def __init__(self, template: str):
        self.template = template
        super().__init__(connect_url(template))

    def __getstate__(self):
        state = super().__getstate__()
        state["url"] = self.template
        return state

    def __setstate__(self, state):
        super().__setstate__({**state, "url": connect_url(state["template"])})
