"""The ``proxima`` command line.

Conventions: ``--help`` on every command, ``--json`` for machine output, exit status 0 on
success, 1 with a one-line ``error: ...`` on stderr when the input or the request is wrong, and
2 for a usage error.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

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
from proxima.errors import CRCError, LocalError, ProximaError

if TYPE_CHECKING:
    from collections.abc import Callable

DTN_EPOCH_UNIX: int = 946_684_800
"""2000-01-01T00:00:00Z, the DTN epoch (RFC 9171 §4.2.6), in Unix seconds."""

_CRC_CHOICES = {"none": 0, "16": 1, "32": 2}
_U64 = (1 << 64) - 1


def dtn_now_ms() -> int:
    """The current DTN time: milliseconds since 2000-01-01T00:00:00Z."""
    return time.time_ns() // 1_000_000 - DTN_EPOCH_UNIX * 1000


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _eid(value: str, option: str) -> EID:
    try:
        return EID.parse(value)
    except ProximaError as exc:
        _fail(f"{option}: {exc}")


def _guard(func: Callable[..., None]) -> Callable[..., None]:
    """Turn Proxima's errors into a one-line message and exit status 1."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except ProximaError as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@_guard
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
        _fail("give exactly one of --payload and --payload-file", 2)
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
@_guard
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
