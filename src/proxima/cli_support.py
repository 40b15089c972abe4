"""What every ``proxima`` command shares: the one-line failure and the guard that turns Proxima's
errors into it (exit status 1, ``error: ...`` on stderr, never a traceback)."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, NoReturn

import click

from proxima.errors import ProximaError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["fail", "guard", "guard_quiet"]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def _reader_gone() -> NoReturn:
    """Standard output's reader went away (``proxima passes ... | head``): stop quietly, with
    the status of a process killed by SIGPIPE, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so that Python's final flush does not fail again
    sys.exit(128 + 13)


def _guarded(func: Callable[..., None], warn_on_failure: bool) -> Callable[..., None]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        failure = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                func(*args, **kwargs)
            except BrokenPipeError:
                _reader_gone()
            except ProximaError as exc:
                failure = str(exc)
            except OSError as exc:
                failure = f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
        if failure is None or warn_on_failure:
            for w in caught:
                click.echo(f"warning: {' '.join(str(w.message).split())}", err=True)
        if failure is not None:
            fail(failure)

    return wrapper


def guard(func: Callable[..., None]) -> Callable[..., None]:
    """Run a command: Proxima's errors and OS errors become one line and exit status 1;
    warnings (stale orbital elements...) become ``warning: ...`` lines on stderr."""
    return _guarded(func, True)


def guard_quiet(func: Callable[..., None]) -> Callable[..., None]:
    """:func:`guard`, leaving the warnings out when the command fails (the error says it all)."""
    return _guarded(func, False)
