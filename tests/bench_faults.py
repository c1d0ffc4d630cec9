"""bench/faults.py, loaded as the module `faults` (bench/ is no package)."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import REPO


def load_faults():
    if "faults" not in sys.modules:
        spec = importlib.util.spec_from_file_location("faults", REPO / "bench" / "faults.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["faults"] = module
        spec.loader.exec_module(module)
    return sys.modules["faults"]
