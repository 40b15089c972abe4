"""The ``proxima bundle`` commands, run as a user would run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from proxima.bpv7 import decode_bundle, encode_bundle
from proxima.cli import main

ENCODE = ["bundle", "encode", "--source", "ipn:1.1", "--destination", "dtn://ground/posts"]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proxima", *args], input=stdin, capture_output=True, check=False, timeout=60
    )


def test_encode_then_decode_json() -> None:
    enc = run(
        *ENCODE, "--payload", "Bonjour", "--created", "780000000000", "--sequence", "4", "--hop-limit", "9"
    )
    assert enc.returncode == 0, enc.stderr
    out = run("bundle", "decode", "--json", stdin=enc.stdout)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["primary"] == {
        "version": 7,
        "flags": 0,
        "crc_type": 2,
        "destination": "dtn://ground/posts",
        "source": "ipn:1.1",
        "report_to": "dtn:none",
        "creation_time": 780000000000,
        "sequence": 4,
        "lifetime": 86400000,
        "fragment_offset": None,
        "total_adu_length": None,
    }
    assert [b["type"] for b in doc["blocks"]] == [10, 1]
    assert doc["blocks"][0]["hop_limit"] == 9
    assert doc["payload_length"] == 7
    assert doc["crc_ok"] is True


@pytest.mark.parametrize(("crc", "code"), [("none", 0), ("16", 1), ("32", 2)])
def test_encode_options(tmp_path: Path, crc: str, code: int) -> None:
    payload = tmp_path / "photo.jpg"
    payload.write_bytes(bytes(range(256)) * 3)
    out = tmp_path / "b.hex"
    r = CliRunner().invoke(
        main,
        [
            *ENCODE,
            "--payload-file",
            str(payload),
            "--crc",
            crc,
            "--created",
            "0",
            "--age",
            "1500",
            "--lifetime",
            "60",
            "--report-to",
            "ipn:1.0",
            "--out",
            str(out),
            "--hex",
        ],
    )
    assert r.exit_code == 0, r.output
    b = decode_bundle(bytes.fromhex(out.read_text()))
    assert b.primary.crc_type == code and b.primary.lifetime == 60_000
    assert b.payload == payload.read_bytes()
    assert [blk.crc_type for blk in b.blocks] == [code, code]
    assert b.blocks[0].type == 7  # creation time 0 brings a bundle age block
    assert encode_bundle(b) == bytes.fromhex(out.read_text())


def test_decode_file_and_hex(tmp_path: Path) -> None:
    enc = run(*ENCODE, "--payload", "x", "--hex")
    f = tmp_path / "b.hex"
    f.write_bytes(enc.stdout)
    r = run("bundle", "decode", str(f), "--hex")
    assert r.returncode == 0 and b"CRCs verified" in r.stdout


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"9f88", "input ends before the bundle does"),
        (b"zz", "not hexadecimal"),
        (b"82010203", "indefinite-length"),
    ],
)
def test_decode_failure_is_one_line(data: bytes, message: str) -> None:
    r = run("bundle", "decode", "--hex", stdin=data)
    assert r.returncode == 1
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_decode_crc_failure_names_block() -> None:
    enc = bytearray(run(*ENCODE, "--payload", "hello").stdout)
    enc[-3] ^= 0x55
    r = run("bundle", "decode", "--json", stdin=bytes(enc))
    assert r.returncode == 1
    assert "block 1 (type 1): CRC check failed" in r.stderr.decode()
    assert json.loads(r.stdout)["crc_ok"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--destination", "ipn:2"], "--destination: malformed ipn endpoint ID"),
        (["--source", "mailto:x"], "--source: unsupported endpoint ID scheme"),
    ],
)
def test_encode_bad_eid(args: list[str], message: str) -> None:
    base = {"--source": "ipn:1.1", "--destination": "ipn:2.1"}
    base[args[0]] = args[1]
    r = run("bundle", "encode", *[x for kv in base.items() for x in kv], "--payload", "x")
    assert r.returncode == 1 and message in r.stderr.decode()


def test_encode_needs_one_payload() -> None:
    r = run(*ENCODE)
    assert r.returncode == 2 and "exactly one of --payload and --payload-file" in r.stderr.decode()


def test_anonymous_source_sets_must_not_fragment() -> None:
    r = run("bundle", "encode", "--source", "dtn:none", "--destination", "ipn:2.1", "--payload", "x")
    assert r.returncode == 0
    assert decode_bundle(r.stdout).primary.flags == 0x4


def test_help_everywhere() -> None:
    for args in ([], ["bundle"], ["bundle", "encode"], ["bundle", "decode"]):
        r = CliRunner().invoke(main, [*args, "--help"])
        assert r.exit_code == 0 and "Usage:" in r.output


def test_created_defaults_to_now() -> None:
    from proxima.cli import dtn_now_ms

    before = dtn_now_ms()
    r = run(*ENCODE, "--payload", "x")
    after = dtn_now_ms()
    assert before <= decode_bundle(r.stdout).primary.creation_time <= after


def test_payload_from_stdin() -> None:
    r = run(*ENCODE, "--payload-file", "-", stdin=b"\x00\xffphoto")
    assert r.returncode == 0 and decode_bundle(r.stdout).payload == b"\x00\xffphoto"


def test_decode_json_marks_valid_and_text_counts_crcs() -> None:
    enc = run(*ENCODE, "--payload", "x", "--crc", "none").stdout
    assert json.loads(run("bundle", "decode", "--json", stdin=enc).stdout)["valid"] is True
    text = run("bundle", "decode", stdin=enc).stdout.decode()
    assert "valid; 0 CRCs verified" in text


@pytest.mark.parametrize(
    ("stdin", "args", "message"),
    [
        (b"", [], "no bytes"),
        (None, ["/nonexistent/bundle.bin"], "No such file"),
    ],
)
def test_decode_input_errors(stdin: bytes | None, args: list[str], message: str) -> None:
    r = run("bundle", "decode", *args, stdin=stdin)
    assert r.returncode == 1
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_decode_trailing_bytes_and_strict() -> None:
    enc = run(*ENCODE, "--payload", "x", "--crc", "none").stdout
    r = run("bundle", "decode", stdin=enc + b"\x00")
    assert r.returncode == 1 and "1 trailing byte after the end of the bundle" in r.stderr.decode()
    r = run("bundle", "decode", "--strict", stdin=enc)
    assert r.returncode == 1 and "no CRC, and no BIB targets the primary block" in r.stderr.decode()
    assert run("bundle", "decode", "--strict", stdin=run(*ENCODE, "--payload", "x").stdout).returncode == 0


def test_decode_describes_security_blocks_and_encrypted_content() -> None:
    from proxima.bpv7 import EID, Bundle, PrimaryBlock, hop_count_block, payload_block
    from proxima.bpv7.bpsec import add_bcb

    b = Bundle(
        PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5, crc_type=2),
        (hop_count_block(30, 1, number=2), payload_block(b"hello")),
    )
    enc = add_bcb(b, [2], bytes(16), bytes(12), security_source=EID.parse("ipn:1.0"), aes_variant=1)
    r = run("bundle", "decode", "--json", stdin=encode_bundle(enc))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    by_type = {blk["type"]: blk for blk in doc["blocks"]}
    assert by_type[10]["encrypted"] is True and "hop_limit" not in by_type[10]
    assert by_type[12]["security"]["targets"] == [2]
    assert by_type[12]["security"]["context_id"] == 2


def test_decode_checks_security_rules() -> None:
    from proxima.bpv7 import EID, Bundle, CanonicalBlock, PrimaryBlock, payload_block

    b = Bundle(
        PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5),
        (CanonicalBlock(12, 2, 0, 0, b"garbage"), payload_block(b"x")),
    )
    r = run("bundle", "decode", stdin=encode_bundle(b))
    assert r.returncode == 1 and "block 2" in r.stderr.decode()


def test_out_of_range_integer_option_is_a_usage_error() -> None:
    r = run(*ENCODE, "--payload", "x", "--age", str(2**64))
    assert r.returncode == 2 and "Traceback" not in r.stderr.decode()


def test_orbit_commands_are_listed_but_loaded_only_when_used() -> None:
    """``proxima send`` must not pay for numpy and sgp4; ``proxima --help`` still lists them."""
    import subprocess
    import sys

    code = "import sys, proxima.cli; print('numpy' in sys.modules, 'sgp4' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "links" in result.output and "overflights" in result.output
    result = CliRunner().invoke(main, ["links", "--help"])
    assert result.exit_code == 0 and "--mission" in result.output


def test_a_reader_that_goes_away_stops_a_command_quietly() -> None:
    """``proxima ... | head``: no error line, the status of a process killed by SIGPIPE."""
    import subprocess
    import sys

    argv = ["passes", "--lat", "48.85", "--lon", "2.35", "--days", "7", "--from", "2026-03-11T00:00:00Z"]
    with subprocess.Popen(
        [sys.executable, "-m", "proxima", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the command writes anything
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 141
    assert b"error" not in err and b"Traceback" not in err
