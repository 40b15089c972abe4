"""The compiled cores: in use when built, and the Python sources pass the same tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from proxima import speedups

ROOT = Path(__file__).resolve().parent.parent
CORE_TESTS = [
    "tests/test_bundle.py",
    "tests/test_codec_paths.py",
    "tests/test_agent.py",
    "tests/test_tcpcl.py",
    "tests/test_framing.py",
    "tests/test_cgr.py",
    "tests/test_store.py",
    "tests/test_node.py",
    "tests/test_speedups.py::test_the_cores_in_use_follow_the_environment",
]


def test_the_cores_in_use_follow_the_environment() -> None:
    if os.environ.get("PROXIMA_PURE_PYTHON") == "1":
        assert speedups.summary() == "pure Python"
        assert not any(speedups.compiled().values())
    elif shutil.which("cc") or shutil.which("gcc"):
        assert speedups.summary() == "compiled", "the install did not build the compiled cores"
    assert speedups.stale() == []


def test_every_core_has_its_python_source() -> None:
    for name in speedups.COMPILED_CORES:
        assert (ROOT / "src" / (name.replace(".", "/") + ".py")).is_file(), name


def test_the_python_sources_of_the_cores_pass_the_core_tests() -> None:
    """The fallback (no C compiler) is the same code: run the cores' tests on the sources."""
    env = {**os.environ, "PROXIMA_PURE_PYTHON": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CORE_TESTS],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = done.stdout[-3000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert " passed" in done.stdout and "failed" not in done.stdout, tail
