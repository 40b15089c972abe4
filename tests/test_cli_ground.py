"""The ground commands: `ground account`, `ground run` (a real process), `login`, `review`, `calendar`,
`questions`, and the crew's commands' failures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from click.testing import CliRunner

from ground_helpers import PASSWORD, Crew
from proxima.cli import main
from proxima.ground.config import load_ground_config
from proxima.ground.runner import GroundRunner
from proxima.runtime.keys import save_public_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ground(tmp_path: Path) -> Iterator[tuple[str, Path, Crew]]:
    """A ground service started with `proxima ground run` in its own process."""
    crew = Crew()
    (tmp_path / "keys").mkdir()
    save_public_key(crew.key.public_key(), tmp_path / "keys" / "thomas.pub")
    port = _port()
    config = tmp_path / "ground.toml"
    config.write_text(
        f'database = "sqlite:///ground.db"\nkeyring = "keys"\n[http]\nport = {port}\n'
        '[[channel]]\nkind = "atom"\n[[slot]]\nchannel = "atom"\ntime = "09:30"\ntz = "Europe/Paris"\n'
    )
    runner = CliRunner()
    for handle, role in (("anne", "editor"), ("marc", "approver")):
        r = runner.invoke(
            main,
            ["ground", "account", "--config", str(config), "--handle", handle, "--name", handle.title(),
             "--role", role, "--password-stdin"],
            input=PASSWORD + "\n",
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        assert f"created {handle}" in r.output
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxima", "ground", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    server = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{server}/api/timeline", timeout=2)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        proc.stderr.read().decode() if proc.stderr else "did not start"
                    ) from None
                time.sleep(0.1)
        yield server, config, crew
    finally:
        proc.terminate()
        proc.wait(30)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_review_through_the_command_line(ground: tuple[str, Path, Crew]) -> None:
    server, config, crew = ground
    post, signed, _ = crew.post(created=datetime.now(UTC))
    # The post arrives (as the DTN endpoint would hand it over) in the same database.
    svc = GroundRunner(load_ground_config(config)).open()
    svc.receive_post(signed, source=None, now=datetime.now(UTC))

    runner = CliRunner(env={"PROXIMA_GROUND": server})
    tokens = {}
    for handle in ("anne", "marc"):
        r = runner.invoke(main, ["login", "--handle", handle, "--password-stdin"], input=PASSWORD + "\n")
        assert r.exit_code == 0, r.output
        tokens[handle] = r.output.strip()
    anne = {"PROXIMA_TOKEN": tokens["anne"]}
    marc = {"PROXIMA_TOKEN": tokens["marc"]}

    r = runner.invoke(main, ["review", "list", "--json"], env=anne)
    assert r.exit_code == 0, r.output
    assert [p["id"] for p in json.loads(r.output)] == [post.id]
    r = runner.invoke(
        main, ["review", "edit", post.id, "--text", "en=Hello from orbit", "--text", "fr=Bonjour"], env=anne
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["review", "approve", post.id], env=anne)
    assert r.exit_code == 1 and r.output.startswith("error: ") and "approver" in r.output
    r = runner.invoke(main, ["review", "approve", post.id], env=marc)
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["review", "schedule", post.id, "--at", "not a time"], env=anne)
    assert r.exit_code == 1 and "ISO 8601" in r.output
    r = runner.invoke(main, ["review", "schedule", post.id], env=anne)  # the next free slot
    assert r.exit_code == 0, r.output
    assert "scheduled" in r.output and ":30:00+00:00" in r.output
    r = runner.invoke(main, ["review", "show", post.id, "--json"], env=anne)
    shown = json.loads(r.output)
    assert [v["editor"] for v in shown["versions"]] == [None, "anne"]
    r = runner.invoke(main, ["calendar", "--json"], env=anne)
    items = json.loads(r.output)["items"]
    assert any(i["kind"] == "post" and i["post"] == post.id for i in items)
    r = runner.invoke(main, ["review", "list"], env={"PROXIMA_TOKEN": "prx_wrong"})
    assert r.exit_code == 1 and "unknown or revoked API token" in r.output
    day = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    r = runner.invoke(main, ["calendar", "--from", f"{day}T00:00Z", "--to", f"{day}T00:00Z"], env=anne)
    assert r.exit_code == 1 and "'to' must come after 'from'" in r.output


def test_questions_through_the_command_line(ground: tuple[str, Path, Crew]) -> None:
    server, _, _ = ground
    q = httpx.post(f"{server}/api/questions", json={"text": "Que mangez-vous ?", "lang": "fr"}).json()
    runner = CliRunner(env={"PROXIMA_GROUND": server})
    token = runner.invoke(
        main, ["login", "--handle", "anne", "--password-stdin"], input=PASSWORD + "\n"
    ).output
    env = {"PROXIMA_TOKEN": token.strip()}
    r = runner.invoke(main, ["questions", "list"], env=env)
    assert r.exit_code == 0 and q["id"] in r.output and "submitted" in r.output
    r = runner.invoke(main, ["questions", "moderate", q["id"], "--approve"], env=env)
    assert r.exit_code == 0 and "approved" in r.output
    r = runner.invoke(main, ["questions", "select", q["id"]], env=env)
    assert r.exit_code == 1 and "no crew endpoint" in r.output  # this service has no [dtn] table


def test_crew_commands_fail_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "thomas.key"
    r = runner.invoke(main, ["crew", "post", "Bonjour", "--key", str(key), "--log", str(tmp_path / "c.db")])
    assert r.exit_code == 1 and r.output.startswith("error: ") and "thomas.key" in r.output
    from proxima.runtime.keys import new_key_pair

    new_key_pair("thomas", tmp_path)
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    r = runner.invoke(
        main,
        ["crew", "post", "Bonjour", "--key", str(key), "--media", str(bad), "--log", str(tmp_path / "c.db"),
         "--node", f"127.0.0.1:{_port()}"],
    )  # fmt: skip
    assert r.exit_code == 1 and "not a photo, video or audio file" in r.output
    r = runner.invoke(
        main,
        [
            "crew",
            "post",
            "Bonjour",
            "--key",
            str(key),
            "--log",
            str(tmp_path / "c.db"),
            "--node",
            f"127.0.0.1:{_port()}",
        ],
    )
    assert r.exit_code == 1 and "cannot reach the node" in r.output
    r = runner.invoke(main, ["crew", "status", "--offline", "--json", "--log", str(tmp_path / "c.db")])
    assert r.exit_code == 0 and json.loads(r.output) == []
    for cmd in (
        ["ground", "--help"],
        ["review", "--help"],
        ["crew", "post", "--help"],
        ["calendar", "--help"],
    ):
        assert runner.invoke(main, cmd).exit_code == 0


def test_ground_run_refuses_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text('database = "sqlite:///g.db"\n[[channel]]\nkind = "myspace"\n')
    r = CliRunner().invoke(main, ["ground", "run", "--config", str(config)])
    assert r.exit_code == 1 and "'myspace' is not one of" in r.output
    assert os.path.exists(config)


def test_a_mission_clock_from_the_configuration(tmp_path: Path) -> None:
    from proxima.errors import ConfigError
    from proxima.ground.config import mission_clock

    config = tmp_path / "g.toml"
    config.write_text('[clock]\nstart = "2026-03-12T00:00:00Z"\nspeed = 3600.0\n')
    loaded = load_ground_config(config)
    clock = mission_clock(loaded)
    first = clock()
    time.sleep(0.05)
    later = clock()
    assert datetime(2026, 3, 12, tzinfo=UTC) <= first < datetime(2026, 3, 12, 0, 1, tzinfo=UTC)
    assert later - first >= timedelta(seconds=150)  # 50 ms at 3600 times real time
    config.write_text('[clock]\nstart = "2026-03-12T00:00:00"\n')
    with pytest.raises(ConfigError, match=r"clock\.start"):
        load_ground_config(config)
    config.write_text("[clock]\nspeed = 0\n")
    with pytest.raises(ConfigError, match=r"clock\.speed"):
        load_ground_config(config)


def test_network_and_smtp_tables(tmp_path: Path) -> None:
    from proxima.errors import ConfigError

    config = tmp_path / "g.toml"
    config.write_text(
        '[network]\nplan = "plan.rc"\nepoch = "2026-03-11T00:00:00Z"\n'
        'nodes = [{ name = "ISS", node = "127.0.0.1:4243", ipn = 1 }]\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 2525\nsender = "alerts@proxima.example"\n'
    )
    loaded = load_ground_config(config)
    assert loaded.network is not None and loaded.network.nodes[0].ipn == 1
    assert loaded.network.plan == tmp_path.resolve() / "plan.rc"
    assert loaded.smtp == {"host": "127.0.0.1", "port": 2525, "sender": "alerts@proxima.example"}
    config.write_text("[smtp]\nport = \"25\"\n")
    with pytest.raises(ConfigError, match=r"smtp.port: must be int"):
        load_ground_config(config)
    config.write_text('[network]\nplan_format = "csv"\n')
    with pytest.raises(ConfigError, match="plan_format"):
        load_ground_config(config)
