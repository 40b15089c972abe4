"""``proxima keys`` and ``proxima verify``: crew signing keys, and checking a post or media file.

Module-level :class:`click` objects, registered lazily on the main group by :mod:`proxima.cli`.
Conventions as there: ``--help``, ``--json`` for machine output, exit 1 with one ``error: ...``
line on stderr for bad input or a failed verification, 2 for a usage error.

**keys new** writes ``NAME.key`` (mode 0600) and ``NAME.pub`` into ``--out`` and prints the key's
fingerprint and the line to add to a TOML keyring.

**verify** checks a signed post (``--post``, as the node received it or the site published it)
against a keyring (``--keyring``: a directory of ``NAME.pub`` files or a TOML file), then, if given,
a media file (``FILE``) against the hash the crew signed: the file named ``--name``, else the
listed file with FILE's name, else any listed file with FILE's hash. ``--code`` also checks the
verification code published with the post. Prints ``authentic: signed by NAME on DATE`` (UTC).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from proxima.cli_support import fail, guard
from proxima.errors import VerificationError

__all__ = ["keys", "verify"]

_DTN_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_SETTINGS = {"help_option_names": ["-h", "--help"]}


def _date(dtn_ms: int) -> str:
    """A DTN time in milliseconds as UTC ISO 8601, to the second."""
    try:
        when = _DTN_EPOCH + timedelta(milliseconds=dtn_ms)
    except OverflowError:
        return f"DTN time {dtn_ms} ms"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group("keys", context_settings=_SETTINGS)
def keys() -> None:
    """Crew signing keys (Ed25519).

    Each post is signed on board with its crew member's private key and checked on the ground
    against a keyring of public keys.
    """


@keys.command("new", context_settings=_SETTINGS)
@click.option("--name", required=True, help="Crew member or persona the key signs for (thomas, philae).")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory to write into."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guard
def keys_new(name: str, out_dir: str, as_json: bool) -> None:
    """Generate a key pair: NAME.key (private, mode 0600) and NAME.pub in --out."""
    from proxima.runtime.keys import new_key_pair, public_key_text

    pair = new_key_pair(name, out_dir)
    public = public_key_text(pair.public_key)
    if as_json:
        doc = {
            "name": pair.name,
            "private_key": str(pair.private_path),
            "public_key": str(pair.public_path),
            "key_id": pair.key_id,
            "public_key_base64": public,
        }
        click.echo(json.dumps(doc))
        return
    click.echo(f"private key: {pair.private_path} (keep it on board, mode 0600)")
    click.echo(f"public key:  {pair.public_path} ({pair.key_id})")
    click.echo(f'keyring line: {pair.name} = "{public}"')


@click.command("verify", context_settings=_SETTINGS)
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--post", "post_file", required=True, type=click.Path(dir_okay=False), help="The signed post file."
)
@click.option("--keyring", required=True, type=click.Path(), help="Directory of NAME.pub files, or TOML.")
@click.option("--name", default=None, help="The media file's name in the post (default: FILE's name).")
@click.option("--code", default=None, help="Also check the verification code published with the post.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guard
def verify(
    file: str | None, post_file: str, keyring: str, name: str | None, code: str | None, as_json: bool
) -> None:
    """Check a signed post, and media FILE, against the crew keyring."""
    from proxima.outreach.provenance import (
        decode_signed_post,
        verify_media,
        verify_post,
        verify_published,
    )
    from proxima.runtime.keys import load_keyring

    public_keys = load_keyring(keyring)
    signed = decode_signed_post(Path(post_file).read_bytes())
    media = None if file is None else Path(file).read_bytes()
    doc: dict[str, Any] = {"authentic": False, "post": None, "signer": None, "media": None}
    try:
        if code is not None:
            verified, _ = verify_published(code, signed, public_keys)
        else:
            verified = verify_post(signed, public_keys)
        doc.update(post=verified.post.id, signer=verified.signer, key_id=verified.key_id, code=verified.code)
        ref = None
        if media is not None and file is not None:
            listed = name if name is not None else Path(file).name
            if name is None and verified.post.media_named(listed) is None:
                ref = verify_media(media, verified, None)
            else:
                ref = verify_media(media, verified, listed)
            doc["media"] = {"name": ref.name, "sha256": ref.sha256_hex, "size": ref.size}
    except VerificationError as exc:
        if as_json:
            click.echo(json.dumps({**doc, "failure": exc.failure, "reason": str(exc)}))
        fail(f"not authentic: {exc}")
    doc["authentic"] = True
    when = _date(verified.post.created_ms)
    if as_json:
        click.echo(json.dumps({**doc, "created": when}))
        return
    what = f"{ref.name} in post {verified.post.id}" if ref is not None else f"post {verified.post.id}"
    click.echo(f"authentic: signed by {verified.signer} on {when} ({what}, code {verified.code})")
