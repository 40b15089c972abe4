"""Which cores run compiled (mypyc C extensions built at install) and which as Python.

The build (``setup.py``) compiles the modules in :data:`COMPILED_CORES` unless
``PROXIMA_PURE_PYTHON=1`` is set or no C compiler works. Both forms behave the same on
well-typed calls; the compiled one is about twice as fast, and refuses arguments of the wrong
Python type with a ``TypeError`` where it reads them. ``PROXIMA_PURE_PYTHON=1`` at run time
imports the Python sources even when the compiled modules are installed (see
:func:`prefer_sources`). An editable install keeps the compiled modules beside their sources,
where they take precedence: after editing one of these sources, install again
(``pip install -e .``); :func:`stale` names the ones out of date, and :func:`leftovers` the
ones of modules taken off the list, which a new install leaves in place.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

COMPILED_CORES: Final = (
    "proxima.bpv7._cbor",
    "proxima.bpv7.crc",
    "proxima.bpv7.bundle",
    "proxima.agent.agent",
    "proxima.agent.routing",
    "proxima.cla.tcpcl",
    "proxima.cla.framing",
    "proxima.runtime.store",
    "proxima.runtime.node",
)


def _extension(module: str) -> Path | None:
    """The compiled extension ``module`` imports from, or None when it imports its source."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    return origin if origin.suffix in (".so", ".pyd") else None


def compiled() -> dict[str, bool]:
    """Each core module's name and whether the compiled form is the one imported."""
    return {name: _extension(name) is not None for name in COMPILED_CORES}


def stale() -> list[str]:
    """The compiled cores whose Python source changed after they were built."""
    out: list[str] = []
    for name in COMPILED_CORES:
        origin = _extension(name)
        if origin is None:
            continue
        source = origin.parent / (name.rsplit(".", 1)[1] + ".py")
        if source.exists() and source.stat().st_mtime > origin.stat().st_mtime:
            out.append(name)
    return out


def leftovers(package: Path | None = None) -> list[Path]:
    """Compiled modules in ``package`` (default: proxima's own directory) that no build makes
    any more: an extension beside its ``.py`` source for a module not in
    :data:`COMPILED_CORES`. An editable install does not remove them, and they take precedence
    over the source that replaced them; delete them."""
    root = Path(__file__).parent if package is None else package
    prefix = root.name
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    out: list[Path] = []
    for path in sorted(root.rglob("*")):
        suffix = next((s for s in suffixes if path.name.endswith(s)), None)
        if suffix is None:
            continue
        source = path.with_name(path.name[: -len(suffix)] + ".py")
        module = ".".join((prefix, *source.relative_to(root).with_suffix("").parts))
        if source.is_file() and module not in COMPILED_CORES:
            out.append(path)
    return out


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the core modules' ``.py`` files before the import system finds their extensions."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED_CORES or not path:
            return None
        leaf = fullname.rsplit(".", 1)[1]
        for entry in path:
            source = Path(entry) / f"{leaf}.py"
            if source.is_file():
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def prefer_sources() -> None:
    """Import the cores from their Python sources from now on (before their first import)."""
    if not any(isinstance(f, _SourcesFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())


def summary() -> str:
    """One line: ``compiled`` (every core), ``pure Python`` or ``partly compiled (...)``."""
    state = compiled()
    if all(state.values()):
        return "compiled"
    if not any(state.values()):
        return "pure Python"
    return "partly compiled (" + ", ".join(n for n, c in state.items() if c) + ")"


__all__ = ["COMPILED_CORES", "compiled", "prefer_sources", "stale", "summary"]
