"""The ``proxima`` command line.

Conventions: ``--help`` on every command, ``--json`` for machine output, exit status 0 on
success, 1 with a one-line ``error: ...`` on stderr when the input or the request is wrong, and
2 for a usage error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import click

from proxima import __version__
from proxima.bpv7 import (
    EID,
    Bundle,
    CanonicalBlock,
    PrimaryBlock,
    age_block,
    bundle_to_json,
    decode_bundle,
    encode_bundle,
    hop_count_block,
    payload_block,
)
from proxima.bpv7.bpsec import check_security
from proxima.cli_support import fail, guard
from proxima.client import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    PingReply,
    Received,
    format_address,
    parse_address,
    ping_sync,
    recv_sync,
    send_file_sync,
    send_sync,
    status_sync,
)
from proxima.errors import CRCError, LocalError, ProximaError

if TYPE_CHECKING:

    from proxima.runtime.config import NodeConfig

DTN_EPOCH_UNIX: int = 946_684_800
"""2000-01-01T00:00:00Z, the DTN epoch (RFC 9171 §4.2.6), in Unix seconds."""

_CRC_CHOICES = {"none": 0, "16": 1, "32": 2}
_U64 = (1 << 64) - 1


def dtn_now_ms() -> int:
    """The current DTN time: milliseconds since 2000-01-01T00:00:00Z."""
    return time.time_ns() // 1_000_000 - DTN_EPOCH_UNIX * 1000


def _eid(value: str, option: str) -> EID:
    try:
        return EID.parse(value)
    except ProximaError as exc:
        fail(f"{option}: {exc}")


class _LazyGroup(click.Group):
    """A group whose orbit commands are imported when used: ``proxima send`` need not load numpy."""

    lazy: ClassVar[dict[str, str]] = {
        "where": "proxima.cli_sky:where",
        "passes": "proxima.cli_sky:passes",
        "overflights": "proxima.cli_links:overflights",
        "links": "proxima.cli_links:links",
        "plan": "proxima.cli_routing:plan",
        "route": "proxima.cli_routing:route",
        "simulate": "proxima.cli_sim:simulate",
        "keys": "proxima.cli_outreach:keys",
        "verify": "proxima.cli_outreach:verify",
        "ground": "proxima.cli_ground:ground",
        "login": "proxima.cli_ground:login",
        "review": "proxima.cli_ground:review",
        "calendar": "proxima.cli_ground:calendar",
        "questions": "proxima.cli_ground:questions",
        "crew": "proxima.cli_ground:crew",
        "web": "proxima.cli_ground:web",
        "demo": "proxima.cli_demo:demo",
        "report": "proxima.cli_analytics:report",
        "analytics": "proxima.cli_analytics:analytics",
    }

    def _available(self) -> dict[str, str]:
        import importlib.util

        return {
            name: target
            for name, target in self.lazy.items()
            if importlib.util.find_spec(target.split(":")[0]) is not None
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._available()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        target = self._available().get(cmd_name) if command is None else None
        if target is None:
            return command
        import importlib

        module, name = target.split(":")
        found = getattr(importlib.import_module(module), name)
        if not isinstance(found, click.Command):  # pragma: no cover - a packaging mistake
            raise TypeError(f"{target} is not a click command")
        return found


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="proxima")
def main() -> None:
    """Proxima: post to social networks from orbit over a delay-tolerant network."""


@main.group()
def bundle() -> None:
    """Encode and decode Bundle Protocol v7 bundles (RFC 9171)."""


@bundle.command("encode")
@click.option("--source", required=True, help="Source node endpoint ID (dtn://node/x, ipn:N.S, dtn:none).")
@click.option("--destination", required=True, help="Destination endpoint ID.")
@click.option("--report-to", default="dtn:none", show_default=True, help="Report-to endpoint ID.")
@click.option(
    "--lifetime",
    type=click.IntRange(0, _U64 // 1000),
    default=86_400,
    show_default=True,
    help="Lifetime in seconds.",
)
@click.option(
    "--created",
    type=click.IntRange(0, _U64),
    default=None,
    help="Creation time in DTN ms (since 2000-01-01Z); default now. 0 adds a bundle age block.",
)
@click.option("--sequence", type=click.IntRange(0, _U64), default=0, show_default=True)
@click.option(
    "--crc",
    type=click.Choice(list(_CRC_CHOICES)),
    default="32",
    show_default=True,
    help="CRC on every block: none, CRC-16/X-25 or CRC-32C.",
)
@click.option("--hop-limit", type=click.IntRange(1, 255), default=None, help="Add a hop count block.")
@click.option(
    "--age",
    type=click.IntRange(0, _U64),
    default=None,
    help="Add a bundle age block (ms); implied by --created 0.",
)
@click.option("--payload", default=None, help="Payload text (UTF-8).")
@click.option(
    "--payload-file", type=click.Path(dir_okay=False, allow_dash=True), default=None, help="Payload file."
)
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True), default="-", help="Output file.")
@click.option("--hex", "as_hex", is_flag=True, help="Write the bundle as hexadecimal text.")
@guard
def bundle_encode(
    source: str,
    destination: str,
    report_to: str,
    lifetime: int,
    created: int | None,
    sequence: int,
    crc: str,
    hop_limit: int | None,
    age: int | None,
    payload: str | None,
    payload_file: str | None,
    out: str,
    as_hex: bool,
) -> None:
    """Write one bundle."""
    if (payload is None) == (payload_file is None):
        fail("give exactly one of --payload and --payload-file", 2)
    if payload is not None:
        data = os.fsencode(payload)
    elif payload_file == "-":
        data = sys.stdin.buffer.read()
    else:
        data = Path(str(payload_file)).read_bytes()
    crc_type = _CRC_CHOICES[crc]
    creation = dtn_now_ms() if created is None else created
    src = _eid(source, "--source")
    flags = 0x4 if src.is_none else 0
    primary = PrimaryBlock(
        destination=_eid(destination, "--destination"),
        source=src,
        report_to=_eid(report_to, "--report-to"),
        creation_time=creation,
        sequence=sequence,
        lifetime=lifetime * 1000,
        flags=flags,
        crc_type=crc_type,
    )
    blocks: list[CanonicalBlock] = []
    number = 2
    if hop_limit is not None:
        blocks.append(hop_count_block(hop_limit, 0, number=number, crc_type=crc_type))
        number += 1
    if age is not None or creation == 0:
        blocks.append(age_block(age or 0, number=number, crc_type=crc_type))
        number += 1
    blocks.append(payload_block(data, crc_type=crc_type))
    encoded = encode_bundle(Bundle(primary, tuple(blocks)))
    output = (encoded.hex() + "\n").encode("ascii") if as_hex else encoded
    if out == "-":
        sys.stdout.buffer.write(output)
        sys.stdout.buffer.flush()
    else:
        Path(out).write_bytes(output)


@bundle.command("decode")
@click.argument("file", required=False, default="-", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--hex", "as_hex", is_flag=True, help="The input is hexadecimal text.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--strict",
    is_flag=True,
    help="Also require a primary block CRC unless a BIB covers it (RFC 9171 §4.3.1).",
)
@guard
def bundle_decode(file: str, as_hex: bool, as_json: bool, strict: bool) -> None:
    """Check and describe one bundle (from FILE, or standard input)."""
    raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    if as_hex:
        text = b"".join(raw.split())
        try:
            raw = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise LocalError(f"input is not hexadecimal text: {exc}") from exc
    try:
        decoded = decode_bundle(raw, require_primary_crc=strict)
        check_security(decoded)
    except ProximaError as exc:
        if as_json:
            err = {
                "valid": False,
                "error": str(exc),
                "reason": exc.reason,
                "block": getattr(exc, "block", None),
                "crc_ok": False if isinstance(exc, CRCError) else None,
            }
            click.echo(json.dumps(err))
        raise
    description = {"valid": True, **bundle_to_json(decoded)}
    if as_json:
        click.echo(json.dumps(description))
        return
    p = description["primary"]
    click.echo(f"bundle {p['source']} -> {p['destination']} (report to {p['report_to']})")
    click.echo(
        f"  created {p['creation_time']} seq {p['sequence']}, lifetime {p['lifetime']} ms, "
        f"flags 0x{p['flags']:x}, CRC type {p['crc_type']}"
    )
    if p["fragment_offset"] is not None:
        click.echo(f"  fragment at {p['fragment_offset']} of {p['total_adu_length']}")
    for b in description["blocks"]:
        click.echo(
            f"  block {b['number']}: type {b['type']} ({b['type_name']}), flags 0x{b['flags']:x}, "
            f"CRC type {b['crc_type']}, {b['length']} bytes"
        )
    with_crc = int(p["crc_type"] != 0) + sum(1 for b in description["blocks"] if b["crc_type"])
    click.echo(f"  valid; {with_crc} CRC{'s' if with_crc != 1 else ''} verified")


# -- the node and its applications -----------------------------------------------------------------


def _node_address(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, int]:
    try:
        return parse_address(value)
    except LocalError as exc:
        raise click.BadParameter(str(exc)) from exc


_node_option = click.option(
    "--node",
    "node",
    default=format_address(DEFAULT_HOST, DEFAULT_PORT),
    show_default=True,
    envvar="PROXIMA_NODE",
    callback=_node_address,
    help="HOST:PORT of the node's application interface (or $PROXIMA_NODE).",
)


@main.group("node")
def node_group() -> None:
    """Run a DTN node, or ask a running one how it is doing."""


@node_group.command("run")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The node's TOML configuration file.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    envvar="PROXIMA_LOG_LEVEL",
    help="Least severe log messages written to stderr (or $PROXIMA_LOG_LEVEL).",
)
@guard
def node_run(config_path: str, log_level: str) -> None:
    """Run a node until SIGINT or SIGTERM, then stop it cleanly."""
    import logging

    from proxima.runtime.config import load_config
    from proxima.runtime.node import tune_gc

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    config = load_config(config_path)
    tune_gc()
    asyncio.run(_run_node(config))


async def _run_node(config: NodeConfig) -> None:
    from proxima.runtime.appif import AppInterface
    from proxima.runtime.node import Node

    node = Node(config)
    app = AppInterface(node, config.app.host, config.app.port)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)
    try:
        try:
            await node.start()
            await app.start()
            listeners = [f"{lc.cla} on {format_address(lc.host, lc.port)}" for lc in config.listen]
            click.echo(
                f"node {config.node_id} running: application interface on {format_address(*app.address)}"
                f"{''.join(', ' + x for x in listeners)}; store {config.store_path}"
            )
            sys.stdout.flush()
            stop = asyncio.create_task(stopping.wait())
            failed = asyncio.create_task(node.failed.wait())
            await asyncio.wait({stop, failed}, return_when=asyncio.FIRST_COMPLETED)
            for task in (stop, failed):
                task.cancel()
        finally:
            await app.stop()
            with contextlib.suppress(ProximaError):
                await node.stop()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    if node.failure is not None:
        fail(f"node {config.node_id} stopped: {node.failure}; start it again, it resumes from its store")
    click.echo(f"node {config.node_id} stopped")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@node_group.command("status")
@_node_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guard
def node_status(node: tuple[str, int], as_json: bool) -> None:
    """Counters, stored bundles, links and sessions of a running node."""
    status = status_sync(*node)
    if as_json:
        click.echo(json.dumps(status))
        return
    stored = status.get("stored", {})
    by_state = ", ".join(f"{k} {v}" for k, v in sorted(stored.get("by_state", {}).items()))
    click.echo(f"node {status.get('node_id')}, up {status.get('uptime_ms', 0) / 1000:.1f} s")
    click.echo(
        f"  stored: {_plural(stored.get('bundles', 0), 'bundle')}, {stored.get('bytes', 0)} bytes"
        + (f" ({by_state})" if by_state else "")
    )
    click.echo(f"  held by the agent: {status.get('held_by_agent', 0)}")
    waiting = status.get("deliveries_waiting", {})
    click.echo(
        "  waiting for applications: "
        + (", ".join(f"{e} {n}" for e, n in sorted(waiting.items())) if waiting else "none")
    )
    links = status.get("links_up", {})
    click.echo(
        "  links up: " + (", ".join(f"{k} {v}" for k, v in sorted(links.items())) if links else "none")
    )
    opened = status.get("links_opened", {})
    if opened:
        click.echo("  sessions opened: " + ", ".join(f"{k} {v}" for k, v in sorted(opened.items())))
    peers = status.get("peers_up", [])
    click.echo("  peers up: " + (", ".join(peers) if peers else "none"))
    counters = status.get("counters", {})
    click.echo("  counters: " + ", ".join(f"{k} {v}" for k, v in counters.items()))
    app = status.get("app")
    if app:
        clients = app.get("clients", 0)
        click.echo(
            f"  application interface: {format_address(app['host'], app['port'])}, "
            f"{clients} client{'s' if clients != 1 else ''}; echo {app.get('echo_endpoint')}"
        )
    runtime = status.get("runtime")
    if runtime:
        thresholds = "/".join(str(t) for t in runtime.get("gc_thresholds", ()))
        click.echo(f"  protocol cores: {runtime.get('cores')}; collector thresholds {thresholds}")


@main.command("send")
@_node_option
@click.option("--to", "to", required=True, help="Destination endpoint ID.")
@click.option("--payload", default=None, help="Payload text (UTF-8).")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Payload file (- stdin).",
)
@click.option(
    "--lifetime",
    type=click.FloatRange(0, 10 * 365 * 86_400, min_open=True),
    default=None,
    help="Lifetime in seconds (default: one day).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guard
def send_command(
    node: tuple[str, int],
    to: str,
    payload: str | None,
    file: str | None,
    lifetime: float | None,
    as_json: bool,
) -> None:
    """Send one bundle through a running node; returns once the node has stored it."""
    if (payload is None) == (file is None):
        fail("give exactly one of --payload and --file", 2)
    destination = _eid(to, "--to")
    if payload is not None or file == "-":
        data = os.fsencode(payload) if payload is not None else sys.stdin.buffer.read()
        size = len(data)
        sent = send_sync(*node, destination, data, lifetime=lifetime)
    else:
        # The node reads the file itself: a large one never passes through this process.
        path = Path(str(file))
        try:
            size = path.stat().st_size
        except OSError as exc:
            fail(f"--file: {path}: {exc.strerror}")
        sent = send_file_sync(*node, destination, path, lifetime=lifetime)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "to": str(destination),
                    "source": sent.source,
                    "creation_time": sent.creation_time,
                    "sequence": sent.sequence,
                    "bytes": size,
                }
            )
        )
    else:
        click.echo(
            f"sent {size} bytes to {destination} "
            f"(bundle {sent.source} {sent.creation_time}.{sent.sequence}, stored by the node)"
        )


@main.command("recv")
@_node_option
@click.option("--endpoint", required=True, help="The endpoint ID to receive on (registered if need be).")
@click.option(
    "--count", type=click.IntRange(0), default=1, show_default=True, help="Bundles to wait for; 0: no limit."
)
@click.option(
    "--timeout", type=click.FloatRange(0), default=None, help="Seconds to wait in all (default: for ever)."
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write each payload to a file here (named SOURCE-CREATED-SEQ.bin) instead of printing it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per bundle.")
@guard
def recv_command(
    node: tuple[str, int],
    endpoint: str,
    count: int,
    timeout: float | None,
    out_dir: str | None,
    as_json: bool,
) -> None:
    """Receive bundles for an endpoint: print their payloads, or write them to files."""
    eid = _eid(endpoint, "--endpoint")
    directory = None if out_dir is None else Path(out_dir).resolve()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)

    def show(b: Received) -> None:
        path = None if b.file is None else Path(b.file)  # written there by the node itself
        size = len(b.payload) if path is None else path.stat().st_size
        if as_json:
            doc: dict[str, Any] = {
                "endpoint": b.endpoint,
                "source": b.source,
                "destination": b.destination,
                "creation_time": b.creation_time,
                "sequence": b.sequence,
                "lifetime_ms": b.lifetime_ms,
                "bytes": size,
            }
            if path is not None:
                doc["file"] = str(path)
            else:
                doc["payload"] = base64.b64encode(b.payload).decode("ascii")
                try:
                    doc["text"] = b.payload.decode("utf-8")
                except UnicodeDecodeError:
                    doc["text"] = None
            click.echo(json.dumps(doc))
        elif path is not None:
            click.echo(str(path))
        else:
            click.echo(b.payload)
        sys.stdout.flush()

    got = recv_sync(*node, eid, count, timeout, on_bundle=show, save_dir=directory)
    if count and len(got) < count:
        wanted = f"received {len(got)} of {count} bundle{'s' if count != 1 else ''}"
        fail(
            f"timed out after {timeout:g} s: {wanted}" if timeout is not None else f"the node ended: {wanted}"
        )


@main.command("ping")
@click.argument("target", metavar="EID")
@_node_option
@click.option(
    "--count", type=click.IntRange(1, 100_000), default=4, show_default=True, help="Bundles to send."
)
@click.option(
    "--size", type=click.IntRange(16, 16 * 1024 * 1024), default=64, show_default=True, help="Payload bytes."
)
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each reply.",
)
@click.option(
    "--interval", type=click.FloatRange(0), default=1.0, show_default=True, help="Seconds between bundles."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
@guard
def ping_command(
    target: str, node: tuple[str, int], count: int, size: int, timeout: float, interval: float, as_json: bool
) -> None:
    """Measure round trips to the echo endpoint of the node owning EID (ipn:N.2047, dtn://N/echo)."""
    from proxima.runtime.appif import echo_endpoint

    eid = _eid(target, "EID")
    try:
        echo = echo_endpoint(eid)
    except ProximaError as exc:
        fail(f"EID: {exc}")

    def show(r: PingReply) -> None:
        if r.rtt_ms is None:
            click.echo(f"no reply for seq={r.seq} within {timeout:g} s")
        else:
            click.echo(f"{r.size} bytes from {r.source or echo}: seq={r.seq} time={r.rtt_ms:.3f} ms")
        sys.stdout.flush()

    if not as_json:
        click.echo(f"PING {eid} ({echo}): {size}-byte bundles")
    result = ping_sync(
        *node,
        eid,
        count=count,
        size=size,
        timeout=timeout,
        interval=interval,
        on_reply=None if as_json else show,
    )
    stats = result.stats()
    if as_json:
        doc = {
            "to": str(eid),
            "echo": result.to,
            "size": size,
            "sent": result.sent,
            "received": result.received,
            "loss_percent": round(result.loss, 3),
            "rtts_ms": result.rtts_ms,
            **stats,
        }
        click.echo(json.dumps(doc))
    else:
        click.echo(f"--- {eid} ping statistics ---")
        click.echo(
            f"{_plural(result.sent, 'bundle')} sent, {result.received} received, {result.loss:.0f}% loss"
        )
        if result.received:
            click.echo(
                "rtt min/avg/max/p50/p99 = "
                + "/".join(f"{stats[k]:.3f}" for k in ("min_ms", "avg_ms", "max_ms", "p50_ms", "p99_ms"))
                + " ms"
            )
    if not result.received:
        fail(f"no reply from {eid}")
