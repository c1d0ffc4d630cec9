"""pytest setup for the whole checkout: the tests in tests/, and the docstring examples of the
packages (`--doctest-modules`, pyproject.toml)."""

import doctest


def pytest_collection_modifyitems(config, items):
    """A docstring whose every example is marked `+SKIP` (it needs a results folder or a cluster) is
    documentation, not a test: it is not collected, so a CI run shows no skipped test for it."""
    from _pytest.doctest import DoctestItem

    items[:] = [item for item in items if not (
        isinstance(item, DoctestItem) and item.dtest.examples
        and all(example.options.get(doctest.SKIP) for example in item.dtest.examples))]
