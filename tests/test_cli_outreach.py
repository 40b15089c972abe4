"""``proxima keys new`` and ``proxima verify``, run as a user would run them."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from proxima.cli import main
from proxima.outreach.post import MediaRef, Post
from proxima.outreach.provenance import encode_signed_post, sign_post, verification_code
from proxima.runtime.keys import load_private_key

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20 + b"\xff\xd9"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxima", *args], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.fixture
def mission(tmp_path: Path) -> Path:
    """A keyring with thomas's key, a signed post with a photo, and the photo."""
    keys = tmp_path / "keys"
    result = CliRunner().invoke(main, ["keys", "new", "--name", "thomas", "--out", str(keys)])
    assert result.exit_code == 0, result.output
    post = Post(
        id="2017-01-13-eva",
        author="thomas",
        created_ms=537_624_000_000,
        text={"fr": "Sortie extravéhiculaire terminée !"},
        media=[MediaRef.for_bytes("selfie.jpg", "image/jpeg", PHOTO, {"fr": "Thomas en scaphandre"})],
    )
    signed = sign_post(post, load_private_key(keys / "thomas.key"))
    (tmp_path / "post.cbor").write_bytes(encode_signed_post(signed))
    (tmp_path / "selfie.jpg").write_bytes(PHOTO)
    (tmp_path / "code.txt").write_text(verification_code(signed))
    return tmp_path


def test_keys_new(tmp_path: Path) -> None:
    result = run("keys", "new", "--name", "philae", "--out", str(tmp_path / "k"))
    assert result.returncode == 0, result.stderr
    assert "philae.key" in result.stdout
    assert 'keyring line: philae = "' in result.stdout
    assert stat.S_IMODE((tmp_path / "k" / "philae.key").stat().st_mode) == 0o600
    again = run("keys", "new", "--name", "philae", "--out", str(tmp_path / "k"))
    assert again.returncode == 1
    assert again.stderr.startswith("error: ")
    assert "already exists" in again.stderr
    assert again.stderr.count("\n") == 1


def test_keys_new_json_and_bad_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["keys", "new", "--name", "oleg", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["name"] == "oleg"
    assert doc["key_id"].startswith("ed25519:")
    bad = CliRunner().invoke(main, ["keys", "new", "--name", "Oleg K", "--out", str(tmp_path)])
    assert bad.exit_code == 1
    assert "is not a name" in bad.output


def test_keys_listed_in_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "keys" in result.output
    assert "verify" in result.output
    assert CliRunner().invoke(main, ["keys", "--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["verify", "--help"]).exit_code == 0


def test_verify_authentic(mission: Path) -> None:
    result = run(
        "verify",
        str(mission / "selfie.jpg"),
        "--post",
        str(mission / "post.cbor"),
        "--keyring",
        str(mission / "keys"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("authentic: signed by thomas on 2017-01-13T12:00:00Z")
    assert "selfie.jpg in post 2017-01-13-eva" in result.stdout


def test_verify_post_only_with_code_json(mission: Path) -> None:
    code = (mission / "code.txt").read_text()
    result = CliRunner().invoke(
        main,
        [
            "verify",
            "--post",
            str(mission / "post.cbor"),
            "--keyring",
            str(mission / "keys"),
            "--code",
            code,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["authentic"] is True
    assert doc["signer"] == "thomas"
    assert doc["code"] == code
    assert doc["media"] is None
    assert doc["created"] == "2017-01-13T12:00:00Z"


def test_verify_fake_selfie(mission: Path) -> None:
    fake = bytearray(PHOTO)
    fake[1000] ^= 0x20
    (mission / "selfie.jpg").write_bytes(bytes(fake))
    args = ["verify", str(mission / "selfie.jpg"), "--post", str(mission / "post.cbor")]
    result = run(*args, "--keyring", str(mission / "keys"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "error: not authentic: the image differs from the one the crew signed: SHA-256"
    )
    assert result.stderr.count("\n") == 1
    as_json = CliRunner().invoke(main, [*args, "--keyring", str(mission / "keys"), "--json"])
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout.splitlines()[0])
    assert doc["authentic"] is False
    assert doc["failure"] == "media_mismatch"
    assert doc["signer"] == "thomas"


def test_verify_renamed_file_found_by_hash(mission: Path) -> None:
    copy = mission / "IMG_0001.jpg"
    copy.write_bytes(PHOTO)
    result = CliRunner().invoke(
        main, ["verify", str(copy), "--post", str(mission / "post.cbor"), "--keyring", str(mission / "keys")]
    )
    assert result.exit_code == 0, result.output
    assert "selfie.jpg in post" in result.output
    wrong = CliRunner().invoke(
        main,
        [
            "verify",
            str(copy),
            "--post",
            str(mission / "post.cbor"),
            "--keyring",
            str(mission / "keys"),
            "--name",
            "x.jpg",
        ],
    )
    assert wrong.exit_code == 1
    assert "media not listed" in wrong.output


def test_verify_unknown_signer(mission: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-keys"
    assert CliRunner().invoke(main, ["keys", "new", "--name", "oleg", "--out", str(other)]).exit_code == 0
    result = run("verify", "--post", str(mission / "post.cbor"), "--keyring", str(other))
    assert result.returncode == 1
    assert (
        result.stderr
        == "error: not authentic: unknown signer 'thomas': no such key in the keyring (known: oleg)\n"
    )


def test_verify_impostor_key(mission: Path, tmp_path: Path) -> None:
    """Someone else's key under thomas's name: the signature does not check."""
    impostor = tmp_path / "impostor"
    assert (
        CliRunner().invoke(main, ["keys", "new", "--name", "thomas", "--out", str(impostor)]).exit_code == 0
    )
    result = run("verify", "--post", str(mission / "post.cbor"), "--keyring", str(impostor))
    assert result.returncode == 1
    assert "bad signature" in result.stderr


def test_verify_wrong_code(mission: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "verify",
            "--post",
            str(mission / "post.cbor"),
            "--keyring",
            str(mission / "keys"),
            "--code",
            "AAAA-BBBB",
        ],
    )
    assert result.exit_code == 1
    assert "code mismatch" in result.output


def test_verify_bad_inputs(mission: Path) -> None:
    keyring = str(mission / "keys")
    missing = run("verify", "--post", str(mission / "nothing.cbor"), "--keyring", keyring)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ")
    assert "nothing.cbor" in missing.stderr
    (mission / "truncated.cbor").write_bytes((mission / "post.cbor").read_bytes()[:-5])
    cut = run("verify", "--post", str(mission / "truncated.cbor"), "--keyring", keyring)
    assert cut.returncode == 1
    assert "input ends inside the signed post" in cut.stderr
    no_ring = run("verify", "--post", str(mission / "post.cbor"), "--keyring", str(mission / "none.toml"))
    assert no_ring.returncode == 1
    assert "no such key file" in no_ring.stderr
    usage = run("verify", str(mission / "selfie.jpg"))
    assert usage.returncode == 2
