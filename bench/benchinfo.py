"""What every benchmark records about the machine its figures come from."""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Any

from proxima import speedups

__all__ = ["machine"]


def machine() -> dict[str, Any]:
    """The CPU model, the cores this process may use, and the Python and OS it runs on."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    return {
        "nproc": nproc,
        "cpu_model": model,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "proxima_cores": speedups.summary(),
    }
