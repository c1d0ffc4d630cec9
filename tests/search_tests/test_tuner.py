"""search/tuner.py: SIGTERM ends a search the way Ctrl-C does, wherever it lands (the real signalled
searches are in tests/test_reliability.py)."""

from __future__ import annotations

import os
import signal

import pytest

from sweetspot.search.tuner import catch_sigterm, terminated


@pytest.fixture(autouse=True)
def python_sigint():
    """SIGINT as Python sets it up (KeyboardInterrupt), whatever an earlier test left installed."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_sigterm_becomes_a_keyboard_interrupt_that_says_it_was_sigterm_and_the_handler_is_put_back():
    def ray_like(signum, frame):  # what `ray.init` installs: exit with the signal's number, no word
        raise SystemExit(signum)

    before = signal.signal(signal.SIGTERM, ray_like)
    try:
        restore = catch_sigterm()
        assert not terminated()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next line
        assert terminated()
        restore()
        assert signal.getsignal(signal.SIGTERM) is ray_like
        catch_sigterm()()  # a new search starts with the flag down
        assert not terminated()
    finally:
        signal.signal(signal.SIGTERM, before)


def test_the_cli_exits_143_when_sigterm_lands_outside_the_tuners_run(capsys):
    from types import SimpleNamespace

    from sweetspot.cli import _searched

    restore = catch_sigterm()
    try:

        def search():  # the search has ended its Tuner run and is shutting down when SIGTERM comes
            os.kill(os.getpid(), signal.SIGTERM)
            return "never"

        assert _searched(SimpleNamespace(command="search"), search) == 143
        assert "sweetspot search: terminated (SIGTERM)" in capsys.readouterr().err
    finally:
        restore()
