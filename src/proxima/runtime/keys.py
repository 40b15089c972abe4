"""Crew signing keys on disk: Ed25519 key pairs as PEM files, and keyrings of public keys.

A key pair ``NAME`` is two files in one directory: ``NAME.key`` (the private key, PKCS #8 PEM,
mode 0600, refused when group or others can read it, as ssh does) and ``NAME.pub`` (the public
key, SubjectPublicKeyInfo PEM). The ground's keyring is either a directory of ``NAME.pub`` files
or a TOML file::

    [keys]
    thomas = "MCowBQYDK2VwAyEA..."   # base64 of the raw 32-byte key, or a whole PEM block
    philae = "-----BEGIN PUBLIC KEY-----\\n...\\n-----END PUBLIC KEY-----\\n"

Every failure is a :class:`~proxima.errors.KeyFileError` naming the file.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from proxima.errors import KeyFileError, PostError
from proxima.outreach.post import check_name
from proxima.outreach.provenance import key_id

__all__ = [
    "PRIVATE_SUFFIX",
    "PUBLIC_SUFFIX",
    "KeyPairFiles",
    "load_keyring",
    "load_private_key",
    "load_public_key",
    "new_key_pair",
    "public_key_text",
    "save_private_key",
    "save_public_key",
]

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"
_MAX_KEY_FILE = 64 * 1024


@dataclass(frozen=True, slots=True)
class KeyPairFiles:
    """Where a new key pair was written, and its public key's fingerprint."""

    name: str
    private_path: Path
    public_path: Path
    key_id: str
    public_key: Ed25519PublicKey


def _name(name: str, where: str) -> str:
    try:
        return check_name(name, "name")
    except PostError as exc:
        raise KeyFileError(f"{where}: {exc}") from exc


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as base64 of its 32 raw bytes, as a TOML keyring lists it."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a new file with ``mode`` from the start (never readable by others, even briefly)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise KeyFileError(f"{path}: already exists; will not overwrite a key") from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create: {exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            fd = -1
            out.write(data)
    finally:
        if fd >= 0:
            os.close(fd)


def save_private_key(key: Ed25519PrivateKey, path: str | os.PathLike[str]) -> Path:
    """Write a private key as PKCS #8 PEM, mode 0600; refuse to overwrite a file."""
    target = Path(path)
    _write(target, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), 0o600)
    return target


def save_public_key(key: Ed25519PublicKey, path: str | os.PathLike[str]) -> Path:
    """Write a public key as SubjectPublicKeyInfo PEM, mode 0644; refuse to overwrite a file."""
    target = Path(path)
    _write(target, key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo), 0o644)
    return target


def new_key_pair(name: str, directory: str | os.PathLike[str]) -> KeyPairFiles:
    """Generate an Ed25519 key pair and write ``NAME.key`` and ``NAME.pub`` in ``directory``."""
    folder = Path(directory)
    _name(name, str(folder / name))
    private_path = folder / f"{name}{PRIVATE_SUFFIX}"
    public_path = folder / f"{name}{PUBLIC_SUFFIX}"
    for existing in (private_path, public_path):
        if existing.exists():
            raise KeyFileError(f"{existing}: already exists; will not overwrite a key")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"{folder}: cannot create the directory: {exc.strerror or exc}") from exc
    key = Ed25519PrivateKey.generate()
    save_private_key(key, private_path)
    public = key.public_key()
    save_public_key(public, public_path)
    return KeyPairFiles(name, private_path, public_path, key_id(public), public)


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    except FileNotFoundError as exc:
        raise KeyFileError(f"{path}: no such key file") from exc
    except IsADirectoryError as exc:
        raise KeyFileError(f"{path}: is a directory, not a key file") from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > _MAX_KEY_FILE:
        raise KeyFileError(f"{path}: more than {_MAX_KEY_FILE} bytes, not a key file")
    return data


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Read a private key written by :func:`save_private_key` (PEM, unencrypted, mode 0600 or stricter)."""
    source = Path(path)
    data = _read(source)
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise KeyFileError(f"{source}: holds a public key; signing needs the private key (NAME.key)")
    mode = source.stat().st_mode
    if mode & 0o077:
        raise KeyFileError(
            f"{source}: readable by others (mode {stat.S_IMODE(mode):04o}); run chmod 600 {source}"
        )
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise KeyFileError(f"{source}: the private key is encrypted; Proxima reads unencrypted keys") from exc
    except (ValueError, binascii.Error) as exc:
        raise KeyFileError(f"{source}: not a PEM private key") from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for unknown key types
        raise KeyFileError(f"{source}: cannot read the private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{source}: holds a {type(key).__name__.removeprefix('_')}, not an Ed25519 key")
    return key


def _public_from_pem(data: bytes, where: str) -> Ed25519PublicKey:
    if b"PRIVATE KEY-----" in data:
        raise KeyFileError(f"{where}: holds a private key; a keyring lists public keys only (NAME.pub)")
    try:
        key = load_pem_public_key(data)
    except (ValueError, binascii.Error) as exc:
        raise KeyFileError(f"{where}: not a PEM public key") from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for unknown key types
        raise KeyFileError(f"{where}: cannot read the public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{where}: holds a {type(key).__name__.removeprefix('_')}, not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Read a public key written by :func:`save_public_key`."""
    source = Path(path)
    return _public_from_pem(_read(source), str(source))


def _public_from_text(text: object, where: str) -> Ed25519PublicKey:
    if not isinstance(text, str):
        raise KeyFileError(f"{where}: must be a string (base64 of the raw key, or a PEM block)")
    if "-----BEGIN" in text:
        return _public_from_pem(text.encode("utf-8"), where)
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise KeyFileError(f"{where}: not base64 (the raw 32-byte key in base64, or a PEM block)") from exc
    if len(raw) != 32:
        raise KeyFileError(f"{where}: {len(raw)} bytes, an Ed25519 public key has 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def load_keyring(path: str | os.PathLike[str]) -> dict[str, Ed25519PublicKey]:
    """The crew's public keys by name, from a directory of ``NAME.pub`` files or a TOML file."""
    source = Path(path)
    keys: dict[str, Ed25519PublicKey] = {}
    if source.is_dir():
        try:
            files = sorted(p for p in source.iterdir() if p.suffix == PUBLIC_SUFFIX)
        except OSError as exc:
            raise KeyFileError(f"{source}: cannot list the keyring: {exc.strerror or exc}") from exc
        for file in files:
            checked = _name(file.stem, str(file))
            keys[checked] = load_public_key(file)
        if not keys:
            raise KeyFileError(f"{source}: no public key files (NAME{PUBLIC_SUFFIX}) in the keyring")
        return keys
    data = _read(source)
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KeyFileError(f"{source}: not a TOML keyring: {exc}") from exc
    table = doc.get("keys")
    if not isinstance(table, dict) or not table:
        raise KeyFileError(f"{source}: a keyring needs a [keys] table of name = public key")
    for name, value in table.items():
        where = f"{source}: keys.{name}"
        checked = _name(name, where)
        keys[checked] = _public_from_text(value, where)
    return keys
