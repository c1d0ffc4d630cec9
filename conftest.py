"""pytest setup for the whole checkout: the tests in tests/, and the docstring examples of the
packages (`--doctest-modules`, pyproject.toml)."""

import doctest

import pytest


def pytest_collection_modifyitems(config, items):
    """A docstring whose every example is marked `+SKIP` (it needs a results folder or a cluster) is
    documentation, not a test: it is not collected, so a CI run shows no skipped test for it.

    Every `e2e` test is also `slow` (a search through a real Ray: Ray's start, worker start and
    training, 30 s and more each), so the developer loop `pytest -m "not slow"` leaves them out."""
    from _pytest.doctest import DoctestItem

    items[:] = [
        item
        for item in items
        if not (
            isinstance(item, DoctestItem)
            and item.dtest.examples
            and all(example.options.get(doctest.SKIP) for example in item.dtest.examples)
        )
    ]
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
