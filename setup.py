"""Build hook: compile the node's per-bundle code to C with mypyc.

The bundle codec, the bundle protocol agent, the TCPCL and stream framing cores, the bundle
store and the node that drives them are plain ``mypy --strict`` Python; mypyc turns them into C
extensions that run the same code about twice as fast, which the node's throughput depends on.
Everything else stays interpreted.

The compiled build is the default. It is skipped, leaving the pure-Python modules in use, when
``PROXIMA_PURE_PYTHON=1`` is set or when no C compiler works (a warning says so); the package
behaves the same either way, only slower. ``proxima.speedups.summary()`` tells which is running.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent


def compiled_sources() -> list[str]:
    """The source of every module named in ``proxima.speedups.COMPILED_CORES`` (read, not
    imported: the package's dependencies need not be installed yet)."""
    tree = ast.parse((HERE / "src/proxima/speedups.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "COMPILED_CORES":
            names = ast.literal_eval(node.value) if node.value is not None else ()
            return ["src/" + name.replace(".", "/") + ".py" for name in names]
    raise RuntimeError("src/proxima/speedups.py does not define COMPILED_CORES")


class OptionalBuildExt(build_ext):
    """Build the compiled cores, or none of them: a partial set would not import."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # a missing or failing C compiler, above all
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            print(
                f"warning: proxima's compiled cores were not built ({exc}); "
                "the pure-Python modules will be used",
                file=sys.stderr,
            )


def extensions() -> list[Any]:
    if os.environ.get("PROXIMA_PURE_PYTHON") == "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    here = os.getcwd()
    os.chdir(HERE)
    try:
        return list(mypycify(compiled_sources(), opt_level="3", group_name="proxima_cores"))
    except (Exception, SystemExit) as exc:  # mypyc exits when the type check fails
        print(
            f"warning: proxima's compiled cores were not generated ({exc!r}); "
            "the pure-Python modules will be used",
            file=sys.stderr,
        )
        return []
    finally:
        os.chdir(here)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
