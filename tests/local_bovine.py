"""A real ActivityPub server on loopback: bovine-herd, in a child process, with one local actor.

Run as a script it serves bovine-herd (Quart, through uvicorn) on ``127.0.0.1`` at an ephemeral
port over plain http: bovine takes a domain of the form ``http://host:port`` for exactly this
("useful for end to end tests", as ``BovineAdminStore`` says), so every URL it makes is http.
It registers the actor ``moocow`` and adds a few ``/_test`` routes a test drives it with:

* ``POST /_test/follow`` ``{"object": actor_url}``: moocow sends a ``Follow`` through its own
  outbox processing (stored, then delivered signed to the followed actor's inbox);
* ``GET /_test/following``: the ids in moocow's ``following`` collection;
* ``GET /_test/inbox``: the objects in moocow's inbox collection, as bovine stored them;
* ``GET /_test/object?id=...``: one stored object.

:func:`start_bovine` starts the child and waits until it answers; the first line the child
prints gives its base URL and the actor's id. bovine tries to fetch JSON-LD contexts other than
ActivityStreams from the network; without network it falls back to an empty context, so the
child's working directory (where bovine keeps its JSON-LD cache) is a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True)
class Bovine:
    """A running bovine-herd: its base URL and its actor's id."""

    base: str
    actor: str
    process: subprocess.Popen[str]

    async def get(self, path: str, **params: str) -> Any:
        """GET one of the ``/_test`` routes, as JSON (async: bovine may call back into our loop)."""
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            response = await client.get(f"{self.base}{path}", params=params)
        response.raise_for_status()
        return response.json()

    async def post(self, path: str, data: dict[str, Any]) -> Any:
        """POST JSON to one of the ``/_test`` routes."""
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            response = await client.post(f"{self.base}{path}", json=data)
        response.raise_for_status()
        return response.json()


@contextlib.contextmanager
def start_bovine(workdir: Path, timeout: float = 60.0) -> Iterator[Bovine]:
    """Run bovine-herd in a child process with ``workdir`` as its directory; stop it afterwards."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "NO_PROXY": "*"}
    with open(workdir / "bovine.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(workdir)],
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"bovine did not start: {(workdir / 'bovine.log').read_text()[-3000:]}")
        info = json.loads(line)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if (
                    httpx.get(f"{info['base']}/.well-known/nodeinfo", timeout=5, trust_env=False).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"bovine does not answer: {(workdir / 'bovine.log').read_text()[-3000:]}")
            time.sleep(0.1)
        yield Bovine(base=info["base"], actor=info["actor"], process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


# -- the child ---------------------------------------------------------------------------------


def _serve(workdir: Path) -> None:
    import uvicorn
    from bovine_herd import BovineHerd
    from bovine_process import handle_outbox_item, process_outbox_item
    from bovine_process.types import ProcessingItem
    from bovine_store import BovineAdminStore
    from bovine_store.models import BovineActor, CollectionItem, StoredJsonObject
    from quart import Quart, current_app, request

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"

    app = Quart(__name__)
    BovineHerd(app, db_url=f"sqlite://{workdir / 'bovine.sqlite3'}")
    state: dict[str, Any] = {}

    @app.before_serving
    async def register() -> None:
        admin = BovineAdminStore(domain=base)
        name = await admin.register("moocow")
        actor = await admin.actor_for_name(name)
        assert actor is not None
        state["name"] = name
        state["actor"] = actor.actor_object.id
        print(json.dumps({"base": base, "actor": state["actor"]}), flush=True)

    async def moocow() -> Any:
        actor = await current_app.config["bovine_store"].actor_for_name(state["name"])
        assert actor is not None
        return actor

    @app.post("/_test/follow")
    async def follow() -> Any:
        target = (await request.get_json())["object"]
        actor = await moocow()
        item = ProcessingItem(
            state["actor"],
            {
                "@context": "https://www.w3.org/ns/activitystreams",
                "type": "Follow",
                "actor": state["actor"],
                "object": target,
                "to": [target],
            },
        )
        item = await handle_outbox_item(item, actor)
        await process_outbox_item(item, actor)
        return {"id": item.data.get("id")}

    @app.get("/_test/following")
    async def following() -> Any:
        actor = await moocow()
        rows = await CollectionItem.filter(part_of=actor.actor_object.following).all()
        return {"items": [row.object_id for row in rows]}

    @app.get("/_test/inbox")
    async def inbox() -> Any:
        actor = await moocow()
        rows = await CollectionItem.filter(part_of=actor.actor_object.inbox).order_by("id").all()
        items = []
        for row in rows:
            stored = await StoredJsonObject.get_or_none(id=row.object_id)
            items.append(stored.content if stored is not None else {"id": row.object_id})
        return {"items": items}

    @app.get("/_test/object")
    async def stored_object() -> Any:
        stored = await StoredJsonObject.get_or_none(id=request.args["id"])
        if stored is None:
            return {"error": "not found"}, 404
        return stored.content

    @app.get("/_test/actors")
    async def actors() -> Any:
        return {"names": [a.bovine_name for a in await BovineActor.all()]}

    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
