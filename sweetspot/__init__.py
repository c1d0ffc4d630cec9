"""sweetspot: where do BERT-family encoders fine-tune on a multi-label task, and where do they collapse?

One import namespace over the packages at the repository root (setuptools' `package-dir` maps them):

- `sweetspot.data`: prepare a multi-label dataset once (tokenized Parquet shards), read it in trials;
- `sweetspot.trainable`: the model, the optimizers' table, the training loop and the Ray Tune function;
- `sweetspot.search`: experiment configs, the search space, the Tuner (Optuna/ASHA or grid), stoppers;
- `sweetspot.analysis`: results folder to tables, sweet spots, collapse diagnosis, the report.

Beside them, two pure-Python modules that both the search and the analysis use: `sweetspot.storage`
(files on a local path or a URI) and `sweetspot.layout` (the results folder's file names and how its
files are parsed); and `sweetspot.cli`, the command-line layer on top, which nothing imports.

Dependencies run data <- trainable <- search; analysis reads result files and imports only pure pieces
(keys, configs, layout, storage). Importing `sweetspot` itself imports none of them.
"""

__version__ = "0.1.0"

import os as _os

# Installed, the sub-packages are folders inside this one. In a source tree (a checkout, or the copy
# of it that `ray job submit --working-dir .` uploads and puts first on every worker's path) they are
# the folders beside it: look there too, so that a source tree always runs its own code, never a mix
# of it and an installed copy.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_root, "pyproject.toml")) and _os.path.isfile(_os.path.join(_root, "trainable", "entry.py")):
    __path__.append(_root)
