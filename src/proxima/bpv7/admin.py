"""Administrative records of RFC 9171 §6.1: bundle status reports, and other records kept opaque.

An administrative record is the payload of a bundle whose ADMIN_RECORD flag is set: the CBOR
array ``[record type code, record content]``. Record type 1 is the bundle status report
(§6.1.1)::

    [ [received, forwarded, delivered, deleted, ...],   each item [true, time] / [true] / [false]
      reason code,
      subject source EID,
      [subject creation time, subject sequence number],
      subject fragment offset, subject payload length ]   (these two only when it is a fragment)

:func:`encode_admin_record` writes the deterministic (shortest-form, definite-length) encoding.
:func:`decode_admin_record` accepts any well-formed encoding, checks every field strictly and
raises :class:`BundleError` (reason "block unintelligible", block 1) naming the field at fault.
The status information array may hold more than the four items (RFC 9171 §6.1.1 says "at least
four"): the first four are decoded, the rest ignored, so such a report re-encodes with four.
Records of any other type decode to :class:`UnknownAdminRecord`, which keeps the content's
bytes as received so that they can be relayed or logged.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import cbor2

from proxima.bpv7 import _cbor
from proxima.bpv7.bundle import (
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    Reason,
    age_block,
    check_bundle,
    payload_block,
)
from proxima.bpv7.crc import CRCType
from proxima.bpv7.eid import DTN_NONE, EID, eid_from_cbor
from proxima.errors import BundleError, Incomplete, InvalidEndpointID, LocalError, ProtocolError

__all__ = [
    "NOT_ASSERTED",
    "RECORD_TYPE_STATUS_REPORT",
    "AdminRecord",
    "StatusItem",
    "StatusReport",
    "UnknownAdminRecord",
    "admin_record_of",
    "decode_admin_record",
    "encode_admin_record",
    "make_status_report_bundle",
    "status_report_of",
]

RECORD_TYPE_STATUS_REPORT: Final = 1
_U64_MAX: Final = (1 << 64) - 1
_BAD: Final = Reason.BLOCK_UNINTELLIGIBLE
_PAYLOAD: Final = 1  # block number of the payload block, which carries the record
_ITEM_NAMES: Final = ("received", "forwarded", "delivered", "deleted")
_KNOWN_REASONS: Final = frozenset(int(r) for r in Reason)


class StatusItem(NamedTuple):
    """One bundle status item: whether the status is asserted, and when (DTN ms) if reported."""

    asserted: bool = False
    time: int | None = None


NOT_ASSERTED: Final = StatusItem()


class StatusReport(NamedTuple):
    """A bundle status report (RFC 9171 §6.1.1) about the subject bundle it identifies.

    ``fragment_offset`` and ``fragment_length`` (the subject's payload length) are both set
    exactly when the subject is a fragment. ``reason`` is a :class:`Reason` when the code is
    known, else the plain integer received.
    """

    source: EID
    creation_time: int
    sequence: int
    received: StatusItem = NOT_ASSERTED
    forwarded: StatusItem = NOT_ASSERTED
    delivered: StatusItem = NOT_ASSERTED
    deleted: StatusItem = NOT_ASSERTED
    reason: int = Reason.NO_ADDITIONAL_INFORMATION
    fragment_offset: int | None = None
    fragment_length: int | None = None

    @property
    def items(self) -> tuple[StatusItem, StatusItem, StatusItem, StatusItem]:
        """The four status items in wire order: received, forwarded, delivered, deleted."""
        return (self.received, self.forwarded, self.delivered, self.deleted)

    @property
    def subject_id(self) -> tuple[EID, int, int, int | None, int | None]:
        """The subject bundle's identity, in the form of :attr:`Bundle.id`."""
        return (
            self.source,
            self.creation_time,
            self.sequence,
            self.fragment_offset,
            self.fragment_length,
        )


class UnknownAdminRecord(NamedTuple):
    """An administrative record of a type other than 1; ``content`` is its CBOR item's bytes."""

    record_type: int
    content: bytes


AdminRecord = StatusReport | UnknownAdminRecord


# ---------------------------------------------------------------------------------------------
# Encoding.


def _is_u64(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _U64_MAX


def _report_violation(r: StatusReport) -> str | None:
    """The first rule a status report value breaks, or None."""
    if not isinstance(r, StatusReport):
        return f"not a StatusReport: {type(r).__name__}"
    if not isinstance(r.source, EID):
        return "source must be an EID"
    for name in ("creation_time", "sequence", "reason"):
        if not _is_u64(getattr(r, name)):
            return f"{name} {getattr(r, name)!r} is not an unsigned 64-bit integer"
    for name, item in zip(_ITEM_NAMES, r.items, strict=True):
        if not isinstance(item, StatusItem) or type(item.asserted) is not bool:
            return f"{name}: must be a StatusItem with a bool 'asserted'"
        if item.time is not None:
            if not item.asserted:
                return f"{name}: a time is given but the status is not asserted"
            if not _is_u64(item.time):
                return f"{name}: time {item.time!r} is not an unsigned 64-bit integer"
    if (r.fragment_offset is None) != (r.fragment_length is None):
        return "fragment_offset and fragment_length must be given together (subject is a fragment)"
    for name in ("fragment_offset", "fragment_length"):
        v = getattr(r, name)
        if v is not None and not _is_u64(v):
            return f"{name} {v!r} is not an unsigned 64-bit integer"
    return None


_ITEM_FALSE: Final = b"\x81\xf4"
_ITEM_TRUE: Final = b"\x81\xf5"


def _encode_item(item: StatusItem) -> bytes:
    if not item.asserted:
        return _ITEM_FALSE
    if item.time is None:
        return _ITEM_TRUE
    return b"\x82\xf5" + _cbor.uint(item.time)


def _encode_status_report(r: StatusReport) -> bytes:
    frag = r.fragment_offset is not None and r.fragment_length is not None
    parts = [
        b"\x86" if frag else b"\x84",
        b"\x84",
        *(_encode_item(i) for i in r.items),
        _cbor.uint(int(r.reason)),
        r.source.cbor,
        b"\x82",
        _cbor.uint(r.creation_time),
        _cbor.uint(r.sequence),
    ]
    if r.fragment_offset is not None and r.fragment_length is not None:
        parts += [_cbor.uint(r.fragment_offset), _cbor.uint(r.fragment_length)]
    return b"".join(parts)


def encode_admin_record(record: AdminRecord) -> bytes:
    """The deterministic encoding of an administrative record; :class:`LocalError` if invalid."""
    if isinstance(record, UnknownAdminRecord):
        t, content = record.record_type, record.content
        if not _is_u64(t):
            raise LocalError(f"cannot encode: record type {t!r} is not an unsigned integer")
        if t == RECORD_TYPE_STATUS_REPORT:
            raise LocalError("cannot encode: record type 1 must be given as a StatusReport")
        if not isinstance(content, bytes):
            raise LocalError("cannot encode: record content must be the bytes of one CBOR item")
        try:
            end = _skip_any(content, 0, 0)
        except (Incomplete, ProtocolError) as exc:
            raise LocalError(f"cannot encode: record content is not one CBOR item: {exc}") from exc
        if end != len(content):
            raise LocalError(
                f"cannot encode: record content has {len(content) - end} bytes after its CBOR item"
            )
        return b"\x82" + _cbor.uint(t) + content
    v = _report_violation(record)
    if v is not None:
        raise LocalError(f"cannot encode status report: {v}")
    return b"\x82\x01" + _encode_status_report(record)


# ---------------------------------------------------------------------------------------------
# Decoding.


def _err(message: str) -> BundleError:
    return BundleError(message, reason=_BAD, block=_PAYLOAD)


_MAX_DEPTH: Final = 32


def _head(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """Parse the head at ``pos``: (major type, additional info, argument or -1, next position)."""
    if pos >= len(data):
        raise Incomplete("input ends before an item")
    ib = data[pos]
    major, info = ib >> 5, ib & 0x1F
    pos += 1
    if info < 24:
        return major, info, info, pos
    if info <= 27:
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise Incomplete("input ends inside an item's head", needed=pos + size - len(data))
        return major, info, int.from_bytes(data[pos : pos + size], "big"), pos + size
    if info == 31 and major in (2, 3, 4, 5):
        return major, info, -1, pos
    raise ProtocolError(f"reserved or misplaced CBOR additional information (byte 0x{ib:02x})")


def _skip_any(data: bytes, pos: int, depth: int) -> int:
    """The offset past the well-formed CBOR item at ``pos`` (RFC 8949 §3, any major type)."""
    if depth > _MAX_DEPTH:
        raise ProtocolError(f"CBOR items nested more than {_MAX_DEPTH} deep")
    major, info, arg, pos = _head(data, pos)
    if major in (0, 1):
        return pos
    if major in (2, 3):
        if arg >= 0:
            if pos + arg > len(data):
                raise Incomplete("input ends inside a string", needed=pos + arg - len(data))
            return pos + arg
        while True:
            if pos >= len(data):
                raise Incomplete("input ends inside an indefinite-length string")
            if data[pos] == 0xFF:
                return pos + 1
            if data[pos] >> 5 != major or data[pos] & 0x1F == 31:
                raise ProtocolError("bad chunk in an indefinite-length string")
            pos = _skip_any(data, pos, depth + 1)
    if major in (4, 5):
        per = 1 if major == 4 else 2
        if arg >= 0:
            for _ in range(arg * per):
                pos = _skip_any(data, pos, depth + 1)
            return pos
        while True:
            if pos >= len(data):
                raise Incomplete("input ends inside an indefinite-length array or map")
            if data[pos] == 0xFF:
                return pos + 1
            for _ in range(per):
                pos = _skip_any(data, pos, depth + 1)
    if major == 6:
        return _skip_any(data, pos, depth + 1)
    # Major type 7: simple values and floats.
    if info == 24 and arg < 32:
        raise ProtocolError(f"two-byte encoding of simple value {arg} is not well-formed")
    return pos


def _items_of(data: bytes, what: str) -> list[tuple[int, int]]:
    """The (start, end) of each item of the array that fills ``data``; errors name ``what``."""
    major, _info, arg, pos = _head(data, 0)
    if major != 4:
        raise _err(f"{what} must be a CBOR array, not major type {major}")
    spans: list[tuple[int, int]] = []
    if arg >= 0:
        for _ in range(arg):
            end = _skip_any(data, pos, 1)
            spans.append((pos, end))
            pos = end
    else:
        while data[pos] != 0xFF:
            end = _skip_any(data, pos, 1)
            spans.append((pos, end))
            pos = end
    return spans


def decode_admin_record(data: bytes | bytearray | memoryview) -> AdminRecord:
    """Decode an administrative record (a bundle's whole payload).

    Raises :class:`BundleError` naming the field at fault when the bytes are truncated,
    malformed, followed by other bytes, or break a rule of RFC 9171 §6.1.
    """
    data = bytes(data)
    if not data:
        raise _err("administrative record is empty: expected [record type, content]")
    try:
        end = _skip_any(data, 0, 0)
    except Incomplete as exc:
        raise _err(f"administrative record is truncated: {exc}") from exc
    except ProtocolError as exc:
        raise _err(f"administrative record is malformed CBOR: {exc}") from exc
    if end != len(data):
        raise _err(f"administrative record has {len(data) - end} trailing bytes after its array")
    spans = _items_of(data, "administrative record")
    if len(spans) != 2:
        raise _err(f"administrative record has {len(spans)} items; it must be [record type, content]")
    (ts, te), (cs, ce) = spans
    major, _info, record_type, pos = _head(data, ts)
    if major != 0 or pos != te:
        raise _err("administrative record: the record type code must be an unsigned integer")
    content = data[cs:ce]
    if record_type != RECORD_TYPE_STATUS_REPORT:
        return UnknownAdminRecord(record_type, content)
    return _decode_status_report(content)


def _uint(v: object, what: str) -> int:
    if type(v) is not int or not 0 <= v <= _U64_MAX:
        raise _err(f"status report: {what} must be an unsigned integer, not {v!r:.40}")
    return v


def _decode_item(v: object, name: str) -> StatusItem:
    what = f"status report: '{name}' status item"
    if type(v) is not list or not 1 <= len(v) <= 2:
        raise _err(f"{what} must be [asserted] or [asserted, time], not {v!r:.40}")
    asserted = v[0]
    if type(asserted) is not bool:
        raise _err(f"{what}: the status indicator must be a CBOR boolean, not {asserted!r:.20}")
    if len(v) == 1:
        return StatusItem(asserted)
    if not asserted:
        raise _err(f"{what}: a time is present but the status is not asserted (RFC 9171 §6.1.1)")
    return StatusItem(True, _uint(v[1], f"'{name}' status time"))


def _decode_status_report(content: bytes) -> StatusReport:
    try:
        _cbor.skip(content, 0, what="status report")
    except ProtocolError as exc:
        raise _err(f"status report: {exc}") from exc
    try:
        v: Any = cbor2.loads(content)
    except Exception as exc:  # any failure of the C decoder is the data's fault
        raise _err(f"status report is not valid CBOR: {exc}") from exc
    if type(v) is not list:
        raise _err("status report must be a CBOR array")
    if len(v) not in (4, 6):
        raise _err(f"status report has {len(v)} items; it must have 4, or 6 when the subject is a fragment")
    info = v[0]
    # RFC 9171 §6.1.1: "a CBOR array of at least 4 elements"; the first four are the received,
    # forwarded, delivered and deleted items. Later elements (status assertions a future
    # revision may define) are ignored; like the rest of the report they must be well-formed
    # CBOR of the kinds bundles use (checked by _cbor.skip above).
    if type(info) is not list or len(info) < 4:
        raise _err(
            "status report: the bundle status information must be an array of at least 4 status "
            "items (received, forwarded, delivered, deleted)"
        )
    received, forwarded, delivered, deleted = (
        _decode_item(x, n) for x, n in zip(info[:4], _ITEM_NAMES, strict=True)
    )
    reason = _uint(v[1], "the reason code")
    try:
        source = eid_from_cbor(v[2])
    except InvalidEndpointID as exc:
        raise _err(f"status report: subject source EID: {exc}") from exc
    ts = v[3]
    if type(ts) is not list or len(ts) != 2:
        raise _err("status report: subject creation timestamp must be [time, sequence number]")
    creation_time = _uint(ts[0], "subject creation time")
    sequence = _uint(ts[1], "subject sequence number")
    offset = length = None
    if len(v) == 6:
        offset = _uint(v[4], "subject fragment offset")
        length = _uint(v[5], "subject payload length")
    return StatusReport(
        source,
        creation_time,
        sequence,
        received,
        forwarded,
        delivered,
        deleted,
        Reason(reason) if reason in _KNOWN_REASONS else reason,
        offset,
        length,
    )


# ---------------------------------------------------------------------------------------------
# Bundles carrying administrative records.


def admin_record_of(bundle: Bundle) -> AdminRecord:
    """The administrative record a bundle carries.

    Raises :class:`BundleError` when the bundle is not an administrative record or its record
    is invalid, and :class:`LocalError` for a fragment (reassemble it first).
    """
    p = bundle.primary
    if not p.flags & BundleFlag.ADMIN_RECORD:
        raise BundleError(
            f"bundle from {p.source} ({p.creation_time}, {p.sequence}) is not an "
            "administrative record (ADMIN_RECORD flag clear)"
        )
    if p.flags & BundleFlag.IS_FRAGMENT:
        raise LocalError("the bundle is a fragment of an administrative record: reassemble it first")
    return decode_admin_record(bundle.payload)


def status_report_of(bundle: Bundle) -> StatusReport:
    """The bundle status report a bundle carries; :class:`BundleError` if it carries none."""
    record = admin_record_of(bundle)
    if not isinstance(record, StatusReport):
        raise BundleError(
            f"administrative record of type {record.record_type} is not a bundle status report (type 1)"
        )
    return record


def make_status_report_bundle(
    subject: Bundle,
    *,
    report_source: EID,
    received_at: int | None = None,
    forwarded_at: int | None = None,
    delivered_at: int | None = None,
    deleted_at: int | None = None,
    reason: int = Reason.NO_ADDITIONAL_INFORMATION,
    now_ms: int,
    sequence: int,
    lifetime_ms: int = 86_400_000,
    crc_type: int = CRCType.CRC32C,
    payload_length: int | None = None,
) -> Bundle:
    """A bundle carrying a status report about ``subject``, addressed to its report-to EID.

    Each ``*_at`` given (DTN ms) asserts that status; its time is reported only when the
    subject has STATUS_TIME_REQUESTED. Several statuses may be asserted at once. The report
    bundle has only the ADMIN_RECORD flag, report-to ``dtn:none``, creation time ``now_ms``
    (with a bundle age block of 0 when ``now_ms`` is 0) and ``crc_type`` on both blocks.
    Whether a report was requested is the caller's policy. ``payload_length`` is the subject's
    when its payload block was left empty (its payload kept in a file): a fragment's report
    names its real length. Raises :class:`LocalError` when
    nothing is asserted, the subject's report-to is ``dtn:none``, the subject is itself an
    administrative record, or an argument is invalid.
    """
    p = subject.primary
    if p.report_to.is_none:
        raise LocalError("the subject's report-to EID is dtn:none: there is nowhere to report to")
    if p.flags & BundleFlag.ADMIN_RECORD:
        raise LocalError("no status report is generated about an administrative record")
    if not isinstance(report_source, EID) or report_source.is_none:
        raise LocalError("report_source must be the reporting node's ID, not dtn:none")
    times = (received_at, forwarded_at, delivered_at, deleted_at)
    if all(t is None for t in times):
        raise LocalError("a status report must assert at least one status")
    for name, t in zip(_ITEM_NAMES, times, strict=True):
        if t is not None and not _is_u64(t):
            raise LocalError(f"{name}_at {t!r} is not a DTN time (unsigned 64-bit milliseconds)")
    with_time = bool(p.flags & BundleFlag.STATUS_TIME_REQUESTED)
    received, forwarded, delivered, deleted = (
        NOT_ASSERTED if t is None else StatusItem(True, t if with_time else None) for t in times
    )
    frag = p.is_fragment
    report = StatusReport(
        p.source,
        p.creation_time,
        p.sequence,
        received,
        forwarded,
        delivered,
        deleted,
        reason,
        p.fragment_offset if frag else None,
        (len(subject.payload) if payload_length is None else payload_length) if frag else None,
    )
    record = encode_admin_record(report)
    blocks: list[CanonicalBlock] = []
    if now_ms == 0:
        blocks.append(age_block(0, number=2, crc_type=crc_type))
    blocks.append(payload_block(record, crc_type=crc_type))
    bundle = Bundle(
        PrimaryBlock(
            destination=p.report_to,
            source=report_source,
            report_to=DTN_NONE,
            creation_time=now_ms,
            sequence=sequence,
            lifetime=lifetime_ms,
            flags=int(BundleFlag.ADMIN_RECORD),
            crc_type=crc_type,
        ),
        tuple(blocks),
    )
    check_bundle(bundle)
    return bundle
