"""The bundle protocol agent (RFC 9171 §5), without I/O.

The agent decides; the runtime acts. Every call takes the time as ``now_ms`` (DTN milliseconds)
and returns :data:`Action` values: persist or forget a bundle, deliver one to a local
endpoint. Bundles waiting for a next hop sit in per-peer queues ordered by class of service
(status reports, then small posts, then bulk media), and the runtime pulls them with
:meth:`BundleAgent.next_to_send` when a convergence-layer session can take one; it reports the
outcome with :meth:`BundleAgent.transmitted` or :meth:`BundleAgent.transmit_failed`.

A bundle is only forgotten (``Unpersist``) once it was delivered, handed to the next hop (the
CLA acknowledged it), or deleted with a reason; the runtime makes ``Persist`` durable before
acknowledging the bundle to whoever sent it.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Final, NamedTuple

from proxima.bpv7 import _cbor
from proxima.bpv7.admin import make_status_report_bundle
from proxima.bpv7.bundle import (
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    Reason,
    age_block,
    bundle_age_of,
    bundle_identity,
    decode_block_data,
    decode_bundle,
    encode_block,
    encode_bundle,
    encode_primary,
    hop_count_of,
    payload_block,
    process_unknown_blocks,
)
from proxima.bpv7.eid import DTN_NONE, EID
from proxima.bpv7.fragment import Reassembler, fragment_to_fit
from proxima.bpv7.stream import PayloadCRC, encode_bundle_head
from proxima.errors import BundleError, Incomplete, LocalError, ProximaError

if TYPE_CHECKING:
    from proxima.agent.routing import Router

__all__ = [
    "CLASS_ADMIN",
    "CLASS_BULK",
    "CLASS_EXPEDITED",
    "Action",
    "AgentCounters",
    "BundleAgent",
    "Deliver",
    "Persist",
    "Transmit",
    "Unpersist",
]

CLASS_BULK: Final = 0
CLASS_EXPEDITED: Final = 1
CLASS_ADMIN: Final = 2
SMALL_PAYLOAD: Final = 64 * 1024
"""Payloads up to this size (a text post, a status report) go before bulk media by default."""

Identity = tuple[EID, int, int, int | None, int | None]

# Bundle flags as plain ints: ``int & IntFlag`` builds an enum member, costly once per bundle.
_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (a frame per bundle)
_ADMIN_RECORD: Final = int(BundleFlag.ADMIN_RECORD)
_IS_FRAGMENT: Final = int(BundleFlag.IS_FRAGMENT)
_MUST_NOT_FRAGMENT: Final = int(BundleFlag.MUST_NOT_FRAGMENT)
_REPORT_RECEPTION: Final = int(BundleFlag.REPORT_RECEPTION)
_REPORT_DELIVERY: Final = int(BundleFlag.REPORT_DELIVERY)
_REPORT_FORWARDING: Final = int(BundleFlag.REPORT_FORWARDING)
_REPORT_DELETION: Final = int(BundleFlag.REPORT_DELETION)


WIRE_BUDGET: Final = 16 * 1024 * 1024
"""Bytes of originated bundles' encodings kept for their first hop at most (beyond, the
first hop encodes the bundle again, as every later hop does)."""


class Persist(NamedTuple):
    """Store this accepted bundle durably under ``key`` before acknowledging it to its sender."""

    key: int
    bundle: Bundle
    identity: Identity
    expiry_ms: int
    klass: int
    received_ms: int
    data: bytes | None = None
    """The bundle's encoding when the agent already made it (saves the runtime encoding it)."""


class Unpersist(NamedTuple):
    """Forget the stored bundle ``key``; ``reason`` is a status report reason code (0 when it
    left normally: delivered or forwarded)."""

    key: int
    reason: int


class Deliver(NamedTuple):
    """Hand ``bundle`` (complete, reassembled if it was fragmented) to the application registered
    on ``endpoint``. ``identity`` and ``expiry_ms`` let the runtime remember the delivery so a
    retransmitted copy is never delivered twice, even after a restart.

    ``report`` says the bundle asks for a delivery status report: the runtime calls
    :meth:`BundleAgent.report_delivered` once the application actually has it (RFC 9171 §5.7),
    which may be long after, when the application takes its bundles.
    """

    endpoint: EID
    bundle: Bundle
    identity: Identity
    expiry_ms: int
    report: bool = False


class Transmit(NamedTuple):
    """Send these bytes (the bundle as it leaves this node) to ``peer``.

    When ``external`` is true the bundle's payload is not in memory: ``data`` is the bundle up
    to its payload block, and the runtime sends the stored payload block (from its first byte to
    the bundle's end, unchanged: its CRC covers only itself) after it.
    """

    key: int
    peer: EID
    data: bytes
    klass: int
    external: bool = False


Action = Persist | Unpersist | Deliver


_COUNTERS: Final = (
    "deleted",
    "delivered",
    "duplicates",
    "forwarded",
    "fragmented",
    "invalid",
    "originated",
    "received",
    "reports_sent",
)


class AgentCounters:
    """What the agent has done, for ``node status``."""

    __slots__ = _COUNTERS

    def __init__(self) -> None:
        self.received = self.delivered = self.forwarded = self.deleted = 0
        self.duplicates = self.invalid = self.originated = self.reports_sent = 0
        self.fragmented = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {name: getattr(self, name) for name in _COUNTERS}


class _Held:
    """A bundle the agent is responsible for."""

    __slots__ = (
        "bundle",
        "expiry_ms",
        "external",
        "identity",
        "key",
        "klass",
        "peer",
        "received_ms",
        "size",
        "wire",
        "wire_split",
    )

    def __init__(
        self,
        key: int,
        bundle: Bundle,
        identity: Identity,
        expiry_ms: int,
        klass: int,
        received_ms: int,
        external: bool = False,
    ) -> None:
        self.key = key
        self.bundle = bundle
        self.identity = identity
        self.expiry_ms = expiry_ms
        self.klass = klass
        self.received_ms = received_ms
        self.external = external  # the payload stays in the runtime's store, not in ``bundle``
        self.peer: EID | None = None  # the next hop it is queued for, or in flight to
        self.size = 0  # its encoded size (estimated), for routers that book contact volume
        # An originated bundle's encoding kept for its first hop, and where the previous node
        # block goes in it (after the primary block): see BundleAgent.send.
        self.wire: bytes | None = None
        self.wire_split = 0


def expiry_of(bundle: Bundle, received_ms: int) -> int:
    """When the bundle's lifetime ends, in DTN ms (RFC 9171 §4.3.1, §4.4.2)."""
    p = bundle.primary
    if p.creation_time:
        return p.creation_time + p.lifetime
    age = bundle_age_of(bundle) or 0
    return received_ms - age + p.lifetime


_BLOCK_OVERHEAD: Final = 12  # a canonical block's array head, type, number, flags, CRC type, CRC-32, head
_PRIMARY_OVERHEAD: Final = 40  # a primary block's fields other than its EIDs, with a CRC-32


def estimated_size(bundle: Bundle, payload_length: int | None = None) -> int:
    """The bundle's encoded size, estimated without encoding it (within a few bytes): for the
    volume a contact has left. ``payload_length`` is given for a payload kept outside ``bundle``."""
    p = bundle.primary
    size = 2 + _PRIMARY_OVERHEAD + len(p.destination.cbor) + len(p.source.cbor) + len(p.report_to.cbor)
    for b in bundle.blocks[:-1]:
        size += _BLOCK_OVERHEAD + len(b.data)
    payload = len(bundle.payload) if payload_length is None else payload_length
    return size + _BLOCK_OVERHEAD + payload


def default_class(bundle: Bundle, payload_length: int | None = None) -> int:
    """Status reports first, then small payloads (posts), then bulk media.

    ``payload_length`` is given for a bundle whose payload is kept outside ``bundle``.
    """
    if bundle.primary.flags & _ADMIN_RECORD:
        return CLASS_ADMIN
    if bundle.primary.flags & _IS_FRAGMENT:
        total = bundle.primary.total_adu_length or 0
        return CLASS_EXPEDITED if total <= SMALL_PAYLOAD else CLASS_BULK
    size = len(bundle.payload) if payload_length is None else payload_length
    return CLASS_EXPEDITED if size <= SMALL_PAYLOAD else CLASS_BULK


class BundleAgent:
    """A node's bundle protocol agent: pure, deterministic, driven by the caller's clock."""

    def __init__(
        self,
        node_id: EID,
        router: Router,
        *,
        endpoints: tuple[EID, ...] = (),
        next_sequence: int = 0,
        last_created: tuple[int, int] | None = None,
        report_lifetime_ms: int = 86_400_000,
        crc_type: int = 2,
    ) -> None:
        if node_id.is_none:
            raise LocalError("a node needs a node ID other than dtn:none")
        self.node_id = node_id.node_id
        self.router = router
        self.crc_type = crc_type
        self.report_lifetime_ms = report_lifetime_ms
        self.counters = AgentCounters()
        self._endpoints: set[EID] = {self.node_id, *endpoints}
        self._held: dict[int, _Held] = {}
        self._by_identity: dict[Identity, int] = {}
        self._delivered: dict[Identity, int] = {}  # identity -> expiry, for duplicate suppression
        self._queues: dict[EID, list[tuple[int, int, int]]] = {}  # peer -> heap(-class, key, key)
        self._waiting: set[int] = set()  # keys with no next hop yet
        self._reassembler = Reassembler()
        self._fragments: dict[tuple[EID, int, int], list[int]] = {}
        self._next_key = 1
        self._last_created = (0, next_sequence - 1) if last_created is None else last_created
        self.links_up: set[EID] = set()
        self._wire_bytes = 0  # held encodings kept for a first hop (bounded by WIRE_BUDGET)
        self._prev_block: bytes | None = None  # this node's previous node block, number 2

    # -- registration and restart --------------------------------------------------------------

    @property
    def endpoints(self) -> frozenset[EID]:
        """The endpoints this node delivers to (its node ID always among them)."""
        return frozenset(self._endpoints)

    def is_local(self, destination: EID) -> bool:
        """Whether bundles for ``destination`` are delivered here (an endpoint of this node)."""
        return destination in self._endpoints or destination.node_id == self.node_id

    def register(self, endpoint: EID) -> None:
        """Deliver bundles for ``endpoint`` here from now on."""
        if endpoint.is_none:
            raise LocalError("cannot register dtn:none")
        self._endpoints.add(endpoint)

    def unregister(self, endpoint: EID) -> None:
        """Stop delivering for ``endpoint`` (bundles for it are then forwarded or held)."""
        if endpoint != self.node_id:
            self._endpoints.discard(endpoint)

    def remember_delivered(self, identity: Identity, expiry_ms: int) -> None:
        """On restart: a bundle with this identity was already delivered; never deliver it again."""
        self._delivered[identity] = expiry_ms

    def restore(
        self,
        data: bytes,
        *,
        received_ms: int,
        klass: int | None = None,
        now_ms: int | None = None,
        actions: list[Action] | None = None,
    ) -> int:
        """On restart: take back a stored bundle without re-reporting its reception; returns
        its new key, which the runtime gives its stored copy.

        Placing it again may delete it (a route gone, its hop limit) or deliver it; those
        actions are appended to ``actions`` for the runtime to apply.
        """
        return self.restore_bundle(
            decode_bundle(data), received_ms=received_ms, klass=klass, now_ms=now_ms, actions=actions
        )

    def restore_bundle(
        self,
        bundle: Bundle,
        *,
        received_ms: int,
        klass: int | None = None,
        now_ms: int | None = None,
        actions: list[Action] | None = None,
        payload_length: int | None = None,
    ) -> int:
        """:meth:`restore` for a bundle already decoded; ``payload_length`` marks one whose
        payload stays in the runtime's store (``bundle`` then has an empty payload block)."""
        held = self._hold(bundle, received_ms, klass, payload_length)
        self._place(held, received_ms if now_ms is None else now_ms, [] if actions is None else actions)
        return held.key

    def resume_timestamps(self, last: tuple[int, int]) -> None:
        """On restart: the last (creation time, sequence) this node used, so none repeats."""
        self._last_created = max(self._last_created, last)

    @property
    def sequence_state(self) -> tuple[int, int]:
        """The (creation time, sequence) last used, for the runtime to persist."""
        return self._last_created

    # -- origination ---------------------------------------------------------------------------

    def send(
        self,
        destination: EID,
        payload: bytes,
        *,
        now_ms: int,
        source: EID | None = None,
        lifetime_ms: int = 86_400_000,
        report_to: EID = DTN_NONE,
        flags: int = 0,
        klass: int | None = None,
    ) -> tuple[Bundle, list[Action]]:
        """Originate a bundle from a local application (RFC 9171 §5.2).

        ``now_ms`` 0 means this node has no accurate clock: the bundle then carries a bundle
        age block. Creation timestamps never repeat: the sequence number counts up within
        the same millisecond (and across restarts, from ``next_sequence``).
        """
        bundle = self._new_bundle(destination, payload, now_ms, source, lifetime_ms, report_to, flags)
        data = encode_bundle(bundle)  # refuse a bundle that breaks a rule, with a LocalError
        self.counters.originated += 1
        actions: list[Action] = []
        held = self._hold(bundle, now_ms, klass)
        held.size = len(data)
        actions.append(self._persist_action(held, data))
        self._place(held, now_ms, actions)
        if (
            len(bundle.blocks) == 1
            and held.peer is not None
            and held.peer in self.links_up
            and self._wire_bytes + len(data) <= WIRE_BUDGET
            and held.key in self._held
        ):
            # About to leave over an up link: keep the encoding, and the first hop only adds
            # the previous node block to it instead of encoding the bundle again.
            held.wire = data
            held.wire_split = 1 + len(encode_primary(bundle.primary))
            self._wire_bytes += len(data)
        return bundle, actions

    def prepare(
        self,
        destination: EID,
        payload_length: int,
        *,
        now_ms: int,
        source: EID | None = None,
        lifetime_ms: int = 86_400_000,
        report_to: EID = DTN_NONE,
        flags: int = 0,
    ) -> tuple[Bundle, bytes, PayloadCRC]:
        """The first step of originating a bundle too large to hold: its creation timestamp
        (never reused), every rule checked, and its encoding up to the payload data.

        The runtime writes that head, the payload (feeding it to the returned CRC) and
        ``crc.trailer()`` to its store, then calls :meth:`originate`. The returned bundle has an
        empty payload block.
        """
        bundle = self._new_bundle(destination, b"", now_ms, source, lifetime_ms, report_to, flags)
        head, crc = encode_bundle_head(bundle.primary, bundle.blocks, payload_length)
        return bundle, head, crc

    def _new_bundle(
        self,
        destination: EID,
        payload: bytes,
        now_ms: int,
        source: EID | None,
        lifetime_ms: int,
        report_to: EID,
        flags: int,
    ) -> Bundle:
        """A bundle this node originates, with a creation timestamp never used before (and a
        bundle age block when the node has no accurate clock)."""
        src = self.node_id if source is None else source
        created, seq = self._timestamp(now_ms)
        blocks: list[CanonicalBlock] = []
        if created == 0:
            blocks.append(age_block(0, number=2, crc_type=self.crc_type))
        blocks.append(payload_block(payload, crc_type=self.crc_type))
        if src.is_none:
            flags |= _MUST_NOT_FRAGMENT
        primary: PrimaryBlock = _new(
            PrimaryBlock,
            (destination, src, report_to, created, seq, lifetime_ms, int(flags), self.crc_type, None, None),
        )
        bundle: Bundle = _new(Bundle, (primary, tuple(blocks)))
        return bundle

    def originate(
        self, bundle: Bundle, *, now_ms: int, payload_length: int, klass: int | None = None
    ) -> list[Action]:
        """The second step after :meth:`prepare`: the runtime has stored the bundle; take charge
        of it. The ``Persist`` returned refers to that stored copy (nothing more to write)."""
        self.counters.originated += 1
        actions: list[Action] = []
        held = self._hold(bundle, now_ms, klass, payload_length)
        actions.append(self._persist_action(held))
        self._place(held, now_ms, actions)
        return actions

    def _timestamp(self, now_ms: int) -> tuple[int, int]:
        last_t, last_seq = self._last_created
        if now_ms == 0 or now_ms <= last_t:
            created, seq = (0 if now_ms == 0 else last_t), last_seq + 1
        else:
            created, seq = now_ms, 0
        self._last_created = (created, seq)
        return created, seq

    # -- reception ---------------------------------------------------------------------------

    def receive(self, data: bytes, *, now_ms: int, from_peer: EID | None = None) -> list[Action]:
        """Process a bundle received from a convergence layer (RFC 9171 §5.6).

        Raises :class:`BundleError` (or :class:`Incomplete`) for bytes that are not a valid
        bundle: nothing is kept then, and the CLA may refuse the transfer.
        """
        try:
            bundle = decode_bundle(data)
        except (BundleError, Incomplete):
            self.count_invalid()
            raise
        return self.receive_bundle(bundle, now_ms=now_ms)

    def count_invalid(self) -> None:
        """Count a received bundle that could not be decoded (the caller decoded it itself)."""
        self.counters.received += 1
        self.counters.invalid += 1

    def receive_bundle(
        self, bundle: Bundle, *, now_ms: int, payload_length: int | None = None
    ) -> list[Action]:
        """:meth:`receive` for a bundle already decoded.

        ``payload_length`` marks a bundle whose payload the runtime keeps in its store (it
        arrived too large to hold): ``bundle`` then has an empty payload block, and the
        ``Persist`` returned refers to the copy the runtime already stored.
        """
        self.counters.received += 1
        actions: list[Action] = []
        identity = bundle_identity(bundle, payload_length)
        if identity in self._by_identity or identity in self._delivered:
            self.counters.duplicates += 1
            return actions
        flags = bundle.primary.flags
        outcome = process_unknown_blocks(bundle)
        if flags & _REPORT_RECEPTION or outcome.report:
            # one reception report, saying "block unsupported" when a block asked to be reported
            reason = Reason.BLOCK_UNSUPPORTED if outcome.report else Reason.NO_ADDITIONAL_INFORMATION
            self._report(bundle, now_ms, actions, received=True, reason=reason, length=payload_length)
        if outcome.bundle is None:
            self._deleted(bundle, now_ms, Reason.BLOCK_UNSUPPORTED, actions, payload_length)
            return actions
        bundle = outcome.bundle
        hops = hop_count_of(bundle)
        if hops is not None and hops[1] > hops[0]:
            self._deleted(bundle, now_ms, Reason.HOP_LIMIT_EXCEEDED, actions, payload_length)
            return actions
        if expiry_of(bundle, now_ms) <= now_ms:
            self._deleted(bundle, now_ms, Reason.LIFETIME_EXPIRED, actions, payload_length)
            return actions
        held = self._hold(bundle, now_ms, None, payload_length)
        actions.append(self._persist_action(held))
        self._place(held, now_ms, actions)
        return actions

    # -- dispatch ------------------------------------------------------------------------------

    def _hold(
        self, bundle: Bundle, now_ms: int, klass: int | None, payload_length: int | None = None
    ) -> _Held:
        key = self._next_key
        self._next_key += 1
        held = _Held(
            key,
            bundle,
            bundle_identity(bundle, payload_length),
            expiry_of(bundle, now_ms),
            default_class(bundle, payload_length) if klass is None else klass,
            now_ms,
            payload_length is not None,
        )
        held.size = estimated_size(bundle, payload_length)
        self._held[key] = held
        self._by_identity[held.identity] = key
        return held

    def _persist_action(self, held: _Held, data: bytes | None = None) -> Persist:
        fields = (held.key, held.bundle, held.identity, held.expiry_ms, held.klass, held.received_ms, data)
        persist: Persist = _new(Persist, fields)
        return persist

    def _place(self, held: _Held, now_ms: int, actions: list[Action]) -> None:
        """Deliver locally, or queue for a next hop, or wait for one (RFC 9171 §5.3)."""
        dest = held.bundle.primary.destination
        if self.is_local(dest):
            # an endpoint of this node: kept here for its application even before it registers
            self._deliver(held, now_ms, actions)
            return
        hops = hop_count_of(held.bundle)
        if hops is not None and hops[1] + 1 > hops[0]:
            self._delete(held, now_ms, Reason.HOP_LIMIT_EXCEEDED, actions)
            return
        route = self.router.route(held.bundle, now_ms, held.size)
        if route.fragment_bytes is not None:
            if self._fragment(held, route.fragment_bytes, now_ms, actions):
                return
            book = getattr(self.router, "book", None)
            if route.next_hops and book is not None:  # not split after all: book it whole
                book(route.next_hops[0], held.size, now_ms)
        for peer in route.next_hops:
            self._enqueue(held, peer)
            return
        if route.keep:
            self._waiting.add(held.key)
        else:
            self._delete(held, now_ms, Reason.NO_KNOWN_ROUTE, actions)

    def _fragment(self, held: _Held, max_bytes: int, now_ms: int, actions: list[Action]) -> bool:
        """Proactive fragmentation (RFC 9171 §5.8): replace ``held`` by fragments of at most
        ``max_bytes`` each, routed one by one; False when it cannot or must not be split."""
        flags = held.bundle.primary.flags
        if held.external or flags & (_MUST_NOT_FRAGMENT | _ADMIN_RECORD):
            return False
        try:
            pieces = fragment_to_fit(held.bundle, max_bytes)
        except ProximaError:
            return False
        if len(pieces) < 2:
            return False
        placed: list[_Held] = []
        for piece in pieces:
            data = encode_bundle(piece, check=False)
            part = self._hold(piece, now_ms, held.klass)
            part.size = len(data)
            part.received_ms, part.expiry_ms = held.received_ms, held.expiry_ms
            actions.append(self._persist_action(part, data))
            placed.append(part)
        self.counters.fragmented += 1
        self._forget(held, 0, actions)
        for part in placed:
            self._place(part, now_ms, actions)
        return True

    def _enqueue(self, held: _Held, peer: EID) -> None:
        held.peer = peer
        heapq.heappush(self._queues.setdefault(peer, []), (-held.klass, held.key, held.key))

    def _deliver(self, held: _Held, now_ms: int, actions: list[Action]) -> None:
        bundle = held.bundle
        p = bundle.primary
        if p.flags & _IS_FRAGMENT:
            fkey = (p.source, p.creation_time, p.sequence)
            self._fragments.setdefault(fkey, []).append(held.key)
            try:
                whole = self._reassembler.add(bundle)
            except ProximaError:
                self._fragments[fkey].remove(held.key)
                self._delete(held, now_ms, Reason.BLOCK_UNINTELLIGIBLE, actions)
                return
            if whole is None:
                return  # the fragment stays stored until the whole ADU is there
            keys = [k for k in self._fragments.pop(fkey) if k in self._held]
            expiry = max((self._held[k].expiry_ms for k in keys), default=held.expiry_ms)
            identity = whole.id
            report = bool(whole.primary.flags & _REPORT_DELIVERY)
            actions.append(Deliver(p.destination, whole, identity, expiry, report))
            self._delivered[identity] = expiry
            for k in keys:
                h = self._held[k]
                self._delivered[h.identity] = h.expiry_ms
                self._forget(h, 0, actions)
            self.counters.delivered += 1
            return
        report = bool(p.flags & _REPORT_DELIVERY)
        deliver: Deliver = _new(Deliver, (p.destination, bundle, held.identity, held.expiry_ms, report))
        actions.append(deliver)
        self._delivered[held.identity] = held.expiry_ms
        self._forget(held, 0, actions)
        self.counters.delivered += 1

    def report_delivered(self, bundle: Bundle, now_ms: int) -> list[Action]:
        """The application has taken ``bundle`` (a :class:`Deliver` with ``report``): send the
        delivery status report it asked for."""
        actions: list[Action] = []
        if bundle.primary.flags & _REPORT_DELIVERY:
            self._report(bundle, now_ms, actions, delivered=True)
        return actions

    # -- forwarding ----------------------------------------------------------------------------

    def link_up(self, peer: EID, now_ms: int) -> list[Action]:
        """A session with ``peer`` is up: re-route what was waiting. Pull with next_to_send."""
        peer = peer.node_id
        self.links_up.add(peer)
        self.router.link_up(peer, now_ms)
        return self._reroute_waiting(now_ms)

    def link_down(self, peer: EID, now_ms: int) -> list[Action]:
        """The session with ``peer`` ended; what was queued for it stays queued."""
        peer = peer.node_id
        self.links_up.discard(peer)
        self.router.link_down(peer, now_ms)
        return []

    def _reroute_waiting(self, now_ms: int) -> list[Action]:
        actions: list[Action] = []
        waiting, self._waiting = self._waiting, set()
        for key in sorted(waiting):
            held = self._held.get(key)
            if held is not None:
                self._place(held, now_ms, actions)
        return actions

    def queued(self, peer: EID) -> int:
        """How many bundles wait for ``peer`` (in flight ones excluded)."""
        return len(self._queues.get(peer.node_id, ()))

    def next_to_send(self, peer: EID, now_ms: int) -> Transmit | None:
        """The next bundle to send to ``peer``, highest class first, oldest first; None if none.

        The bundle leaves with this node as its previous node, its hop count incremented and its
        age brought up to date. Expired bundles met on the way are dropped (see :meth:`tick`).
        """
        queue = self._queues.get(peer.node_id)
        while queue:
            _, _, key = heapq.heappop(queue)
            held = self._held.get(key)
            if held is None or held.peer != peer.node_id:
                continue
            if held.expiry_ms <= now_ms:
                continue  # tick() reports and deletes it
            transmit: Transmit = _new(
                Transmit, (key, held.peer, self._outgoing(held, now_ms), held.klass, held.external)
            )
            return transmit
        return None

    def _outgoing(self, held: _Held, now_ms: int) -> bytes:
        """The bundle as it leaves: previous node = us, hop count + 1, age updated (§5.4)."""
        wire = held.wire
        if wire is not None:
            # Originated here with a payload block alone: the same bytes as below, the previous
            # node block (number 2) inserted after the primary block.
            self._drop_wire(held)
            prev_enc = self._prev_block
            if prev_enc is None:
                prev_enc = self._prev_block = encode_block(
                    CanonicalBlock(BlockType.PREVIOUS_NODE, 2, 0, self.crc_type, self.node_id.cbor)
                )
            view = memoryview(wire)
            return b"".join((view[: held.wire_split], prev_enc, view[held.wire_split :]))
        b = held.bundle
        blocks: list[CanonicalBlock] = []
        numbers = {blk.number for blk in b.blocks}
        crc = self.crc_type
        prev_number = 0
        for blk in b.blocks:
            if blk.type == BlockType.PREVIOUS_NODE:
                prev_number = blk.number
                continue
            out = blk
            if blk.type == BlockType.HOP_COUNT:
                hops = decode_block_data(blk)
                if isinstance(hops, tuple):
                    limit, count = hops
                    out = blk._replace(data=b"\x82" + _cbor.uint(limit) + _cbor.uint(count + 1))
            elif blk.type == BlockType.BUNDLE_AGE:
                age = decode_block_data(blk)
                if isinstance(age, int):
                    out = blk._replace(data=_cbor.uint(age + max(0, now_ms - held.received_ms)))
            blocks.append(out)
        if not prev_number:
            prev_number = 2
            while prev_number in numbers:
                prev_number += 1
        prev = CanonicalBlock(BlockType.PREVIOUS_NODE, prev_number, 0, crc, self.node_id.cbor)
        if not held.external:
            return encode_bundle(Bundle(b.primary, (prev, *blocks)))
        # Up to the payload block only: a stand-in payload block keeps every rule checked, then
        # its encoding and the bundle's final 0xff are cut off.
        stand_in = blocks[-1]._replace(data=b"", crc_type=0)
        encoded = encode_bundle(Bundle(b.primary, (prev, *blocks[:-1], stand_in)))
        return encoded[: -len(encode_block(stand_in)) - 1]

    def refuse(
        self, bundle: Bundle, now_ms: int, reason: int, payload_length: int | None = None
    ) -> list[Action]:
        """A received bundle this node cannot keep (e.g. depleted storage, reason 4): count its
        deletion and report it when asked; nothing is held. ``payload_length``: as for
        :meth:`receive_bundle`, when only the blocks before the payload were read."""
        actions: list[Action] = []
        self._deleted(bundle, now_ms, reason, actions, payload_length)
        return actions

    def refragment(self, key: int, max_bytes: int, now_ms: int) -> list[Action] | None:
        """Split bundle ``key``, which a link could not carry whole, into fragments whose
        encodings stay within ``max_bytes`` once this node adds its previous node block (RFC
        9171 §5.8); they are placed again one by one. None when it cannot or must not be split
        (too small a limit, "must not fragment", an administrative record, a payload kept
        outside memory): the caller then gives up on it."""
        held = self._held.get(key)
        if held is None:
            return []
        # Room for what leaving adds: the previous node block (its EID, the block's head and a
        # CRC-32C) and a hop count that may grow by a byte or two.
        limit = max_bytes - len(self.node_id.cbor) - 24
        actions: list[Action] = []
        if limit <= 0 or not self._fragment(held, limit, now_ms, actions):
            return None
        return actions

    def cancel(self, key: int, now_ms: int, reason: int = Reason.TRANSMISSION_CANCELED) -> list[Action]:
        """Give up on bundle ``key`` (a next hop refuses it for good): delete it with ``reason``."""
        actions: list[Action] = []
        held = self._held.get(key)
        if held is not None:
            self._delete(held, now_ms, reason, actions)
        return actions

    def transmitted(self, key: int, now_ms: int) -> list[Action]:
        """The next hop acknowledged bundle ``key``: forget it (and report forwarding)."""
        actions: list[Action] = []
        held = self._held.get(key)
        if held is None:
            return actions
        self.counters.forwarded += 1
        if held.bundle.primary.flags & _REPORT_FORWARDING:
            self._report(held.bundle, now_ms, actions, forwarded=True, length=held.identity[4])
        self._forget(held, 0, actions)
        return actions

    def transmit_failed(self, key: int, now_ms: int) -> list[Action]:
        """Sending bundle ``key`` failed (session lost, refused): route it again."""
        actions: list[Action] = []
        held = self._held.get(key)
        if held is not None:
            self._unroute(held, now_ms)
            self._place(held, now_ms, actions)
        return actions

    def requeue(self, peer: EID, now_ms: int) -> list[Action]:
        """The contact with ``peer`` is over: route again every bundle still queued for it (those
        in flight come back through :meth:`transmitted` or :meth:`transmit_failed`)."""
        peer = peer.node_id
        actions: list[Action] = []
        queue = self._queues.pop(peer, [])
        for _, _, key in sorted(queue):
            held = self._held.get(key)
            if held is not None and held.peer == peer:
                self._unroute(held, now_ms)
                self._place(held, now_ms, actions)
        return actions

    def _unroute(self, held: _Held, now_ms: int) -> None:
        """Free what routing booked for ``held`` on its next hop."""
        peer, held.peer = held.peer, None
        release = getattr(self.router, "release", None)
        if peer is not None and release is not None:
            release(peer, held.size, now_ms)

    # -- expiry and deletion -------------------------------------------------------------------

    def next_expiry(self) -> int | None:
        """The earliest expiry of a held bundle (DTN ms), for the runtime's timer."""
        return min((h.expiry_ms for h in self._held.values()), default=None)

    def tick(self, now_ms: int) -> list[Action]:
        """Delete every bundle whose lifetime has ended (reason 1); forget old delivery records."""
        actions: list[Action] = []
        for held in [h for h in self._held.values() if h.expiry_ms <= now_ms]:
            self._delete(held, now_ms, Reason.LIFETIME_EXPIRED, actions)
        for identity in [i for i, e in self._delivered.items() if e <= now_ms]:
            del self._delivered[identity]
        return actions

    def _delete(self, held: _Held, now_ms: int, reason: int, actions: list[Action]) -> None:
        self._deleted(held.bundle, now_ms, reason, actions, held.identity[4])
        self._forget(held, reason, actions)

    def _deleted(
        self, bundle: Bundle, now_ms: int, reason: int, actions: list[Action], length: int | None = None
    ) -> None:
        """Count a deletion and report it when asked (``length``: the payload's, when the
        bundle's payload block was left empty)."""
        self.counters.deleted += 1
        if bundle.primary.flags & _REPORT_DELETION:
            self._report(bundle, now_ms, actions, deleted=True, reason=reason, length=length)

    def _drop_wire(self, held: _Held) -> None:
        wire = held.wire
        if wire is not None:
            held.wire = None
            self._wire_bytes -= len(wire)

    def _forget(self, held: _Held, reason: int, actions: list[Action]) -> None:
        self._drop_wire(held)
        self._held.pop(held.key, None)
        p = held.bundle.primary
        if p.flags & _IS_FRAGMENT:
            fkey = (p.source, p.creation_time, p.sequence)
            keys = self._fragments.get(fkey)
            if keys is not None and held.key in keys:
                keys.remove(held.key)
                if not keys:
                    del self._fragments[fkey]
                    self._reassembler.discard(fkey)
        if self._by_identity.get(held.identity) == held.key:
            del self._by_identity[held.identity]
        self._waiting.discard(held.key)
        held.peer = None
        unpersist: Unpersist = _new(Unpersist, (held.key, reason))
        actions.append(unpersist)

    def held(self) -> int:
        """How many bundles this agent is responsible for."""
        return len(self._held)

    # -- status reports ------------------------------------------------------------------------

    def _report(
        self,
        subject: Bundle,
        now_ms: int,
        actions: list[Action],
        *,
        received: bool = False,
        forwarded: bool = False,
        delivered: bool = False,
        deleted: bool = False,
        reason: int = Reason.NO_ADDITIONAL_INFORMATION,
        length: int | None = None,
    ) -> None:
        """Originate a status report about ``subject`` if it can be sent (RFC 9171 §6.1);
        ``length`` is its payload's when its payload block was left empty."""
        p = subject.primary
        if p.report_to.is_none or p.flags & _ADMIN_RECORD or p.source.is_none:
            return
        created, seq = self._timestamp(now_ms)
        t = now_ms
        report = make_status_report_bundle(
            subject,
            report_source=self.node_id,
            received_at=t if received else None,
            forwarded_at=t if forwarded else None,
            delivered_at=t if delivered else None,
            deleted_at=t if deleted else None,
            reason=reason,
            now_ms=created,
            sequence=seq,
            lifetime_ms=self.report_lifetime_ms,
            crc_type=self.crc_type,
            payload_length=length,
        )
        self.counters.reports_sent += 1
        held = self._hold(report, now_ms, CLASS_ADMIN)
        actions.append(self._persist_action(held))
        self._place(held, now_ms, actions)
