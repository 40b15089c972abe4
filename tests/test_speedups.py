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


def test_compiled_modules_no_build_makes_are_named_as_leftovers(tmp_path: Path) -> None:
    import importlib.machinery

    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    package = tmp_path / "proxima"
    (package / "runtime").mkdir(parents=True)
    for name in ("runtime/cla_drivers", "runtime/store", "bpv7_gone"):
        (package / f"{name}{suffix}").write_bytes(b"")
    (package / "runtime/cla_drivers.py").write_text("")
    (package / "runtime/store.py").write_text("")  # still compiled: not a leftover
    # bpv7_gone has no source: an extension of its own, nothing it hides.
    assert speedups.leftovers(package) == [package / f"runtime/cla_drivers{suffix}"]
    assert speedups.leftovers() == []  # this install has none


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
