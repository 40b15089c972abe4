"""Run one node from a configuration file until killed (used by the crash-safety test)."""

from __future__ import annotations

import asyncio
import sys

from proxima.runtime.config import load_config
from proxima.runtime.node import Node


async def main(path: str) -> None:
    node = Node(load_config(path))
    await node.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
