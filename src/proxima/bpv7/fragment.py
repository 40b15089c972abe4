"""Bundle fragmentation (RFC 9171 §5.8) and reassembly (§5.9).

A fragment is a copy of the bundle's primary block with IS_FRAGMENT set, the offset of its
payload within the original application data unit (ADU) and the ADU's total length, the blocks
the rules below place in it, and a contiguous slice of the payload. The fragment at offset 0 of
the bundle being fragmented carries every non-payload block; the others carry only the blocks
flagged "replicate in every fragment" (and, when the creation time is 0, the bundle age block
that every bundle with that creation time needs, §4.4.2). Fragmenting a fragment keeps offsets
relative to the original ADU and the original total length.

:class:`Reassembler` collects fragments in any order, keyed by (source, creation time,
sequence number), and returns the original bundle once the ADU is covered. Fragments of one
bundle must agree on the rest of the primary block too (destination, report-to, lifetime, flags
other than IS_FRAGMENT, total ADU length; the CRC type may differ). Everything here is pure: no
clock, so dropping stale partial bundles is the caller's job (:meth:`Reassembler.discard`).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Final

from proxima.bpv7 import _cbor
from proxima.bpv7.bundle import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    Reason,
    encode_bundle,
)
from proxima.bpv7.eid import EID
from proxima.errors import BundleError, Incomplete, LocalError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "FragmentKey",
    "Reassembler",
    "fragment_bundle",
    "fragment_key",
    "fragment_to_fit",
    "reassemble",
]

FragmentKey = tuple[EID, int, int]
"""What identifies the original bundle of a fragment: (source, creation time, sequence)."""

_BAD: Final = Reason.BLOCK_UNINTELLIGIBLE
_NOT_FRAGMENT: Final = ~int(BundleFlag.IS_FRAGMENT)


def fragment_key(bundle: Bundle) -> FragmentKey:
    """The key shared by every fragment of one original bundle."""
    p = bundle.primary
    return (p.source, p.creation_time, p.sequence)


# ---------------------------------------------------------------------------------------------
# Fragmentation.


def _check_fragmentable(bundle: Bundle) -> None:
    if bundle.primary.flags & BundleFlag.MUST_NOT_FRAGMENT:
        raise LocalError("the bundle has the 'must not fragment' flag set")
    if not bundle.blocks or bundle.blocks[-1].type != BlockType.PAYLOAD:
        raise LocalError("the bundle has no payload block (it must be the last block)")


class _Fragmenter:
    """What every fragment of one bundle shares: ADU position, and the blocks to place."""

    def __init__(self, bundle: Bundle) -> None:
        p = bundle.primary
        self.bundle = bundle
        self.payload = bundle.payload
        if p.flags & BundleFlag.IS_FRAGMENT:
            self.base = p.fragment_offset or 0
            self.total = p.total_adu_length if p.total_adu_length is not None else len(self.payload)
        else:
            self.base = 0
            self.total = len(self.payload)
        self.primary = p._replace(flags=p.flags | BundleFlag.IS_FRAGMENT)
        self.first_blocks = bundle.blocks[:-1]
        age_needed = p.creation_time == 0
        self.later_blocks = tuple(
            b
            for b in self.first_blocks
            if b.flags & BlockFlag.REPLICATE or (age_needed and b.type == BlockType.BUNDLE_AGE)
        )

    def make(self, start: int, length: int) -> Bundle:
        """The fragment holding ``payload[start:start + length]``."""
        primary = self.primary._replace(
            flags=int(self.primary.flags),
            fragment_offset=self.base + start,
            total_adu_length=self.total,
        )
        blocks = self.first_blocks if start == 0 else self.later_blocks
        pb = self.bundle.blocks[-1]._replace(data=self.payload[start : start + length])
        return Bundle(primary, (*blocks, pb))


def fragment_bundle(bundle: Bundle, max_fragment_payload: int) -> list[Bundle]:
    """Split ``bundle`` into fragments of at most ``max_fragment_payload`` payload bytes each.

    Raises :class:`LocalError` when the bundle must not be fragmented, when its payload already
    fits, or when ``max_fragment_payload`` is not a positive integer.
    """
    if isinstance(max_fragment_payload, bool) or not isinstance(max_fragment_payload, int):
        raise LocalError("max_fragment_payload must be an integer")
    if max_fragment_payload < 1:
        raise LocalError(f"max_fragment_payload must be at least 1, not {max_fragment_payload}")
    _check_fragmentable(bundle)
    n = len(bundle.payload)
    if n <= max_fragment_payload:
        raise LocalError(
            f"the payload ({n} bytes) already fits in {max_fragment_payload} bytes: "
            "nothing to fragment"
        )
    f = _Fragmenter(bundle)
    return [
        f.make(start, min(max_fragment_payload, n - start))
        for start in range(0, n, max_fragment_payload)
    ]


def _largest_payload(avail: int) -> int:
    """The largest ``k`` whose byte string (head + ``k`` bytes) takes at most ``avail`` bytes."""
    k = avail - 1
    while k > 0 and k + len(_cbor.bytes_head(k)) > avail:
        k -= 1
    return max(k, 0)


def fragment_to_fit(bundle: Bundle, max_bundle_bytes: int) -> list[Bundle]:
    """Split ``bundle`` so that each fragment's encoding takes at most ``max_bundle_bytes``.

    Fragments are as large as the budget allows, so there are as few as this greedy split
    gives. A bundle that already fits is returned alone, unchanged. Raises :class:`LocalError`
    when it does not fit and must not be fragmented, when it does not fit and its payload is
    empty (there is nothing to split), or when a fragment's blocks leave no room for a single
    payload byte.
    """
    if isinstance(max_bundle_bytes, bool) or not isinstance(max_bundle_bytes, int):
        raise LocalError("max_bundle_bytes must be an integer")
    size = len(encode_bundle(bundle))
    if size <= max_bundle_bytes:
        return [bundle]
    _check_fragmentable(bundle)
    f = _Fragmenter(bundle)
    n = len(f.payload)
    if n == 0:
        raise LocalError(
            f"the bundle takes {size} bytes, more than the budget of {max_bundle_bytes}, and its "
            "payload is empty: fragmenting cannot make it smaller"
        )
    fragments: list[Bundle] = []
    start = 0
    while start < n:
        empty = f.make(start, 0)
        base = len(encode_bundle(empty, check=False))  # includes the 1-byte head of b""
        k = min(_largest_payload(max_bundle_bytes - base + 1), n - start)
        if k < 1:
            where = "the first fragment" if start == 0 else f"the fragment at ADU offset {f.base + start}"
            raise LocalError(
                f"{where} needs {base} bytes before its payload: a budget of "
                f"{max_bundle_bytes} bytes leaves no room for payload"
            )
        fragments.append(f.make(start, k))
        start += k
    return fragments


# ---------------------------------------------------------------------------------------------
# Reassembly.


_SHARED_FIELDS: Final = (
    ("destination", "destination EID"),
    ("report_to", "report-to EID"),
    ("lifetime", "lifetime"),
)


def _disagreement(p: PrimaryBlock, ref: PrimaryBlock) -> str | None:
    """How fragment primary ``p`` contradicts ``ref`` from the same original bundle, or None.

    Fragments share every primary field of the original bundle except IS_FRAGMENT, fragment
    offset and CRC (a node may re-encode a fragment with another CRC type); the key fields
    (source, creation timestamp) are equal by construction, the total ADU length is checked
    on its own.
    """
    for attr, name in _SHARED_FIELDS:
        mine, theirs = getattr(p, attr), getattr(ref, attr)
        if mine != theirs:
            return f"{name} {mine}, but earlier fragments of the same bundle gave {theirs}"
    mine, theirs = p.flags & _NOT_FRAGMENT, ref.flags & _NOT_FRAGMENT
    if mine != theirs:
        return (
            f"bundle processing control flags 0x{mine:x} (IS_FRAGMENT aside), but earlier "
            f"fragments of the same bundle gave 0x{theirs:x}"
        )
    return None


class _Partial:
    """The received parts of one original bundle: disjoint payload pieces sorted by offset."""

    __slots__ = ("covered", "first_blocks", "first_primary", "pieces", "reference", "starts", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.reference: PrimaryBlock | None = None  # the first fragment's primary block
        self.starts: list[int] = []
        self.pieces: list[bytes] = []
        self.covered = 0
        self.first_primary: PrimaryBlock | None = None
        self.first_blocks: tuple[CanonicalBlock, ...] = ()

    @property
    def complete(self) -> bool:
        return self.covered == self.total and self.first_primary is not None

    def add(self, fragment: Bundle) -> None:
        """Merge a fragment; :class:`BundleError` if it contradicts what was received."""
        p = fragment.primary
        offset, total = p.fragment_offset, p.total_adu_length
        if offset is None or total is None:
            raise BundleError(
                "fragment without fragment offset or total ADU length", reason=_BAD, block=0
            )
        if total != self.total:
            raise BundleError(
                f"fragment at offset {offset} gives total ADU length {total}, but earlier "
                f"fragments of the same bundle gave {self.total}",
                reason=_BAD,
                block=0,
            )
        if self.reference is not None:
            clash = _disagreement(p, self.reference)
            if clash is not None:
                raise BundleError(f"fragment at offset {offset} gives {clash}", reason=_BAD, block=0)
        data = fragment.payload
        end = offset + len(data)
        if end > total:
            raise BundleError(
                f"fragment at offset {offset} with {len(data)} payload bytes ends past the "
                f"total ADU length {total}",
                reason=_BAD,
                block=0,
            )
        starts, pieces = self.starts, self.pieces
        i = bisect_right(starts, offset) - 1
        if i < 0 or starts[i] + len(pieces[i]) <= offset:
            i += 1
        j = i
        new_starts: list[int] = []
        new_pieces: list[bytes] = []
        view = memoryview(data)
        cursor = offset
        while j < len(starts) and starts[j] < end:
            s, piece = starts[j], pieces[j]
            e = s + len(piece)
            lo, hi = max(offset, s), min(end, e)
            if view[lo - offset : hi - offset] != memoryview(piece)[lo - s : hi - s]:
                raise BundleError(
                    f"fragment at offset {offset} overlaps bytes {lo}..{hi} already received "
                    "with different content",
                    reason=_BAD,
                    block=1,
                )
            if cursor < s:
                new_starts.append(cursor)
                new_pieces.append(data[cursor - offset : s - offset])
            new_starts.append(s)
            new_pieces.append(piece)
            cursor = max(cursor, e)
            j += 1
        if cursor < end:
            new_starts.append(cursor)
            new_pieces.append(data if cursor == offset else data[cursor - offset :])
        added = sum(map(len, new_pieces)) - sum(map(len, pieces[i:j]))
        starts[i:j] = new_starts
        pieces[i:j] = new_pieces
        self.covered += added
        if self.reference is None:
            self.reference = p
        if offset == 0 and self.first_primary is None:
            self.first_primary = p
            self.first_blocks = (*fragment.blocks[:-1], fragment.blocks[-1]._replace(data=b""))

    def gaps(self) -> list[tuple[int, int]]:
        """The ranges ``(start, end)`` of the ADU not yet received."""
        out: list[tuple[int, int]] = []
        cursor = 0
        for s, piece in zip(self.starts, self.pieces, strict=True):
            if s > cursor:
                out.append((cursor, s))
            cursor = s + len(piece)
        if cursor < self.total:
            out.append((cursor, self.total))
        return out

    def build(self) -> Bundle:
        """The reassembled bundle (call only when :attr:`complete`)."""
        p = self.first_primary
        if p is None:
            raise LocalError("no fragment at offset 0 received yet")
        primary = p._replace(
            flags=p.flags & _NOT_FRAGMENT, fragment_offset=None, total_adu_length=None
        )
        pb = self.first_blocks[-1]._replace(data=b"".join(self.pieces))
        return Bundle(primary, (*self.first_blocks[:-1], pb))


def _require_fragment(bundle: Bundle) -> None:
    if not bundle.primary.flags & BundleFlag.IS_FRAGMENT:
        raise LocalError("not a fragment: the 'is fragment' flag is clear")


class Reassembler:
    """Collects fragments and rebuilds their original bundles (RFC 9171 §5.9).

    :meth:`add` returns the reassembled bundle when its last missing part arrives and forgets
    it; a fragment arriving later starts a new partial bundle. Memory held is the distinct
    payload bytes received: whole payloads are kept without copying, overlaps only once.

    Two limits bound it, both refusing the fragment with :class:`BundleError`, reason
    "depleted storage" (so the caller can delete the fragment and report why, as for any
    fragment it cannot keep), and keeping what was received before:

    * ``max_adu_length``: fragments announcing a larger ADU are refused;
    * ``max_pending``: at most this many partial bundles are held. A fragment that would start
      one more is refused (one that completes its bundle on its own is still returned); the
      partial bundles already held are never evicted to make room, since which to drop is the
      caller's policy (:meth:`discard`, e.g. when a lifetime expires).
    """

    def __init__(self, *, max_adu_length: int | None = None, max_pending: int | None = None) -> None:
        for name, limit, least in (("max_adu_length", max_adu_length, 0), ("max_pending", max_pending, 1)):
            if limit is not None and (type(limit) is not int or limit < least):
                raise LocalError(f"{name} must be None or an integer of at least {least}, not {limit!r}")
        self._partials: dict[FragmentKey, _Partial] = {}
        self.max_adu_length = max_adu_length
        self.max_pending = max_pending

    def add(self, fragment: Bundle) -> Bundle | None:
        """Take in a fragment; return the original bundle if it is now complete.

        Raises :class:`BundleError` (and keeps what was received before) when the fragment
        contradicts earlier ones: another total ADU length, destination, report-to EID,
        lifetime or flags, or different bytes for a range already received; or, with reason
        "depleted storage", when it exceeds ``max_adu_length`` or ``max_pending``. Exact
        duplicates and consistent overlaps are accepted.
        """
        _require_fragment(fragment)
        key = fragment_key(fragment)
        partial = self._partials.get(key)
        if partial is None:
            total = fragment.primary.total_adu_length
            if total is None:
                raise BundleError("fragment without total ADU length", reason=_BAD, block=0)
            if self.max_adu_length is not None and total > self.max_adu_length:
                raise BundleError(
                    f"fragment announces an ADU of {total} bytes; at most {self.max_adu_length} "
                    "are reassembled here",
                    reason=Reason.DEPLETED_STORAGE,
                    block=0,
                )
            partial = _Partial(total)
            partial.add(fragment)
            if partial.complete:
                return partial.build()
            if self.max_pending is not None and len(self._partials) >= self.max_pending:
                raise BundleError(
                    f"fragment of {key[0]} {key[1]}/{key[2]} would start partial bundle number "
                    f"{len(self._partials) + 1}; at most {self.max_pending} are held here",
                    reason=Reason.DEPLETED_STORAGE,
                    block=0,
                )
            self._partials[key] = partial
        else:
            partial.add(fragment)
        if partial.complete:
            del self._partials[key]
            return partial.build()
        return None

    def missing(self, key: FragmentKey) -> list[tuple[int, int]]:
        """The ADU ranges ``(start, end)`` still missing for ``key`` ([] if it is not pending)."""
        partial = self._partials.get(key)
        return partial.gaps() if partial is not None else []

    def received_bytes(self, key: FragmentKey) -> int:
        """How many distinct ADU bytes have been received for ``key``."""
        partial = self._partials.get(key)
        return partial.covered if partial is not None else 0

    def discard(self, key: FragmentKey) -> bool:
        """Forget a partial bundle (e.g. its lifetime expired); True if there was one."""
        return self._partials.pop(key, None) is not None

    def __contains__(self, key: object) -> bool:
        return key in self._partials

    def __len__(self) -> int:
        return len(self._partials)

    def __iter__(self) -> Iterator[FragmentKey]:
        return iter(list(self._partials))


def reassemble(fragments: Iterable[Bundle]) -> Bundle:
    """Rebuild the original bundle from its fragments, in any order, duplicates allowed.

    Raises :class:`LocalError` for no fragments, a bundle that is not a fragment, or fragments
    of different bundles; :class:`BundleError` when fragments contradict each other; and
    :class:`Incomplete` when parts of the ADU are missing.
    """
    partial: _Partial | None = None
    key: FragmentKey | None = None
    for fragment in fragments:
        _require_fragment(fragment)
        k = fragment_key(fragment)
        if partial is None or key is None:
            total = fragment.primary.total_adu_length
            if total is None:
                raise BundleError("fragment without total ADU length", reason=_BAD, block=0)
            partial, key = _Partial(total), k
        elif k != key:
            raise LocalError(
                f"fragments of different bundles: {k[0]} {k[1]}/{k[2]} and "
                f"{key[0]} {key[1]}/{key[2]}"
            )
        partial.add(fragment)
    if partial is None:
        raise LocalError("no fragments to reassemble")
    if not partial.complete:
        gaps = partial.gaps()
        missing = partial.total - partial.covered
        shown = ", ".join(f"{s}..{e}" for s, e in gaps[:5]) or "the fragment at offset 0"
        raise Incomplete(
            f"fragments cover {partial.covered} of {partial.total} ADU bytes; missing {shown}",
            needed=max(missing, 1),
        )
    return partial.build()
