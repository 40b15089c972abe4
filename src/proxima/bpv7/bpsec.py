"""BPSec (RFC 9172) with its default security contexts (RFC 9173): BIB-HMAC-SHA2 and BCB-AES-GCM.

A Block Integrity Block (BIB, type 11) or Block Confidentiality Block (BCB, type 12) is an
ordinary canonical block whose block-type-specific data is an :class:`AbstractSecurityBlock`
(RFC 9172 §3.6): a sequence of CBOR items, not an array. :func:`encode_asb` writes it in the
deterministic encoding and :func:`decode_asb` parses it strictly, so that
``encode_asb(decode_asb(b)) == b`` for every ``b`` it accepts.

:func:`add_bib`, :func:`verify_bib`, :func:`add_bcb` and :func:`decrypt_bcb` apply and check the
two RFC 9173 contexts on :class:`~proxima.bpv7.bundle.Bundle` values, enforcing the RFC 9172
rules that can be checked from the bundle alone (see :func:`check_security`). Everything is
pure: no clock and no randomness. An AES-GCM IV or a content-encryption key to be wrapped is
passed in by the caller, who must make each IV unique per key.

Errors: data received from outside that is malformed or fails a check raises
:class:`~proxima.errors.SecurityError` with an RFC 9172 status report reason code and the block
concerned; a caller asking for something invalid raises :class:`~proxima.errors.LocalError`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING, Final, NamedTuple, NoReturn, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from proxima.bpv7 import _cbor
from proxima.bpv7.bundle import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    Reason,
    encode_primary,
)
from proxima.bpv7.crc import CRCType
from proxima.bpv7.eid import EID, eid_from_cbor
from proxima.errors import InvalidEndpointID, LocalError, SecurityError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "BCB_AES_GCM",
    "BIB_HMAC_SHA2",
    "PARAMETERS_PRESENT",
    "SCOPE_ALL",
    "AbstractSecurityBlock",
    "AesVariant",
    "CBORValue",
    "KeyLookup",
    "ScopeFlag",
    "ShaVariant",
    "aad",
    "add_bcb",
    "add_bib",
    "asb_of",
    "check_security",
    "decode_asb",
    "decrypt_bcb",
    "encode_asb",
    "ippt",
    "verify_bib",
]

BIB_HMAC_SHA2: Final = 1
"""Security context id of BIB-HMAC-SHA2 (RFC 9173 §3)."""
BCB_AES_GCM: Final = 2
"""Security context id of BCB-AES-GCM (RFC 9173 §4)."""
PARAMETERS_PRESENT: Final = 0x1
"""Security context flag: the ASB carries security context parameters (RFC 9172 §3.6)."""


class ShaVariant(IntEnum):
    """BIB-HMAC-SHA2 SHA variants (RFC 9173 §3.3.1, COSE algorithm ids)."""

    HMAC_256_256 = 5
    HMAC_384_384 = 6
    HMAC_512_512 = 7


class AesVariant(IntEnum):
    """BCB-AES-GCM AES variants (RFC 9173 §4.3.2, COSE algorithm ids)."""

    A128GCM = 1
    A256GCM = 3


class ScopeFlag(IntFlag):
    """Integrity scope flags (RFC 9173 §3.3.3) and AAD scope flags (§4.3.4): same bits."""

    PRIMARY_BLOCK = 0x1
    TARGET_HEADER = 0x2
    SECURITY_HEADER = 0x4


SCOPE_ALL: Final = 0x7
"""All three scope flags: the RFC 9173 default when the parameter is absent."""

# Parameter and result ids (RFC 9173 §3.3, §3.4, §4.3, §4.4).
_BIB_SHA_VARIANT: Final = 1
_BIB_WRAPPED_KEY: Final = 2
_BIB_SCOPE: Final = 3
_BCB_IV: Final = 1
_BCB_AES_VARIANT: Final = 2
_BCB_WRAPPED_KEY: Final = 3
_BCB_SCOPE: Final = 4
_RESULT: Final = 1  # expected HMAC (BIB) / authentication tag (BCB)

_HASHES: Final = {5: hashlib.sha256, 6: hashlib.sha384, 7: hashlib.sha512}
_AES_KEY_LENGTH: Final = {1: 16, 3: 32}
_TAG_LENGTH: Final = 16
_IV_MIN: Final = 8
_IV_MAX: Final = 16
_U64_MAX: Final = (1 << 64) - 1
_KNOWN_BLOCK_FLAGS: Final = int(
    BlockFlag.REPLICATE
    | BlockFlag.REPORT_IF_UNPROCESSED
    | BlockFlag.DELETE_BUNDLE_IF_UNPROCESSED
    | BlockFlag.DELETE_BLOCK_IF_UNPROCESSED
)
_SECURITY_TYPES: Final = (BlockType.BIB, BlockType.BCB)
_MAX_DEPTH: Final = 16

_BAD: Final = Reason.BLOCK_UNINTELLIGIBLE
_UNKNOWN: Final = Reason.UNKNOWN_SECURITY_OPERATION
_UNEXPECTED: Final = Reason.UNEXPECTED_SECURITY_OPERATION
_FAILED: Final = Reason.FAILED_SECURITY_OPERATION
_MISSING: Final = Reason.MISSING_SECURITY_OPERATION
_CONFLICT: Final = Reason.CONFLICTING_SECURITY_OPERATION

CBORValue: TypeAlias = "int | bytes | str | bool | tuple[CBORValue, ...] | None"
"""A parameter or result value: the CBOR subset this module carries (arrays become tuples)."""


class AbstractSecurityBlock(NamedTuple):
    """The block-type-specific data of a BIB or BCB (RFC 9172 §3.6).

    ``parameters`` is None exactly when bit 0 of ``context_flags`` (parameters present) is
    clear. ``results`` holds one tuple of ``(result id, value)`` pairs per target, in the order
    of ``targets``. Arrays inside values are tuples.
    """

    targets: tuple[int, ...]
    context_id: int
    context_flags: int
    source: EID
    parameters: tuple[tuple[int, CBORValue], ...] | None
    results: tuple[tuple[tuple[int, CBORValue], ...], ...]

    def parameter(self, param_id: int) -> CBORValue | None:
        """The value of a security context parameter, or None when absent."""
        for pid, value in self.parameters or ():
            if pid == param_id:
                return value
        return None


KeyLookup: TypeAlias = Callable[[CanonicalBlock, AbstractSecurityBlock], "bytes | None"]
"""Given a security block and its ASB, the key to process it with, or None to leave it alone."""


# ---------------------------------------------------------------------------------------------
# Strict CBOR reading and deterministic writing of the ASB.


class _Reader:
    """Reads deterministically encoded CBOR items from the ASB bytes, failing with SecurityError."""

    __slots__ = ("block", "data", "pos")

    def __init__(self, data: bytes, block: int | None) -> None:
        self.data = data
        self.pos = 0
        self.block = block

    def fail(self, message: str, reason: int = _BAD) -> NoReturn:
        where = f"block {self.block}: " if self.block is not None else ""
        raise SecurityError(f"{where}abstract security block: {message}", reason=reason, block=self.block)

    def head(self, what: str) -> tuple[int, int]:
        """Read a head; return (major type, argument). Only shortest, definite forms pass."""
        data, pos = self.data, self.pos
        if pos >= len(data):
            self.fail(f"the data ends before {what}")
        ib = data[pos]
        major, info = ib >> 5, ib & 0x1F
        pos += 1
        if major == 7:
            if 20 <= info <= 22:
                self.pos = pos
                return 7, info
            self.fail(
                f"{what}: CBOR byte 0x{ib:02x} (a float, break, undefined or other simple "
                "value) is not allowed"
            )
        if info < 24:
            arg = info
        elif info <= 27:
            size = 1 << (info - 24)
            if pos + size > len(data):
                self.fail(f"the data ends inside the head of {what}")
            arg = int.from_bytes(data[pos : pos + size], "big")
            pos += size
            if arg < (24 if size == 1 else 1 << (4 * size)):
                self.fail(f"{what} is not in the shortest CBOR form (RFC 8949 §4.2.1)")
        elif info == 31:
            self.fail(f"{what} uses an indefinite length; only definite lengths are allowed")
        else:
            self.fail(f"{what}: reserved CBOR additional information {info} (byte 0x{ib:02x})")
        if major == 5:
            self.fail(f"{what}: CBOR maps are not supported in an abstract security block")
        if major == 6:
            self.fail(f"{what}: CBOR tags are not supported in an abstract security block")
        self.pos = pos
        return major, arg

    def uint(self, what: str) -> int:
        major, arg = self.head(what)
        if major != 0:
            self.fail(f"{what} must be an unsigned integer")
        return arg

    def integer(self, what: str) -> int:
        major, arg = self.head(what)
        if major not in (0, 1):
            self.fail(f"{what} must be an integer")
        return arg if major == 0 else -1 - arg

    def array(self, what: str) -> int:
        major, arg = self.head(what)
        if major != 4:
            self.fail(f"{what} must be an array")
        if arg > len(self.data) - self.pos:  # every item takes at least one byte
            self.fail(f"the data ends inside {what} (it announces {arg} items)")
        return arg

    def value(self, what: str, depth: int = 0) -> CBORValue:
        start = self.pos
        major, arg = self.head(what)
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major in (2, 3):
            if arg > len(self.data) - self.pos:
                self.fail(f"the data ends inside {what} (a string of {arg} bytes)")
            raw = self.data[self.pos : self.pos + arg]
            self.pos += arg
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                self.pos = start
                self.fail(f"{what} is a text string that is not valid UTF-8")
        if major == 4:
            if depth >= _MAX_DEPTH:
                self.fail(f"{what} nests arrays more than {_MAX_DEPTH} deep")
            if arg > len(self.data) - self.pos:
                self.fail(f"the data ends inside {what} (it announces {arg} items)")
            return tuple(self.value(what, depth + 1) for _ in range(arg))
        return {20: False, 21: True, 22: None}[arg]  # major 7

    def pairs(self, what: str) -> tuple[tuple[int, CBORValue], ...]:
        """An array of ``[id, value]`` pairs (parameters, or one target's results)."""
        out = []
        for i in range(self.array(what)):
            item = f"{what} #{i}"
            if self.array(item) != 2:
                self.fail(f"{item} must be a two-element array [id, value]")
            pid = self.uint(f"the id of {item}")
            out.append((pid, self.value(f"the value of {item}")))
        return tuple(out)


def _as_lists(value: CBORValue) -> object:
    """The value with tuples turned into lists, the form ``eid_from_cbor`` expects."""
    if isinstance(value, tuple):
        return [_as_lists(v) for v in value]
    return value


def decode_asb(data: bytes | bytearray | memoryview, *, block: int | None = None) -> AbstractSecurityBlock:
    """Decode an abstract security block strictly (RFC 9172 §3.6).

    Every item must be deterministically encoded, targets must be a non-empty list of distinct
    block numbers, parameters must be present exactly when context flag bit 0 says so, there
    must be one result set per target and no byte may follow. Anything else raises
    :class:`SecurityError` (reason: block unintelligible) naming the problem; ``block`` is the
    number of the security block, for the message and the error.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise LocalError(f"an abstract security block is bytes, not {type(data).__name__}")
    r = _Reader(bytes(data), block)
    n_targets = r.array("the security targets")
    if n_targets == 0:
        r.fail("the security targets list is empty; it needs at least one target")
    targets = tuple(r.uint(f"security target #{i}") for i in range(n_targets))
    if len(set(targets)) != len(targets):
        dup = next(t for t in targets if targets.count(t) > 1)
        r.fail(f"security target {dup} is listed more than once")
    context_id = r.integer("the security context id")
    context_flags = r.uint("the security context flags")
    start = r.pos
    raw_source = r.value("the security source")
    try:
        source = eid_from_cbor(_as_lists(raw_source))
    except InvalidEndpointID as exc:
        r.fail(f"the security source is not a valid endpoint ID: {exc}")
    if source.cbor != r.data[start : r.pos]:
        r.fail("the security source is not deterministically encoded")
    parameters: tuple[tuple[int, CBORValue], ...] | None = None
    if context_flags & PARAMETERS_PRESENT:
        parameters = r.pairs("the security context parameters")
        if not parameters:
            r.fail("the 'parameters present' flag is set but the parameter list is empty")
    n_results = r.array("the security results")
    if n_results != n_targets:
        r.fail(f"there are {n_results} result sets for {n_targets} security targets")
    results = tuple(r.pairs(f"the results of target {t}") for t in targets)
    if r.pos != len(r.data):
        r.fail(f"{len(r.data) - r.pos} bytes follow the security results")
    return AbstractSecurityBlock(targets, context_id, context_flags, source, parameters, results)


def _enc_value(value: object, what: str, depth: int = 0) -> bytes:
    """The deterministic CBOR encoding of a parameter or result value."""
    if value is None:
        return b"\xf6"
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        if 0 <= value <= _U64_MAX:
            return _cbor.head(0, int(value))
        if -(1 << 64) <= value < 0:
            return _cbor.head(1, -1 - int(value))
        raise LocalError(f"{what}: integer {value} does not fit in CBOR (-2^64 .. 2^64-1)")
    if isinstance(value, bytes):
        return _cbor.bytes_head(len(value)) + value
    if isinstance(value, str):
        try:
            return _cbor.text(value)
        except UnicodeEncodeError as exc:
            raise LocalError(f"{what}: text is not encodable as UTF-8: {exc}") from exc
    if isinstance(value, tuple | list):
        if depth >= _MAX_DEPTH:
            raise LocalError(f"{what}: arrays nest more than {_MAX_DEPTH} deep")
        return _cbor.head(4, len(value)) + b"".join(_enc_value(v, what, depth + 1) for v in value)
    raise LocalError(
        f"{what}: {type(value).__name__} is not a supported value (int, bytes, str, bool, "
        "None or a tuple of those)"
    )


def _is_uint(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _U64_MAX


def _enc_pairs(pairs: object, what: str) -> bytes:
    if not isinstance(pairs, tuple | list):
        raise LocalError(f"{what} must be a tuple of (id, value) pairs")
    out = [_cbor.array_head(len(pairs))]
    for i, pair in enumerate(pairs):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise LocalError(f"{what} #{i} must be an (id, value) pair")
        pid, value = pair
        if not _is_uint(pid):
            raise LocalError(f"{what} #{i}: id {pid!r} is not an unsigned integer")
        out.append(b"\x82" + _cbor.uint(pid) + _enc_value(value, f"{what} #{i}"))
    return b"".join(out)


def encode_asb(asb: AbstractSecurityBlock) -> bytes:
    """The deterministic encoding of an abstract security block (the security block's data).

    Raises :class:`LocalError` when the value breaks a rule :func:`decode_asb` enforces.
    """
    targets = asb.targets
    if not isinstance(targets, tuple | list) or not targets:
        raise LocalError("an abstract security block needs at least one security target")
    for t in targets:
        if not _is_uint(t):
            raise LocalError(f"security target {t!r} is not a block number")
    if len(set(targets)) != len(targets):
        raise LocalError(f"security targets {tuple(targets)} list a block more than once")
    cid = asb.context_id
    if not isinstance(cid, int) or isinstance(cid, bool) or not -(1 << 64) <= cid <= _U64_MAX:
        raise LocalError(f"security context id {cid!r} is not a CBOR integer")
    if not _is_uint(asb.context_flags):
        raise LocalError(f"security context flags {asb.context_flags!r} are not an unsigned integer")
    if not isinstance(asb.source, EID):
        raise LocalError("the security source must be an endpoint ID")
    present = bool(asb.context_flags & PARAMETERS_PRESENT)
    if present != (asb.parameters is not None):
        raise LocalError(
            "context flag bit 0 (parameters present) must be set exactly when parameters are given"
        )
    if asb.parameters is not None and not asb.parameters:
        raise LocalError("parameters, when present, must not be empty (clear flag bit 0 instead)")
    if not isinstance(asb.results, tuple | list) or len(asb.results) != len(targets):
        raise LocalError("there must be exactly one result set per security target")
    parts = [
        _cbor.array_head(len(targets)),
        *(_cbor.uint(t) for t in targets),
        _enc_value(cid, "security context id"),
        _cbor.uint(asb.context_flags),
        asb.source.cbor,
    ]
    if asb.parameters is not None:
        parts.append(_enc_pairs(asb.parameters, "security context parameter"))
    parts.append(_cbor.array_head(len(asb.results)))
    parts.extend(
        _enc_pairs(res, f"result of target {t}") for t, res in zip(targets, asb.results, strict=True)
    )
    return b"".join(parts)


def asb_of(block: CanonicalBlock) -> AbstractSecurityBlock:
    """The abstract security block carried by a BIB or BCB (:class:`LocalError` for others)."""
    if block.type not in _SECURITY_TYPES:
        raise LocalError(f"block {block.number} (type {block.type}) is not a BIB or BCB")
    return decode_asb(block.data, block=block.number)


# ---------------------------------------------------------------------------------------------
# Canonical forms (RFC 9172 §4, RFC 9173 §3.7 and §4.7).


def _header(block: CanonicalBlock) -> bytes:
    """Canonical block type code, block number and flags (reserved flag bits zeroed)."""
    return _cbor.uint(block.type) + _cbor.uint(block.number) + _cbor.uint(block.flags & _KNOWN_BLOCK_FLAGS)


def _target_block(bundle: Bundle, target: int) -> CanonicalBlock:
    b = bundle.block(target)
    if b is None:
        raise LocalError(f"the bundle has no block number {target}")
    return b


def ippt(bundle: Bundle, target: int, bib: CanonicalBlock, scope: int = SCOPE_ALL) -> bytes:
    """The Integrity-Protected Plaintext of RFC 9173 §3.7 for one target of a BIB.

    The scope flags (unknown bits zeroed), then per scope the primary block, the target's header
    and the BIB's header, then the target's data as a CBOR byte string. When the target is the
    primary block, the whole encoded primary block is that byte string's content and there is
    no primary or target header to add (RFC 9173 Appendix A.3; as Hardy does).
    """
    scope &= SCOPE_ALL
    parts = [_cbor.uint(scope)]
    if target == 0:
        data = encode_primary(bundle.primary)
    else:
        tb = _target_block(bundle, target)
        data = tb.data
        if scope & ScopeFlag.PRIMARY_BLOCK:
            parts.append(encode_primary(bundle.primary))
        if scope & ScopeFlag.TARGET_HEADER:
            parts.append(_header(tb))
    if scope & ScopeFlag.SECURITY_HEADER:
        parts.append(_header(bib))
    parts.append(_cbor.bytes_head(len(data)))
    parts.append(data)
    return b"".join(parts)


def aad(bundle: Bundle, target: int, bcb: CanonicalBlock, scope: int = SCOPE_ALL) -> bytes:
    """The Additional Authenticated Data of RFC 9173 §4.7.2 for one target of a BCB.

    The scope flags (unknown bits zeroed), then per scope the primary block, the target's header
    and the BCB's own header (the RFC's step 4 says "BIB"; Appendix A.4 shows the BCB header).
    """
    scope &= SCOPE_ALL
    parts = [_cbor.uint(scope)]
    if scope & ScopeFlag.PRIMARY_BLOCK:
        parts.append(encode_primary(bundle.primary))
    if scope & ScopeFlag.TARGET_HEADER:
        parts.append(_header(_target_block(bundle, target)))
    if scope & ScopeFlag.SECURITY_HEADER:
        parts.append(_header(bcb))
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# RFC 9172 block interaction rules.


class _Survey(NamedTuple):
    """The security blocks of a bundle, decoded, and who protects what."""

    bcbs: dict[int, AbstractSecurityBlock]
    bibs: dict[int, AbstractSecurityBlock]  # BIBs that are not themselves encrypted
    encrypted: dict[int, int]  # target block number -> BCB number
    integrity: dict[int, int]  # target block number -> BIB number (readable BIBs only)


def _conflict(message: str, block: int) -> SecurityError:
    return SecurityError(message, reason=_CONFLICT, block=block)


def _survey(bundle: Bundle) -> _Survey:
    """Decode every readable security block and check the RFC 9172 §3 rules between them."""
    by_number = {b.number: b for b in bundle.blocks}
    bcbs: dict[int, AbstractSecurityBlock] = {}
    encrypted: dict[int, int] = {}
    for b in bundle.blocks:
        if b.type != BlockType.BCB:
            continue
        asb = decode_asb(b.data, block=b.number)
        bcbs[b.number] = asb
        for t in asb.targets:
            if t == 0:
                raise _conflict(f"BCB {b.number} targets the primary block (RFC 9172 §3.8)", b.number)
            tb = by_number.get(t)
            if tb is None:
                raise SecurityError(
                    f"BCB {b.number} targets block {t}, which is not in the bundle",
                    reason=_FAILED,
                    block=b.number,
                )
            if tb.type == BlockType.BCB:
                raise _conflict(
                    f"BCB {b.number} targets BCB {t}; a BCB must not target a BCB (RFC 9172 §3.8)",
                    b.number,
                )
            if t in encrypted:
                raise _conflict(
                    f"block {t} is the target of both BCB {encrypted[t]} and BCB {b.number} (RFC 9172 §3.2)",
                    b.number,
                )
            encrypted[t] = b.number
        if 1 in asb.targets and not b.flags & BlockFlag.REPLICATE:
            raise _conflict(
                f"BCB {b.number} targets the payload but lacks the 'replicate in every fragment' "
                "flag (RFC 9172 §3.8)",
                b.number,
            )
        if b.flags & BlockFlag.DELETE_BLOCK_IF_UNPROCESSED:
            raise _conflict(
                f"BCB {b.number} has the 'remove block if it can't be processed' flag set (RFC 9172 §3.8)",
                b.number,
            )
    bibs: dict[int, AbstractSecurityBlock] = {}
    integrity: dict[int, int] = {}
    for b in bundle.blocks:
        if b.type != BlockType.BIB or b.number in encrypted:
            continue  # an encrypted BIB holds ciphertext: it cannot be read or checked
        asb = decode_asb(b.data, block=b.number)
        bibs[b.number] = asb
        for t in asb.targets:
            tb = by_number.get(t)
            if t != 0 and tb is None:
                raise SecurityError(
                    f"BIB {b.number} targets block {t}, which is not in the bundle",
                    reason=_FAILED,
                    block=b.number,
                )
            if tb is not None and tb.type in _SECURITY_TYPES:
                raise _conflict(
                    f"BIB {b.number} targets security block {t}; a BIB must not target a BIB or "
                    "BCB (RFC 9172 §3.7)",
                    b.number,
                )
            if t in integrity:
                raise _conflict(
                    f"block {t} is the target of both BIB {integrity[t]} and BIB {b.number} (RFC 9172 §3.2)",
                    b.number,
                )
            if t in encrypted:
                raise _conflict(
                    f"block {t} is encrypted by BCB {encrypted[t]} but BIB {b.number}, which "
                    "targets it, is not (RFC 9172 §3.9)",
                    b.number,
                )
            integrity[t] = b.number
    return _Survey(bcbs, bibs, encrypted, integrity)


def check_security(bundle: Bundle) -> None:
    """Check the bundle's security blocks against the RFC 9172 rules visible in the bundle.

    Every BCB, and every BIB that is not encrypted, must hold a well-formed ASB whose targets
    exist; no block may be the target of two BIBs or two BCBs; a BIB must not target a BIB or
    BCB; a BCB must not target the primary block or a BCB, must be replicated in every fragment
    when it targets the payload, and must not be removable; a BIB whose target is encrypted must
    be encrypted too. Raises :class:`SecurityError` naming the first problem.

    Not checked on receipt: that a BCB targeting a BIB shares a target with it (RFC 9172 §3.8),
    because the BIB's targets are ciphertext then, and because implementations such as Hardy
    encrypt a BIB with a BCB of its own. :func:`add_bcb` does enforce it.
    """
    _survey(bundle)


# ---------------------------------------------------------------------------------------------
# Argument checks for the adding side.


def _check_key(key: object, what: str) -> bytes:
    if not isinstance(key, bytes | bytearray) or not key:
        raise LocalError(f"{what} must be non-empty bytes")
    return bytes(key)


def _check_add(
    bundle: Bundle,
    targets: Sequence[int],
    security_source: object,
    scope: object,
    flags: object,
    crc_type: object,
    block_number: int | None,
    index: int | None,
    kind: str,
) -> tuple[tuple[int, ...], int, int]:
    """Checks shared by add_bib and add_bcb; returns (targets, block number, insertion index)."""
    if not isinstance(bundle, Bundle):
        raise LocalError(f"{kind}: expected a Bundle, not {type(bundle).__name__}")
    if bundle.primary.flags & BundleFlag.IS_FRAGMENT:
        raise LocalError(f"cannot add a {kind} to a fragment (RFC 9172 §5.2)")
    if not isinstance(security_source, EID):
        raise LocalError(f"{kind}: security_source must be an endpoint ID")
    if not isinstance(scope, int) or isinstance(scope, bool) or not 0 <= scope <= SCOPE_ALL:
        raise LocalError(f"{kind}: scope flags {scope!r} must be a combination of 0x1, 0x2, 0x4")
    if not _is_uint(flags):
        raise LocalError(f"{kind}: block processing flags {flags!r} are not an unsigned integer")
    if crc_type not in (CRCType.NONE, CRCType.CRC16, CRCType.CRC32C):
        raise LocalError(f"{kind}: unknown CRC type {crc_type!r}")
    t = tuple(targets)
    if not t:
        raise LocalError(f"{kind}: at least one security target is needed")
    if len(set(t)) != len(t):
        raise LocalError(f"{kind}: security targets {t} list a block more than once")
    numbers = {b.number for b in bundle.blocks}
    for n in t:
        if not _is_uint(n) or (n != 0 and n not in numbers):
            raise LocalError(f"{kind}: security target {n!r} is not a block of the bundle")
    if block_number is None:
        block_number = max(numbers | {1}) + 1
    elif not _is_uint(block_number) or block_number in (0, 1) or block_number in numbers:
        raise LocalError(f"{kind}: block number {block_number!r} is reserved or already in use")
    if index is None:
        index = next(
            (i for i, b in enumerate(bundle.blocks) if b.type not in _SECURITY_TYPES),
            len(bundle.blocks),
        )
    elif not isinstance(index, int) or not 0 <= index < len(bundle.blocks):
        raise LocalError(f"{kind}: index {index!r} must leave the payload block last")
    return tuple(int(n) for n in t), int(block_number), index


def _strip_crcs(bundle: Bundle, targets: tuple[int, ...]) -> Bundle:
    """Remove the CRC of every target (RFC 9173 §3.8.1 and §4.8.1), the primary included."""
    primary: PrimaryBlock = bundle.primary
    if 0 in targets and primary.crc_type != CRCType.NONE:
        primary = primary._replace(crc_type=CRCType.NONE)
    blocks = tuple(
        b._replace(crc_type=CRCType.NONE) if b.number in targets and b.crc_type else b for b in bundle.blocks
    )
    return Bundle(primary, blocks)


def _insert(bundle: Bundle, block: CanonicalBlock, index: int) -> Bundle:
    blocks = list(bundle.blocks)
    blocks.insert(index, block)
    return Bundle(bundle.primary, tuple(blocks))


def _wrap(kek: bytes, key: bytes) -> bytes:
    try:
        return aes_key_wrap(kek, key)
    except ValueError as exc:
        raise LocalError(f"cannot AES-key-wrap the key (RFC 3394): {exc}") from exc


def _unwrap(kek: bytes, wrapped: bytes, block: int) -> bytes:
    try:
        return aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError) as exc:
        raise SecurityError(
            f"security block {block}: the wrapped key does not unwrap with the key given ({exc})",
            reason=_FAILED,
            block=block,
        ) from exc


def _key_lookup(key: bytes | KeyLookup) -> KeyLookup:
    if isinstance(key, bytes | bytearray):
        fixed = _check_key(key, "the key")
        return lambda _block, _asb: fixed
    if not callable(key):
        raise LocalError("key must be bytes or a function (block, asb) -> bytes | None")
    return key


# ---------------------------------------------------------------------------------------------
# BIB-HMAC-SHA2 (RFC 9173 §3).


def _hmac(sha_variant: int, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, _HASHES[sha_variant]).digest()


def add_bib(
    bundle: Bundle,
    targets: Sequence[int],
    key: bytes,
    *,
    security_source: EID,
    sha_variant: int = ShaVariant.HMAC_384_384,
    scope: int = SCOPE_ALL,
    block_number: int | None = None,
    flags: int = 0,
    crc_type: int = CRCType.NONE,
    wrapped_key_cek: bytes | None = None,
    index: int | None = None,
) -> Bundle:
    """A copy of the bundle with a BIB-HMAC-SHA2 block protecting ``targets`` (0 = primary).

    ``key`` is the HMAC key; with ``wrapped_key_cek`` it is instead the AES key-encryption key
    that wraps ``wrapped_key_cek`` (the HMAC key actually used, a fresh random value chosen by
    the caller) into parameter 2. The targets lose their CRC (RFC 9173 §3.8.1). The BIB gets
    ``block_number`` (default: one more than the highest in use) and goes at ``index`` in
    ``bundle.blocks`` (default: after the leading BIBs and BCBs). Parameters always carry the
    SHA variant and the scope, as RFC 9173 Appendix A does.
    """
    t, number, index = _check_add(
        bundle, targets, security_source, scope, flags, crc_type, block_number, index, "BIB"
    )
    if sha_variant not in _HASHES:
        raise LocalError(f"BIB: unknown SHA variant {sha_variant!r} (5, 6 or 7)")
    key = _check_key(key, "the BIB key")
    survey = _survey(bundle)
    for n in t:
        tb = bundle.block(n)
        if tb is not None and tb.type in _SECURITY_TYPES:
            raise LocalError(f"BIB: target {n} is a security block (RFC 9172 §3.7)")
        if n in survey.integrity:
            raise LocalError(f"BIB: block {n} is already the target of BIB {survey.integrity[n]}")
        if n in survey.encrypted:
            raise LocalError(f"BIB: block {n} is encrypted by BCB {survey.encrypted[n]} (RFC 9172 §3.9)")
    params: list[tuple[int, CBORValue]] = [(_BIB_SHA_VARIANT, int(sha_variant))]
    hmac_key = key
    if wrapped_key_cek is not None:
        hmac_key = _check_key(wrapped_key_cek, "wrapped_key_cek")
        params.append((_BIB_WRAPPED_KEY, _wrap(key, hmac_key)))
    params.append((_BIB_SCOPE, int(scope)))
    stripped = _strip_crcs(bundle, t)
    bib = CanonicalBlock(BlockType.BIB, number, int(flags), int(crc_type), b"")
    results = tuple(
        ((_RESULT, _hmac(int(sha_variant), hmac_key, ippt(stripped, n, bib, int(scope)))),) for n in t
    )
    asb = AbstractSecurityBlock(t, BIB_HMAC_SHA2, PARAMETERS_PRESENT, security_source, tuple(params), results)
    return _insert(stripped, bib._replace(data=encode_asb(asb)), index)


class _BibParams(NamedTuple):
    sha_variant: int
    wrapped_key: bytes | None
    scope: int


def _pair_map(
    pairs: tuple[tuple[int, CBORValue], ...], known: tuple[int, ...], what: str, block: int
) -> dict[int, CBORValue]:
    """Pairs as a dict; duplicate ids are malformed, ids outside ``known`` unknown."""
    out: dict[int, CBORValue] = {}
    for pid, value in pairs:
        if pid in out:
            raise SecurityError(
                f"security block {block}: {what} id {pid} appears twice", reason=_BAD, block=block
            )
        if pid not in known:
            raise SecurityError(
                f"security block {block}: unknown {what} id {pid}", reason=_UNKNOWN, block=block
            )
        out[pid] = value
    return out


def _uint_param(value: CBORValue, what: str, block: int) -> int:
    if not _is_uint(value):
        raise SecurityError(
            f"security block {block}: {what} must be an unsigned integer, not {value!r:.40}",
            reason=_BAD,
            block=block,
        )
    return int(value)  # type: ignore[arg-type]


def _bytes_param(value: CBORValue, what: str, block: int) -> bytes:
    if not isinstance(value, bytes):
        raise SecurityError(
            f"security block {block}: {what} must be a byte string, not {value!r:.40}",
            reason=_BAD,
            block=block,
        )
    return value


def _bib_params(asb: AbstractSecurityBlock, block: int) -> _BibParams:
    p = _pair_map(asb.parameters or (), (_BIB_SHA_VARIANT, _BIB_WRAPPED_KEY, _BIB_SCOPE), "parameter", block)
    variant = _uint_param(p.get(_BIB_SHA_VARIANT, 6), "the SHA variant", block)
    if variant not in _HASHES:
        raise SecurityError(
            f"BIB {block}: unknown SHA variant {variant} (RFC 9173 defines 5, 6 and 7)",
            reason=_UNKNOWN,
            block=block,
        )
    wrapped = p.get(_BIB_WRAPPED_KEY)
    scope = _uint_param(p.get(_BIB_SCOPE, SCOPE_ALL), "the integrity scope flags", block)
    return _BibParams(
        variant, None if wrapped is None else _bytes_param(wrapped, "the wrapped key", block), scope
    )


def _single_result(results: tuple[tuple[int, CBORValue], ...], target: int, block: int) -> bytes:
    r = _pair_map(results, (_RESULT,), f"result (target {target})", block)
    if _RESULT not in r:
        raise SecurityError(
            f"security block {block}: target {target} has no result 1", reason=_BAD, block=block
        )
    return _bytes_param(r[_RESULT], f"result 1 of target {target}", block)


def _keyed(
    bundle: Bundle,
    blocks: dict[int, AbstractSecurityBlock],
    lookup: KeyLookup,
    kind: str,
    context_id: int,
) -> Iterator[tuple[int, CanonicalBlock, AbstractSecurityBlock, bytes]]:
    """The security blocks of one kind the key lookup has a key for, with that key; a block of
    the other service's context is unexpected (reason 14), any other context unknown (13)."""
    other, name = (
        (BCB_AES_GCM, "BIB-HMAC-SHA2") if context_id == BIB_HMAC_SHA2 else (BIB_HMAC_SHA2, "BCB-AES-GCM")
    )
    for number, asb in blocks.items():
        block = bundle.block(number)
        if block is None:  # pragma: no cover - the survey came from these blocks
            continue
        k = lookup(block, asb)
        if k is None:
            continue
        k = _check_key(k, "the key returned by the key lookup")
        if asb.context_id != context_id:
            reason = _UNEXPECTED if asb.context_id == other else _UNKNOWN
            raise SecurityError(
                f"{kind} {number}: security context {asb.context_id} is not {name} ({context_id})",
                reason=reason,
                block=number,
            )
        yield number, block, asb, k


def verify_bib(
    bundle: Bundle,
    key: bytes | KeyLookup,
    *,
    remove: bool = False,
    required: bool = True,
) -> Bundle:
    """Check every target of every readable BIB the key applies to; return the bundle.

    ``key`` is the HMAC key (or the key-encryption key, for BIBs with a wrapped key), or a
    function of (BIB block, its ASB) returning that key, or None to skip the BIB, as a waypoint
    that cannot check it would. BIBs that a BCB encrypts are skipped (RFC 9172 §3.9). With
    ``remove`` (a security acceptor), verified BIBs are removed from the returned bundle. With
    ``required``, finding no BIB to verify raises (reason: missing security operation).

    Raises :class:`SecurityError`: failed security operation when an HMAC does not match or a
    key does not unwrap, unknown security operation for another context or SHA variant, and the
    reasons of :func:`check_security`.
    """
    lookup = _key_lookup(key)
    survey = _survey(bundle)
    verified: list[int] = []
    for number, block, asb, k in _keyed(bundle, survey.bibs, lookup, "BIB", BIB_HMAC_SHA2):
        params = _bib_params(asb, number)
        hmac_key = k if params.wrapped_key is None else _unwrap(k, params.wrapped_key, number)
        for target, results in zip(asb.targets, asb.results, strict=True):
            expected = _single_result(results, target, number)
            got = _hmac(params.sha_variant, hmac_key, ippt(bundle, target, block, params.scope))
            if not hmac.compare_digest(got, expected):
                what = "the primary block" if target == 0 else f"block {target}"
                raise SecurityError(
                    f"integrity check of {what} by BIB {number} failed: the HMAC does not match",
                    reason=_FAILED,
                    block=target,
                )
        verified.append(number)
    if required and not verified:
        raise SecurityError("no BIB in the bundle could be verified with the key given", reason=_MISSING)
    if remove and verified:
        return bundle.with_blocks(b for b in bundle.blocks if b.number not in verified)
    return bundle


# ---------------------------------------------------------------------------------------------
# BCB-AES-GCM (RFC 9173 §4).


def add_bcb(
    bundle: Bundle,
    targets: Sequence[int],
    key: bytes,
    iv: bytes,
    *,
    security_source: EID,
    aes_variant: int = AesVariant.A256GCM,
    scope: int = SCOPE_ALL,
    block_number: int | None = None,
    flags: int | None = None,
    crc_type: int = CRCType.NONE,
    wrapped_key_cek: bytes | None = None,
    index: int | None = None,
) -> Bundle:
    """A copy of the bundle with ``targets`` encrypted by a BCB-AES-GCM block.

    ``key`` is the content-encryption key (16 bytes for A128GCM, 32 for A256GCM); with
    ``wrapped_key_cek`` it is instead the AES key-encryption key that wraps ``wrapped_key_cek``
    (the content-encryption key actually used, fresh and random) into parameter 3. ``iv`` (8 to
    16 bytes, 12 recommended) must never repeat under the same key. All targets of one BCB are
    encrypted under the same key and IV, as in RFC 9173 Appendix A.4; GCM with a repeated
    (key, IV) exposes the XOR of those plaintexts and weakens their tags, so give a BCB several
    targets only when RFC 9172 §3.9 forces a BIB to be encrypted with its targets.

    Each target's data is replaced by ciphertext of the same length, its CRC removed (RFC 9173
    §4.8.1), and its tag stored as result 1. ``flags`` defaults to 'replicate in every fragment'
    when the payload is a target. A BIB sharing targets with the BCB must be one of its targets,
    and may only be one when all of its targets are (RFC 9172 §3.8, §3.9).
    """
    t, number, index = _check_add(
        bundle, targets, security_source, scope, flags or 0, crc_type, block_number, index, "BCB"
    )
    if flags is None:
        flags = int(BlockFlag.REPLICATE) if 1 in t else 0
    if aes_variant not in _AES_KEY_LENGTH:
        raise LocalError(f"BCB: unknown AES variant {aes_variant!r} (1 = A128GCM, 3 = A256GCM)")
    if not isinstance(iv, bytes | bytearray) or not _IV_MIN <= len(iv) <= _IV_MAX:
        raise LocalError(f"BCB: the IV must be {_IV_MIN} to {_IV_MAX} bytes (12 recommended)")
    iv = bytes(iv)
    key = _check_key(key, "the BCB key")
    cek = key if wrapped_key_cek is None else _check_key(wrapped_key_cek, "wrapped_key_cek")
    want = _AES_KEY_LENGTH[int(aes_variant)]
    if len(cek) != want:
        raise LocalError(
            f"BCB: the content-encryption key is {len(cek)} bytes; "
            f"{AesVariant(aes_variant).name} needs {want}"
        )
    if 1 in t and not flags & BlockFlag.REPLICATE:
        raise LocalError("BCB: a BCB targeting the payload must be replicated in every fragment")
    if flags & BlockFlag.DELETE_BLOCK_IF_UNPROCESSED:
        raise LocalError("BCB: a BCB must not have the 'remove block if unprocessed' flag")
    survey = _survey(bundle)
    for n in t:
        if n == 0:
            raise LocalError("BCB: a BCB must not target the primary block (RFC 9172 §3.8)")
        if _target_block(bundle, n).type == BlockType.BCB:
            raise LocalError(f"BCB: target {n} is a BCB (RFC 9172 §3.8)")
        if n in survey.encrypted:
            raise LocalError(f"BCB: block {n} is already encrypted by BCB {survey.encrypted[n]}")
    for bib_number, bib_asb in survey.bibs.items():
        shared = set(bib_asb.targets) & set(t)
        if not shared:
            if bib_number in t:
                raise LocalError(f"BCB: BIB {bib_number} shares no target with the BCB (RFC 9172 §3.8)")
        elif shared != set(bib_asb.targets):
            raise LocalError(
                f"BCB: BIB {bib_number} also protects blocks {sorted(set(bib_asb.targets) - shared)}"
                " that the BCB leaves in plaintext; RFC 9172 §3.9 would require splitting the BIB"
            )
        elif bib_number not in t:
            raise LocalError(
                f"BCB: BIB {bib_number} protects blocks the BCB encrypts, so the BCB must target "
                f"BIB {bib_number} too (RFC 9172 §3.9)"
            )
    params: list[tuple[int, CBORValue]] = [(_BCB_IV, iv), (_BCB_AES_VARIANT, int(aes_variant))]
    if wrapped_key_cek is not None:
        params.append((_BCB_WRAPPED_KEY, _wrap(key, cek)))
    params.append((_BCB_SCOPE, int(scope)))
    stripped = _strip_crcs(bundle, t)
    bcb = CanonicalBlock(BlockType.BCB, number, int(flags), int(crc_type), b"")
    gcm = AESGCM(cek)
    new_data: dict[int, bytes] = {}
    results = []
    for n in t:
        sealed = gcm.encrypt(iv, _target_block(stripped, n).data, aad(stripped, n, bcb, int(scope)))
        new_data[n] = sealed[:-_TAG_LENGTH]
        results.append(((_RESULT, sealed[-_TAG_LENGTH:]),))
    asb = AbstractSecurityBlock(
        t, BCB_AES_GCM, PARAMETERS_PRESENT, security_source, tuple(params), tuple(results)
    )
    encrypted = stripped.with_blocks(
        b._replace(data=new_data[b.number]) if b.number in new_data else b for b in stripped.blocks
    )
    return _insert(encrypted, bcb._replace(data=encode_asb(asb)), index)


class _BcbParams(NamedTuple):
    iv: bytes
    aes_variant: int
    wrapped_key: bytes | None
    scope: int


def _bcb_params(asb: AbstractSecurityBlock, block: int) -> _BcbParams:
    p = _pair_map(
        asb.parameters or (),
        (_BCB_IV, _BCB_AES_VARIANT, _BCB_WRAPPED_KEY, _BCB_SCOPE),
        "parameter",
        block,
    )
    if _BCB_IV not in p:
        raise SecurityError(f"BCB {block}: no initialization vector (parameter 1)", reason=_BAD, block=block)
    iv = _bytes_param(p[_BCB_IV], "the IV", block)
    if not _IV_MIN <= len(iv) <= _IV_MAX:
        raise SecurityError(
            f"BCB {block}: the IV is {len(iv)} bytes; RFC 9173 §4.3.1 allows 8 to 16",
            reason=_BAD,
            block=block,
        )
    variant = _uint_param(p.get(_BCB_AES_VARIANT, 3), "the AES variant", block)
    if variant not in _AES_KEY_LENGTH:
        raise SecurityError(
            f"BCB {block}: unknown AES variant {variant} (RFC 9173 defines 1 and 3)",
            reason=_UNKNOWN,
            block=block,
        )
    wrapped = p.get(_BCB_WRAPPED_KEY)
    scope = _uint_param(p.get(_BCB_SCOPE, SCOPE_ALL), "the AAD scope flags", block)
    return _BcbParams(
        iv,
        variant,
        None if wrapped is None else _bytes_param(wrapped, "the wrapped key", block),
        scope,
    )


def decrypt_bcb(
    bundle: Bundle,
    key: bytes | KeyLookup,
    *,
    required: bool = True,
) -> Bundle:
    """Decrypt every BCB the key applies to and remove it; return the plaintext bundle.

    ``key`` is the content-encryption key (or the key-encryption key, for BCBs with a wrapped
    key), or a function of (BCB block, its ASB) returning that key, or None to leave the BCB in
    place. Nothing is returned unless every target of every BCB processed authenticates. With
    ``required``, finding no BCB to decrypt raises (reason: missing security operation).

    Raises :class:`SecurityError`: failed security operation when a tag does not authenticate
    (wrong key, IV, ciphertext or AAD) or a key does not unwrap or has the wrong length, unknown
    security operation for another context or AES variant, and the reasons of
    :func:`check_security`. A payload that fails to decrypt means the bundle must be discarded
    (RFC 9172 §5.1.1); ``block`` on the error names the target.
    """
    lookup = _key_lookup(key)
    survey = _survey(bundle)
    plaintext: dict[int, bytes] = {}
    done: set[int] = set()
    for number, block, asb, k in _keyed(bundle, survey.bcbs, lookup, "BCB", BCB_AES_GCM):
        params = _bcb_params(asb, number)
        cek = k if params.wrapped_key is None else _unwrap(k, params.wrapped_key, number)
        want = _AES_KEY_LENGTH[params.aes_variant]
        if len(cek) != want:
            raise SecurityError(
                f"BCB {number}: the content-encryption key is {len(cek)} bytes but "
                f"{AesVariant(params.aes_variant).name} needs {want}",
                reason=_FAILED,
                block=number,
            )
        gcm = AESGCM(cek)
        for target, results in zip(asb.targets, asb.results, strict=True):
            tag = _single_result(results, target, number)
            if len(tag) != _TAG_LENGTH:
                raise SecurityError(
                    f"BCB {number}: the tag of target {target} is {len(tag)} bytes, not 16",
                    reason=_BAD,
                    block=number,
                )
            ciphertext = _target_block(bundle, target).data
            try:
                plaintext[target] = gcm.decrypt(
                    params.iv, ciphertext + tag, aad(bundle, target, block, params.scope)
                )
            except InvalidTag as exc:
                raise SecurityError(
                    f"block {target} encrypted by BCB {number} does not authenticate (wrong key, "
                    "or the ciphertext, IV, tag or authenticated headers were altered)",
                    reason=_FAILED,
                    block=target,
                ) from exc
        done.add(number)
    if required and not done:
        raise SecurityError("no BCB in the bundle could be decrypted with the key given", reason=_MISSING)
    return bundle.with_blocks(
        b._replace(data=plaintext[b.number]) if b.number in plaintext else b
        for b in bundle.blocks
        if b.number not in done
    )
