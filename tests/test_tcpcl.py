"""TCPCLv4 (RFC 9174) sans-I/O core: codec, handshake, transfers, timers, termination, bad input.

Everything runs in virtual time: ``now`` is passed in, no socket and no sleep.
"""

from __future__ import annotations

import itertools
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxima.bpv7.eid import EID
from proxima.cla.tcpcl import (
    ACCEPTED_MESSAGES,
    NEED_DATA,
    SEGMENT_END,
    SEGMENT_START,
    TRANSFER_LENGTH_EXTENSION,
    TRANSITIONS,
    ConnectionClosed,
    ContactHeader,
    ContactHeaderReceived,
    Event,
    ExtensionItem,
    Keepalive,
    KeepaliveReceived,
    Message,
    MessageRejected,
    MessageType,
    MsgReject,
    MsgRejectReason,
    ProtocolViolation,
    Role,
    SegmentReceived,
    SessInit,
    SessionEstablished,
    SessionTerminated,
    SessTerm,
    SessTermReason,
    StartTLS,
    State,
    TcpclConfig,
    TcpclConnection,
    TransferAborted,
    TransferAcknowledged,
    TransferRefused,
    TransferStarted,
    Trigger,
    XferAck,
    XferRefuse,
    XferRefuseReason,
    XferSegment,
    decode_contact_header,
    decode_extension_items,
    decode_message,
    encode_contact_header,
    encode_extension_items,
    encode_message,
    transfer_length_item,
)
from proxima.errors import ConvergenceLayerError, Incomplete, LocalError
from tcpcl_helpers import (
    ACTIVE_NODE,
    PASSIVE_NODE,
    ConnectionPair,
    decode_wire,
    established,
    feed,
    peer_sess_init,
)

U8 = st.integers(0, 0xFF)
U16 = st.integers(0, 0xFFFF)
U64 = st.one_of(st.integers(0, 300), st.integers(0, (1 << 64) - 1))

# --------------------------------------------------------------------------------------------
# Codec
# --------------------------------------------------------------------------------------------

ext_items = st.builds(ExtensionItem, U16, st.binary(max_size=40), U8)
ext_lists = st.lists(ext_items, max_size=4).map(tuple)
node_ids = st.one_of(st.just(""), st.text(max_size=30), st.sampled_from(["ipn:1.0", "dtn://ground/"]))

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(SessInit, U16, U64, U64, node_ids, ext_lists),
    st.builds(SessTerm, U8, U8),
    st.builds(
        lambda flags, tid, data, ext: XferSegment(flags, tid, data, ext if flags & SEGMENT_START else ()),
        U8,
        U64,
        st.binary(max_size=300),
        ext_lists,
    ),
    st.builds(XferAck, U8, U64, U64),
    st.builds(XferRefuse, U8, U64),
    st.just(Keepalive()),
    st.builds(MsgReject, U8, U8),
)


@given(messages, messages)
def test_message_round_trip_whole_and_with_trailing_bytes(message: Message, following: Message) -> None:
    wire = encode_message(message)
    assert decode_message(wire) == (message, len(wire))
    after = encode_message(following)
    assert decode_message(wire + after) == (message, len(wire))
    assert decode_message(wire + after, len(wire)) == (following, len(wire) + len(after))


@given(messages)
def test_message_every_prefix_is_incomplete(message: Message) -> None:
    wire = encode_message(message)
    for cut in range(len(wire)):
        with pytest.raises(Incomplete) as info:
            decode_message(wire[:cut])
        assert info.value.needed >= 1
        assert cut + info.value.needed <= len(wire)


@given(messages)
def test_message_fed_byte_by_byte_to_a_memoryview(message: Message) -> None:
    wire = encode_message(message)
    buf = bytearray()
    result = None
    for byte in wire:
        buf.append(byte)
        try:
            result = decode_message(memoryview(buf))
        except Incomplete:
            continue
    assert result == (message, len(wire))


def test_known_wire_bytes() -> None:
    # A SESS_INIT as HDTN sends one: keepalive 17 s, segment MRU 200,000, transfer MRU 10,000,000.
    hdtn = SessInit(17, 200_000, 10_000_000, "ipn:10.0")
    assert encode_message(hdtn) == (
        b"\x07\x00\x11"
        + (200_000).to_bytes(8, "big")
        + (10_000_000).to_bytes(8, "big")
        + b"\x00\x08ipn:10.0"
        + b"\x00\x00\x00\x00"
    )
    assert encode_contact_header(can_tls=True) == b"dtn!\x04\x01"
    assert encode_contact_header() == b"dtn!\x04\x00"
    assert encode_message(SessTerm(SessTermReason.IDLE_TIMEOUT, 1)) == b"\x05\x01\x01"
    assert encode_message(XferAck(3, 7, 9)) == b"\x02\x03" + (7).to_bytes(8, "big") + (9).to_bytes(8, "big")
    assert encode_message(XferRefuse(5, 7)) == b"\x03\x05" + (7).to_bytes(8, "big")
    assert encode_message(MsgReject(1, 0x42)) == b"\x06\x01\x42"
    assert encode_message(Keepalive()) == b"\x04"
    assert encode_message(XferSegment(SEGMENT_START | SEGMENT_END, 1, b"ab")) == (
        b"\x01\x03" + (1).to_bytes(8, "big") + b"\x00\x00\x00\x00" + (2).to_bytes(8, "big") + b"ab"
    )
    assert encode_message(XferSegment(SEGMENT_END, 1, b"ab")) == (
        b"\x01\x01" + (1).to_bytes(8, "big") + (2).to_bytes(8, "big") + b"ab"
    )
    assert encode_message(XferSegment(SEGMENT_START, 0, b"", (transfer_length_item(5),))) == (
        b"\x01\x02"
        + bytes(8)
        + b"\x00\x00\x00\x0d"
        + b"\x00\x00\x01\x00\x08"
        + (5).to_bytes(8, "big")
        + bytes(8)
    )


@given(U8, U8, st.binary(max_size=8))
def test_contact_header_round_trip(flags: int, version: int, trailing: bytes) -> None:
    header = ContactHeader(flags, version)
    wire = encode_contact_header(header)
    assert len(wire) == 6
    assert decode_contact_header(wire + trailing) == (header, 6)
    assert header.can_tls == bool(flags & 1)
    for cut in range(6):
        with pytest.raises(Incomplete):
            decode_contact_header(wire[:cut])


@pytest.mark.parametrize("data", [b"x", b"dtx", b"DTN!\x04\x00", b"\x07\x00\x11", b"GET / HTTP/1.1\r\n"])
def test_contact_header_bad_magic_fails_at_once(data: bytes) -> None:
    with pytest.raises(ConvergenceLayerError) as info:
        decode_contact_header(data)
    assert info.value.reason is None


@given(ext_lists)
def test_extension_items_round_trip(items: tuple[ExtensionItem, ...]) -> None:
    wire = encode_extension_items(items)
    assert decode_extension_items(wire, transfer=True) == items
    assert decode_extension_items(wire, transfer=False) == items


@pytest.mark.parametrize("data", [b"\x00", b"\x00\x00\x01\x00", b"\x00\x00\x01\x00\x05abc"])
def test_malformed_extension_list(data: bytes) -> None:
    with pytest.raises(ConvergenceLayerError) as info:
        decode_extension_items(data, transfer=True)
    assert (info.value.reason, info.value.message_kind) == (XferRefuseReason.EXTENSION_FAILURE, "xfer_refuse")
    with pytest.raises(ConvergenceLayerError) as info:
        decode_extension_items(data, transfer=False)
    assert (info.value.reason, info.value.message_kind) == (SessTermReason.CONTACT_FAILURE, "sess_term")


@pytest.mark.parametrize("mtype", [0x00, 0x08, 0x7F, 0xF0, 0xFF])
def test_decode_unknown_message_type(mtype: int) -> None:
    with pytest.raises(ConvergenceLayerError) as info:
        decode_message(bytes([mtype, 0, 0, 0]))
    assert (info.value.reason, info.value.message_kind) == (MsgRejectReason.TYPE_UNKNOWN, "msg_reject")


def test_decode_sess_init_with_bad_utf8_node_id() -> None:
    wire = b"\x07\x00\x00" + bytes(16) + b"\x00\x02\xff\xfe" + bytes(4)
    with pytest.raises(ConvergenceLayerError) as info:
        decode_message(wire)
    assert info.value.reason == SessTermReason.CONTACT_FAILURE


@pytest.mark.parametrize(
    "message",
    [
        SessTerm(256),
        XferAck(0, -1, 0),
        XferRefuse(0, 1 << 64),
        SessInit(70_000, 0, 0),
        SessInit(0, 0, 0, "x" * 70_000),
        SessInit(0, 0, 0, "", (ExtensionItem(1, bytes(70_000)),)),
        SessInit(0, 0, 0, "", (ExtensionItem(1 << 16),)),
        XferSegment(SEGMENT_END, 0, b"", (ExtensionItem(1),)),
        MsgReject(1, 300),
    ],
)
def test_encode_out_of_range_is_local_error(message: Message) -> None:
    with pytest.raises(LocalError):
        encode_message(message)


def test_transfer_length_item() -> None:
    item = transfer_length_item(1234, critical=True)
    assert (item.item_type, item.value, item.critical) == (
        TRANSFER_LENGTH_EXTENSION,
        (1234).to_bytes(8, "big"),
        True,
    )
    with pytest.raises(LocalError):
        transfer_length_item(-1)


# --------------------------------------------------------------------------------------------
# The state table
# --------------------------------------------------------------------------------------------


def test_state_table_covers_every_state_and_closed_is_final() -> None:
    assert set(TRANSITIONS) == set(State)
    assert set(ACCEPTED_MESSAGES) == set(State)
    assert TRANSITIONS[State.CLOSED] == {}
    for state, moves in TRANSITIONS.items():
        if state is not State.CLOSED:
            assert moves[Trigger.CONNECTION_CLOSED] is State.CLOSED
    used = {trigger for moves in TRANSITIONS.values() for trigger in moves}
    assert used == set(Trigger)


def test_every_state_is_reachable_from_contact_wait() -> None:
    seen = {State.CONTACT_WAIT}
    frontier = [State.CONTACT_WAIT]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()].values():
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(State)


@pytest.mark.parametrize(
    "message",
    [
        SessInit(0, 100, 100, "ipn:3.0"),
        SessTerm(0),
        XferSegment(SEGMENT_START | SEGMENT_END, 0, b"x"),
        XferAck(SEGMENT_END, 0, 0),
        XferRefuse(0, 0),
        Keepalive(),
        MsgReject(3, 4),
    ],
    ids=lambda m: type(m).__name__,
)
@pytest.mark.parametrize("state", [State.SESS_INIT_WAIT, State.ESTABLISHED])
def test_messages_outside_the_table_are_rejected_as_unexpected(message: Message, state: State) -> None:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(), 0.0)
    conn.receive_data(encode_contact_header(), 0.0)
    if state is State.ESTABLISHED:
        conn.receive_data(encode_message(peer_sess_init()), 0.0)
        conn.send_bundle(b"", 0.0)  # transfer 0, which the XFER_ACK and XFER_REFUSE refer to
    conn.data_to_send()
    list(conn.events())
    assert conn.state is state
    mtype = encode_message(message)[0]
    events, sent = feed(conn, encode_message(message))
    if mtype in ACCEPTED_MESSAGES[state]:
        assert MsgReject(MsgRejectReason.UNEXPECTED, mtype) not in sent
    else:
        assert sent == [MsgReject(MsgRejectReason.UNEXPECTED, mtype)]
        assert isinstance(events[0], ProtocolViolation)
        assert events[0].error.reason == MsgRejectReason.UNEXPECTED


# --------------------------------------------------------------------------------------------
# Handshake and negotiation
# --------------------------------------------------------------------------------------------


def test_full_handshake_with_hdtn_parameters() -> None:
    pair = ConnectionPair(
        TcpclConfig(node_id="ipn:1.0", keepalive=30, segment_mru=65_536, transfer_mru=1_000_000),
        TcpclConfig(node_id="ipn:10.0", keepalive=17, segment_mru=200_000, transfer_mru=10_000_000),
    )
    # The passive side says nothing before it has the active side's contact header.
    assert pair.p.data_to_send() == b""
    assert pair.a.state is State.CONTACT_WAIT
    pair.pump(1.5)
    a_events, p_events = pair.active.take(), pair.passive.take()
    assert a_events == [
        ContactHeaderReceived(4, False),
        SessionEstablished(EID.parse("ipn:10.0"), 17, 200_000, 10_000_000, (), False),
    ]
    assert p_events == [
        ContactHeaderReceived(4, False),
        SessionEstablished(EID.parse("ipn:1.0"), 17, 65_536, 1_000_000, (), False),
    ]
    assert pair.active.messages() == [ContactHeader(0), SessInit(30, 65_536, 1_000_000, "ipn:1.0")]
    assert pair.passive.messages() == [ContactHeader(0), SessInit(17, 200_000, 10_000_000, "ipn:10.0")]
    session = pair.a.session
    assert session is not None
    assert (session.keepalive, session.segment_mtu, session.peer_transfer_mru) == (17, 200_000, 10_000_000)
    assert pair.a.can_start_transfer
    assert pair.p.session is not None and pair.p.session.segment_mtu == 65_536


def test_segment_mtu_is_capped_by_max_segment_send() -> None:
    pair = ConnectionPair(TcpclConfig(max_segment_send=1000), TcpclConfig(segment_mru=5000))
    pair.handshake()
    assert pair.a.session is not None and pair.a.session.segment_mtu == 1000


def test_active_pipelining_contact_header_and_sess_init_is_accepted() -> None:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(node_id=PASSIVE_NODE), 0.0)
    conn.receive_data(encode_contact_header() + encode_message(peer_sess_init(ACTIVE_NODE)), 0.0)
    assert conn.state is State.ESTABLISHED
    assert decode_wire(conn.data_to_send(), contact=True) == [
        ContactHeader(),
        SessInit(30, 1 << 20, 1 << 30, PASSIVE_NODE),
    ]


def test_empty_node_id_means_none() -> None:
    pair = ConnectionPair(TcpclConfig(), TcpclConfig())
    pair.pump()
    established_events = [e for e in pair.active.events if isinstance(e, SessionEstablished)]
    assert established_events[0].peer_node_id is None


@pytest.mark.parametrize("node_id", ["not a uri", "ipn:01.0", "dtn:", "http://x", "ipn:1"])
def test_invalid_peer_node_id_is_contact_failure(node_id: str) -> None:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(), 0.0)
    conn.receive_data(encode_contact_header(), 0.0)
    conn.data_to_send()
    list(conn.events())
    events, sent = feed(conn, encode_message(peer_sess_init(node_id)))
    assert sent == [SessTerm(SessTermReason.CONTACT_FAILURE)]
    assert isinstance(events[0], ProtocolViolation)
    assert events[0].error.reason == SessTermReason.CONTACT_FAILURE
    assert events[1] == SessionTerminated(SessTermReason.CONTACT_FAILURE, False)
    assert conn.state is State.ENDING
    # The peer acknowledges; nothing was in progress, so the connection closes cleanly.
    events, sent = feed(conn, encode_message(SessTerm(SessTermReason.CONTACT_FAILURE, 1)))
    assert events == [ConnectionClosed(True)]
    assert sent == []


@pytest.mark.parametrize(("segment_mru", "transfer_mru"), [(0, 100), (100, 0)])
def test_peer_mru_below_our_minimum_is_contact_failure(segment_mru: int, transfer_mru: int) -> None:
    conn = TcpclConnection(Role.ACTIVE, TcpclConfig(), 0.0)
    conn.receive_data(encode_contact_header(), 0.0)
    conn.data_to_send()
    conn.receive_data(encode_message(SessInit(30, segment_mru, transfer_mru)), 0.0)
    assert decode_wire(conn.data_to_send()) == [SessTerm(SessTermReason.CONTACT_FAILURE)]


def test_zero_transfer_mru_accepted_when_allowed() -> None:
    pair = ConnectionPair(TcpclConfig(min_peer_transfer_mru=0), TcpclConfig(transfer_mru=0))
    pair.handshake()
    with pytest.raises(LocalError):
        pair.a.send_bundle(b"x", 0.0)
    tid = pair.a.send_bundle(b"", 0.0)
    pair.pump()
    pair.p.complete_transfer(tid, 0.0)
    pair.pump()
    assert pair.active.take() == [TransferAcknowledged(tid, 0, True)]


def test_unknown_critical_session_extension_is_contact_failure() -> None:
    pair = ConnectionPair(TcpclConfig(session_extensions=(ExtensionItem(0x8001, b"?", 1),)), TcpclConfig())
    pair.pump()
    assert pair.passive.messages()[-1] == SessTerm(SessTermReason.CONTACT_FAILURE)
    assert pair.active.messages()[-1] == SessTerm(SessTermReason.CONTACT_FAILURE, 1)
    assert pair.a.state is State.CLOSED and pair.p.state is State.CLOSED
    assert pair.active.events[-2:] == [
        SessionTerminated(SessTermReason.CONTACT_FAILURE, True),
        ConnectionClosed(True),
    ]


def test_unknown_non_critical_and_known_critical_session_extensions_are_accepted() -> None:
    items = (ExtensionItem(0x8001, b"skip me"), ExtensionItem(0x8002, b"known", 1))
    pair = ConnectionPair(
        TcpclConfig(session_extensions=items), TcpclConfig(known_session_extensions=frozenset({0x8002}))
    )
    pair.pump()
    assert pair.p.state is State.ESTABLISHED
    assert next(e for e in pair.passive.events if isinstance(e, SessionEstablished)).extensions == items


def test_keepalive_zero_disables_keepalive_and_idle_timers() -> None:
    pair = ConnectionPair(TcpclConfig(keepalive=0), TcpclConfig(keepalive=17))
    pair.handshake()
    assert pair.a.session is not None and pair.a.session.keepalive == 0
    assert pair.a.get_timer() is None
    assert pair.p.get_timer() is None
    pair.timers(10_000.0)
    assert pair.active.take() == [] and pair.passive.take() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keepalive": -1},
        {"keepalive": 70_000},
        {"segment_mru": -1},
        {"transfer_mru": 1 << 64},
        {"max_segment_send": 0},
        {"contact_timeout": 0},
        {"idle_timeout": -1.0},
        {"require_tls": True},
        {"node_id": "nope"},
        {"max_extensions_length": -1},
    ],
)
def test_bad_config_is_local_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalError):
        TcpclConfig(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# TLS negotiation
# --------------------------------------------------------------------------------------------


def test_tls_negotiation_events_and_trailing_data() -> None:
    pair = ConnectionPair(TcpclConfig(node_id=ACTIVE_NODE, can_tls=True), TcpclConfig(can_tls=True))
    pair.pump()
    assert pair.active.take() == [ContactHeaderReceived(4, True), StartTLS(server_side=False)]
    assert pair.passive.take() == [ContactHeaderReceived(4, True), StartTLS(server_side=True)]
    assert pair.a.state is State.TLS_PENDING and pair.p.state is State.TLS_PENDING
    # No SESS_INIT in clear text: only the contact headers went out.
    assert pair.active.messages() == [ContactHeader(1)]
    assert pair.passive.messages() == [ContactHeader(1)]
    assert pair.a.get_timer() is None
    # Bytes arriving now are the TLS handshake: kept aside for the caller, not parsed.
    pair.p.receive_data(b"\x16\x03\x01 client hello", 0.0)
    assert pair.p.trailing_data == b"\x16\x03\x01 client hello"
    assert list(pair.p.events()) == []
    pair.a.tls_established(1.0)
    pair.p.tls_established(1.0)
    assert pair.p.trailing_data == b""
    pair.pump(1.0)
    assert pair.active.take() == [SessionEstablished(None, 30, 1 << 20, 1 << 30, (), True)]
    assert pair.passive.take() == [SessionEstablished(EID.parse(ACTIVE_NODE), 30, 1 << 20, 1 << 30, (), True)]


def test_tls_not_used_unless_both_sides_can() -> None:
    pair = ConnectionPair(TcpclConfig(can_tls=True), TcpclConfig(can_tls=False))
    pair.pump()
    assert not any(isinstance(e, StartTLS) for e in pair.active.events + pair.passive.events)
    assert pair.a.state is State.ESTABLISHED
    with pytest.raises(LocalError):
        pair.a.tls_established(0.0)


def test_contact_header_after_own_in_the_same_read_is_trailing_tls_data() -> None:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(can_tls=True), 0.0)
    conn.receive_data(encode_contact_header(can_tls=True) + b"\x16\x03", 0.0)
    assert conn.state is State.TLS_PENDING
    assert conn.trailing_data == b"\x16\x03"


@pytest.mark.parametrize("role", list(Role))
def test_required_tls_refused_by_peer_is_contact_failure(role: Role) -> None:
    conn = TcpclConnection(role, TcpclConfig(can_tls=True, require_tls=True), 0.0)
    conn.data_to_send()
    conn.receive_data(encode_contact_header(can_tls=False), 0.0)
    expected: list[object] = [SessTerm(SessTermReason.CONTACT_FAILURE)]
    if role is Role.PASSIVE:
        expected.insert(0, ContactHeader(1))
    assert decode_wire(conn.data_to_send(), contact=role is Role.PASSIVE) == expected
    assert list(conn.events())[-1] == SessionTerminated(SessTermReason.CONTACT_FAILURE, False)


def test_close_during_tls_sends_nothing() -> None:
    pair = ConnectionPair(TcpclConfig(can_tls=True), TcpclConfig(can_tls=True))
    pair.pump()
    pair.a.close(SessTermReason.UNKNOWN, 0.0)
    assert pair.a.data_to_send() == b""
    assert list(pair.a.events()) == [ConnectionClosed(False)]


# --------------------------------------------------------------------------------------------
# Transfers
# --------------------------------------------------------------------------------------------


def small_mru_pair(mru: int = 100, **passive: object) -> ConnectionPair:
    pair = ConnectionPair(
        TcpclConfig(node_id=ACTIVE_NODE, segment_mru=mru),
        TcpclConfig(node_id=PASSIVE_NODE, segment_mru=mru, **passive),  # type: ignore[arg-type]
    )
    pair.handshake()
    return pair


def received_data(events: list[Event], tid: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, SegmentReceived) and e.transfer_id == tid)


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 250, 1000])
def test_bundle_transfer_sizes(size: int) -> None:
    pair = small_mru_pair(100)
    bundle = bytes(range(256)) * 4
    bundle = bundle[:size]
    tid = pair.a.send_bundle(bundle, 1.0)
    assert tid == 0
    pair.pump(1.0)
    segments = [m for m in pair.active.messages() if isinstance(m, XferSegment)]
    assert len(segments) == max(1, -(-size // 100))
    assert all(len(s.data) <= 100 for s in segments)
    assert segments[0].start and segments[-1].end
    assert sum(s.start for s in segments) == 1 and sum(s.end for s in segments) == 1
    # Transfer Length only for transfers of several segments (RFC 9174 §5.2.5.1).
    expected_ext = (transfer_length_item(size),) if len(segments) > 1 else ()
    assert segments[0].extensions == expected_ext
    events = pair.passive.take()
    assert events[0] == TransferStarted(tid, size if len(segments) > 1 else None, expected_ext)
    assert received_data(events, tid) == bundle
    assert [e.end for e in events if isinstance(e, SegmentReceived)][-1]
    # Intermediate segments are acknowledged at once; the last only after complete_transfer.
    acks = [m for m in pair.passive.messages() if isinstance(m, XferAck)]
    assert [a.length for a in acks] == [100 * (i + 1) for i in range(len(segments) - 1)]
    assert pair.active.take() == [TransferAcknowledged(tid, a.length, False) for a in acks]
    pair.p.complete_transfer(tid, 2.0)
    pair.pump(2.0)
    final = pair.passive.messages()[-1]
    assert final == XferAck(segments[-1].flags, tid, size)
    assert pair.active.take() == [TransferAcknowledged(tid, size, True)]
    assert not pair.a.transfers_in_progress and not pair.p.transfers_in_progress


def test_ack_flags_mirror_the_segment_flags() -> None:
    pair = small_mru_pair(10)
    tid = pair.a.send_bundle(bytes(25), 0.0)
    pair.pump()
    pair.p.complete_transfer(tid, 0.0)
    pair.pump()
    acks = [m for m in pair.passive.messages() if isinstance(m, XferAck)]
    assert [(a.flags, a.length) for a in acks] == [(SEGMENT_START, 10), (0, 20), (SEGMENT_END, 25)]


def test_transfer_ids_count_from_zero_and_pipelining() -> None:
    pair = small_mru_pair(1000)
    tids = [pair.a.send_bundle(bytes([i]) * 10, 0.0) for i in range(5)]
    assert tids == [0, 1, 2, 3, 4]
    pair.pump()
    events = pair.passive.take()
    assert [received_data(events, t) for t in tids] == [bytes([i]) * 10 for i in range(5)]
    for t in tids:
        pair.p.complete_transfer(t, 0.0)
    pair.pump()
    assert pair.active.take() == [TransferAcknowledged(t, 10, True) for t in tids]


def test_streaming_with_unknown_total_and_zero_length_end() -> None:
    pair = small_mru_pair(100)
    tid = pair.a.start_transfer(None, 0.0)
    assert pair.a.sending_transfer_id == tid
    assert not pair.a.can_start_transfer
    with pytest.raises(LocalError):
        pair.a.start_transfer(None, 0.0)
    assert pair.a.send_segment(tid, b"a" * 150, False, 0.0)
    assert pair.a.send_segment(tid, b"", False, 0.0)  # nothing to send yet
    assert pair.a.send_segment(tid, bytearray(b"b" * 50), False, 0.0)
    assert pair.a.send_segment(tid, memoryview(b"c" * 100), False, 0.0)
    assert pair.a.send_segment(tid, b"", True, 0.0)
    assert pair.a.sending_transfer_id is None
    pair.pump()
    segments = [m for m in pair.active.messages() if isinstance(m, XferSegment)]
    assert [len(s.data) for s in segments] == [100, 50, 50, 100, 0]
    assert segments[0].extensions == ()
    assert segments[-1].flags == SEGMENT_END
    events = pair.passive.take()
    assert events[0] == TransferStarted(tid, None, ())
    assert received_data(events, tid) == b"a" * 150 + b"b" * 50 + b"c" * 100
    # The ack of the fourth segment covers all 300 bytes but is not the final one.
    acked = pair.active.take()
    assert acked[-1] == TransferAcknowledged(tid, 300, False)
    pair.p.complete_transfer(tid, 0.0)
    pair.pump()
    assert pair.active.take() == [TransferAcknowledged(tid, 300, True)]


def test_streaming_with_known_total() -> None:
    pair = small_mru_pair(100)
    tid = pair.a.start_transfer(250, 0.0, extensions=[ExtensionItem(0x8000, b"x")])
    with pytest.raises(LocalError):
        pair.a.send_segment(tid, bytes(251), False, 0.0)
    with pytest.raises(LocalError):
        pair.a.send_segment(tid, bytes(200), True, 0.0)
    with pytest.raises(LocalError):
        pair.a.send_segment(tid + 1, bytes(1), True, 0.0)
    pair.a.send_segment(tid, bytes(200), False, 0.0)
    pair.a.send_segment(tid, bytes(50), True, 0.0)
    pair.pump()
    first = next(m for m in pair.active.messages() if isinstance(m, XferSegment))
    assert first.extensions == (transfer_length_item(250), ExtensionItem(0x8000, b"x"))
    started = pair.passive.take()[0]
    assert started == TransferStarted(tid, 250, first.extensions)


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 100), min_size=1, max_size=6), known=st.booleans())
def test_segment_headers_alone_put_on_the_wire_what_send_segment_does(sizes: list[int], known: bool) -> None:
    """A sender writing each segment's bytes itself after send_segment_header (sendfile) sends
    exactly the bytes send_segment would, and the peer receives the transfer whole."""
    data = (bytes(range(256)) * 3)[: sum(sizes)]
    total = len(data) if known else None
    whole, headers = small_mru_pair(100), small_mru_pair(100)
    t1 = whole.a.start_transfer(total, 0.0)
    t2 = headers.a.start_transfer(total, 0.0)
    whole.a.data_chunks_to_send()
    headers.a.data_chunks_to_send()
    wire = b""
    offset = 0
    for i, n in enumerate(sizes):
        end = i == len(sizes) - 1
        assert whole.a.send_segment(t1, data[offset : offset + n], end, 0.0)
        assert headers.a.send_segment_header(t2, n, end, 0.0)
        wire += b"".join(headers.a.data_chunks_to_send()) + data[offset : offset + n]
        offset += n
    assert headers.a.sending_transfer_id is None
    assert wire == b"".join(whole.a.data_chunks_to_send())
    headers.p.receive_data(wire, 0.0)
    events = list(headers.p.events())
    announced = known and len(sizes) > 1  # no Transfer Length for a one-segment transfer
    length_item = (transfer_length_item(len(data)),) if announced else ()
    assert events[0] == TransferStarted(t2, len(data) if announced else None, length_item)
    assert received_data(events, t2) == data


def test_segment_header_lengths_are_checked() -> None:
    pair = small_mru_pair(100)
    tid = pair.a.start_transfer(150, 0.0)
    for bad in (0, 101):
        with pytest.raises(LocalError, match="1 to 100 bytes"):
            pair.a.send_segment_header(tid, bad, False, 0.0)
    with pytest.raises(LocalError, match="announced 150 bytes"):
        pair.a.send_segment_header(tid, 60, True, 0.0)
    with pytest.raises(LocalError, match="not being sent"):
        pair.a.send_segment_header(tid + 1, 10, True, 0.0)
    assert pair.a.send_segment_header(tid, 100, False, 0.0)
    assert pair.a.send_segment_header(tid, 50, True, 0.0)


def test_send_api_misuse() -> None:
    conn = TcpclConnection(Role.ACTIVE, TcpclConfig(), 0.0)
    with pytest.raises(LocalError):
        conn.start_transfer(None, 0.0)
    with pytest.raises(LocalError):
        conn.send_bundle(b"x", 0.0)
    with pytest.raises(LocalError):
        conn.send_segment(0, b"x", True, 0.0)
    pair = ConnectionPair(TcpclConfig(), TcpclConfig(transfer_mru=10))
    pair.handshake()
    with pytest.raises(LocalError):
        pair.a.start_transfer(11, 0.0)
    tid = pair.a.start_transfer(None, 0.0)
    pair.a.send_segment(tid, bytes(10), False, 0.0)
    with pytest.raises(LocalError):
        pair.a.send_segment(tid, bytes(1), False, 0.0)
    with pytest.raises(LocalError):
        pair.a.start_transfer(1 << 64, 0.0)
    with pytest.raises(LocalError):
        pair.p.complete_transfer(99, 0.0)
    with pytest.raises(LocalError):
        pair.p.refuse_transfer(99, 0, 0.0)
    with pytest.raises(LocalError):
        pair.p.acknowledge(99, 0.0)
    with pytest.raises(LocalError):
        pair.a.close(256, 0.0)


def test_final_ack_waits_for_complete_transfer() -> None:
    pair = small_mru_pair(1000)
    tid = pair.a.send_bundle(b"bundle", 0.0)
    pair.pump()
    assert [m for m in pair.passive.messages() if isinstance(m, XferAck)] == []
    assert pair.p.transfers_in_progress
    with pytest.raises(LocalError):
        pair.p.complete_transfer(tid + 1, 0.0)
    pair.p.complete_transfer(tid, 0.0)
    pair.pump()
    assert pair.active.take() == [TransferAcknowledged(tid, 6, True)]
    with pytest.raises(LocalError):
        pair.p.complete_transfer(tid, 0.0)


def test_manual_acknowledgement() -> None:
    pair = small_mru_pair(10, auto_ack=False)
    tid = pair.a.start_transfer(None, 0.0)
    pair.a.send_segment(tid, bytes(25), False, 0.0)
    pair.pump()
    assert [m for m in pair.passive.messages() if isinstance(m, XferAck)] == []
    with pytest.raises(LocalError):
        pair.p.complete_transfer(tid, 0.0)  # the END segment has not arrived
    pair.p.acknowledge(tid, 0.0)
    pair.pump()
    assert [e.acked_length for e in pair.active.take() if isinstance(e, TransferAcknowledged)] == [10, 20, 25]
    pair.a.send_segment(tid, bytes(15), True, 0.0)
    pair.pump()
    pair.p.acknowledge(tid, 0.0)  # the intermediate one only
    pair.pump()
    assert pair.active.take() == [TransferAcknowledged(tid, 35, False)]
    pair.p.complete_transfer(tid, 0.0)
    pair.pump()
    assert pair.active.take() == [TransferAcknowledged(tid, 40, True)]


def test_responses_stay_in_transfer_order() -> None:
    pair = small_mru_pair(10)
    first = pair.a.send_bundle(bytes(5), 0.0)
    second = pair.a.send_bundle(bytes(25), 0.0)
    pair.pump()
    # Transfer 0 awaits its final ack: transfer 1's acknowledgements wait behind it.
    assert [m for m in pair.passive.messages() if isinstance(m, XferAck)] == []
    pair.p.complete_transfer(second, 0.0)
    pair.pump()
    assert pair.active.take() == []
    pair.p.complete_transfer(first, 0.0)
    pair.pump()
    assert pair.active.take() == [
        TransferAcknowledged(first, 5, True),
        TransferAcknowledged(second, 10, False),
        TransferAcknowledged(second, 20, False),
        TransferAcknowledged(second, 25, True),
    ]


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


def test_receiver_refuses_mid_transfer_and_later_segments_are_refused_too() -> None:
    pair = small_mru_pair(10)
    tid = pair.a.start_transfer(None, 0.0)
    pair.a.send_segment(tid, bytes(15), False, 0.0)
    pair.flush(pair.active, pair.passive, 0.0)
    pair.collect()
    pair.p.refuse_transfer(tid, XferRefuseReason.NO_RESOURCES, 0.0)
    with pytest.raises(LocalError):
        pair.p.refuse_transfer(tid, XferRefuseReason.NO_RESOURCES, 0.0)
    # More segments were already on their way when the refusal left.
    pair.a.send_segment(tid, bytes(15), False, 0.0)
    pair.pump()
    refusals = [m for m in pair.passive.messages() if isinstance(m, XferRefuse)]
    assert refusals == [XferRefuse(XferRefuseReason.NO_RESOURCES, tid)] * 3
    # The sender reports the refusal once and ignores the repeats without MSG_REJECT.
    a_events = pair.active.take()
    assert [e for e in a_events if not isinstance(e, TransferAcknowledged)] == [TransferRefused(tid, 2)]
    assert not any(isinstance(m, MsgReject) for m in pair.active.messages())
    assert pair.a.send_segment(tid, b"more", True, 0.0) is False
    assert pair.a.can_start_transfer
    # The receiver got no data for it after the refusal, and nothing closes the transfer twice.
    assert not any(isinstance(e, TransferAborted) for e in pair.passive.take())
    # The next transfer works.
    nxt = pair.a.send_bundle(b"ok", 0.0)
    pair.pump()
    assert received_data(pair.passive.take(), nxt) == b"ok"


def test_receiver_refuses_a_whole_transfer_before_completing_it() -> None:
    pair = small_mru_pair(100)
    tid = pair.a.send_bundle(b"not wanted", 0.0)
    pair.pump()
    pair.p.refuse_transfer(tid, XferRefuseReason.COMPLETED, 0.0)
    pair.pump()
    assert pair.active.take() == [TransferRefused(tid, XferRefuseReason.COMPLETED)]
    assert not pair.a.transfers_in_progress and not pair.p.transfers_in_progress


def test_refusal_waits_for_earlier_transfers_final_ack() -> None:
    pair = small_mru_pair(100)
    first = pair.a.send_bundle(b"first", 0.0)
    second = pair.a.send_bundle(b"second", 0.0)
    pair.pump()
    pair.p.refuse_transfer(second, XferRefuseReason.NOT_ACCEPTABLE, 0.0)
    pair.pump()
    assert pair.active.take() == []  # RFC 9174 §5.2.4: earlier transfers are answered first
    pair.p.complete_transfer(first, 0.0)
    pair.pump()
    assert pair.active.take() == [TransferAcknowledged(first, 5, True), TransferRefused(second, 4)]


def segment(flags: int, tid: int, data: bytes = b"", ext: tuple[ExtensionItem, ...] = ()) -> bytes:
    return encode_message(XferSegment(flags, tid, data, ext))


START, END = SEGMENT_START, SEGMENT_END


def test_announced_length_over_transfer_mru_is_refused_up_front() -> None:
    conn = established(config=TcpclConfig(transfer_mru=100))
    events, sent = feed(conn, segment(START, 7, bytes(10), (transfer_length_item(101),)))
    assert sent == [XferRefuse(XferRefuseReason.NO_RESOURCES, 7)]
    assert len(events) == 1 and isinstance(events[0], ProtocolViolation)
    assert (events[0].error.message_kind, events[0].error.reason, events[0].transfer_id) == (
        "xfer_refuse",
        2,
        7,
    )
    events, sent = feed(conn, segment(END, 7, bytes(10)))
    assert (events, sent) == ([], [XferRefuse(XferRefuseReason.NO_RESOURCES, 7)])


def test_transfer_over_mru_without_length_is_refused_when_it_gets_there() -> None:
    conn = established(config=TcpclConfig(transfer_mru=100, segment_mru=60))
    events, sent = feed(conn, segment(START, 1, bytes(60)))
    assert [type(e) for e in events] == [TransferStarted, SegmentReceived]
    assert sent == [XferAck(START, 1, 60)]
    events, sent = feed(conn, segment(0, 1, bytes(41)))
    assert sent == [XferRefuse(XferRefuseReason.NO_RESOURCES, 1)]
    assert [type(e) for e in events] == [ProtocolViolation, TransferAborted]
    assert events[1] == TransferAborted(1, True)
    events, sent = feed(conn, segment(END, 1, bytes(1)))
    assert sent == [XferRefuse(XferRefuseReason.NO_RESOURCES, 1)]


@pytest.mark.parametrize(("sizes", "total"), [((5, 5), 9), ((5, 4), 10), ((11,), 10)])
def test_data_disagreeing_with_transfer_length_is_not_acceptable(sizes: tuple[int, ...], total: int) -> None:
    conn = established()
    frames = []
    for i, size in enumerate(sizes):
        flags = (START if i == 0 else 0) | (END if i == len(sizes) - 1 else 0)
        ext = (transfer_length_item(total),) if i == 0 else ()
        frames.append(segment(flags, 3, bytes(size), ext))
    events, sent = feed(conn, b"".join(frames))
    assert sent[-1] == XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 3)
    violations = [e for e in events if isinstance(e, ProtocolViolation)]
    assert [v.error.reason for v in violations] == [XferRefuseReason.NOT_ACCEPTABLE]
    assert not any(isinstance(e, SegmentReceived) and e.end for e in events)


@pytest.mark.parametrize(
    "ext",
    [
        (ExtensionItem(0x8123, b"", 1),),
        (transfer_length_item(3), transfer_length_item(3)),
        (ExtensionItem(TRANSFER_LENGTH_EXTENSION, b"\x00\x03"),),
    ],
    ids=["unknown-critical", "two-lengths", "short-length"],
)
def test_transfer_extension_failures(ext: tuple[ExtensionItem, ...]) -> None:
    conn = established()
    events, sent = feed(conn, segment(START | END, 4, b"abc", ext))
    assert sent == [XferRefuse(XferRefuseReason.EXTENSION_FAILURE, 4)]
    assert len(events) == 1 and isinstance(events[0], ProtocolViolation)
    assert events[0].error.reason == XferRefuseReason.EXTENSION_FAILURE


def test_malformed_transfer_extension_list_is_extension_failure() -> None:
    conn = established()
    frame = struct.pack(">BBQI", 1, START | END, 4, 3) + b"\x00\x00\x01" + struct.pack(">Q", 1) + b"z"
    events, sent = feed(conn, frame + encode_message(Keepalive()))
    assert sent == [XferRefuse(XferRefuseReason.EXTENSION_FAILURE, 4)]
    assert isinstance(events[0], ProtocolViolation)
    assert events[1] == KeepaliveReceived()  # the stream stayed in step


def test_unknown_non_critical_and_known_critical_transfer_extensions() -> None:
    conn = established(config=TcpclConfig(known_transfer_extensions=frozenset({0x8002})))
    ext = (ExtensionItem(0x8001, b"ignored"), ExtensionItem(0x8002, b"known", 1))
    events, sent = feed(conn, segment(START | END, 4, b"abc", ext))
    assert events == [TransferStarted(4, None, ext), SegmentReceived(4, b"abc", True, True)]
    assert sent == []


# --------------------------------------------------------------------------------------------
# Bad input: the exact answer on the wire
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("data", [b"dtn?\x04\x00", b"HTTP/1.1 200 OK\r\n", b"\x00"])
def test_bad_magic_closes_without_sending(role: Role, data: bytes) -> None:
    conn = TcpclConnection(role, TcpclConfig(), 0.0)
    conn.data_to_send()
    conn.receive_data(data, 0.0)
    assert conn.data_to_send() == b""
    events = list(conn.events())
    assert isinstance(events[0], ProtocolViolation) and events[0].error.reason is None
    assert events[1:] == [ConnectionClosed(False)]
    assert conn.state is State.CLOSED
    conn.receive_data(b"more", 0.0)  # ignored once closed
    assert conn.next_event() is NEED_DATA


@pytest.mark.parametrize("version", [3, 5])
def test_passive_answers_other_versions_with_version_mismatch(version: int) -> None:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(), 0.0)
    conn.receive_data(encode_contact_header(ContactHeader(0, version)), 0.0)
    assert decode_wire(conn.data_to_send(), contact=True) == [
        ContactHeader(0, 4),
        SessTerm(SessTermReason.VERSION_MISMATCH),
    ]
    events = list(conn.events())
    assert events[0] == ContactHeaderReceived(version, False)
    assert isinstance(events[1], ProtocolViolation) and events[1].error.reason == 2
    assert events[2:] == [SessionTerminated(2, False), ConnectionClosed(False)]


def test_active_closes_on_a_lower_version() -> None:
    conn = TcpclConnection(Role.ACTIVE, TcpclConfig(), 0.0)
    conn.data_to_send()
    conn.receive_data(encode_contact_header(ContactHeader(0, 3)), 0.0)
    assert conn.data_to_send() == b""
    assert conn.state is State.CLOSED


@pytest.mark.parametrize("mtype", [0x00, 0x08, 0xF0, 0xFF])
def test_unknown_message_type_is_rejected_and_closes(mtype: int) -> None:
    conn = established()
    events, sent = feed(conn, bytes([mtype]) + encode_message(Keepalive()))
    assert sent == [MsgReject(MsgRejectReason.TYPE_UNKNOWN, mtype)]
    assert isinstance(events[0], ProtocolViolation) and events[0].error.message_kind == "msg_reject"
    assert events[-1] == ConnectionClosed(False)
    assert conn.state is State.CLOSED


def test_sess_init_when_established_is_unexpected() -> None:
    conn = established()
    events, sent = feed(conn, encode_message(peer_sess_init()) + encode_message(Keepalive()))
    assert sent == [MsgReject(MsgRejectReason.UNEXPECTED, MessageType.SESS_INIT)]
    assert events[1:] == [KeepaliveReceived()]
    assert conn.state is State.ESTABLISHED


def test_segment_before_session_is_unexpected_and_skipped() -> None:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(), 0.0)
    conn.receive_data(encode_contact_header(), 0.0)
    conn.data_to_send()
    list(conn.events())
    _, sent = feed(conn, segment(START | END, 0, b"\x07" * 30) + encode_message(peer_sess_init()))
    assert sent[0] == MsgReject(MsgRejectReason.UNEXPECTED, MessageType.XFER_SEGMENT)
    assert isinstance(sent[1], SessInit)
    assert conn.state is State.ESTABLISHED


def test_segment_over_our_segment_mru() -> None:
    conn = established(config=TcpclConfig(segment_mru=10))
    events, sent = feed(
        conn, segment(START, 5, bytes(11)) + segment(END, 5, bytes(3)) + encode_message(Keepalive())
    )
    assert sent == [
        MsgReject(MsgRejectReason.UNSUPPORTED, MessageType.XFER_SEGMENT),
        XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 5),
        XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 5),
    ]
    assert isinstance(events[0], ProtocolViolation) and events[0].error.reason == MsgRejectReason.UNSUPPORTED
    assert events[1:] == [KeepaliveReceived()]
    # Mid-transfer: the announced transfer is aborted.
    events, sent = feed(conn, segment(START, 6, bytes(10)) + segment(0, 6, bytes(11)))
    assert sent[1:] == [
        MsgReject(MsgRejectReason.UNSUPPORTED, MessageType.XFER_SEGMENT),
        XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 6),
    ]
    assert events[-1] == TransferAborted(6, True)


def test_segment_of_unknown_transfer_without_start() -> None:
    conn = established()
    events, sent = feed(conn, segment(END, 9, b"data") + segment(START | END, 10, b"ok"))
    assert sent == [MsgReject(MsgRejectReason.UNEXPECTED, MessageType.XFER_SEGMENT)]
    assert isinstance(events[0], ProtocolViolation) and events[0].transfer_id == 9
    assert events[1:] == [TransferStarted(10, None, ()), SegmentReceived(10, b"ok", True, True)]


def test_new_start_abandoning_a_transfer_refuses_the_old_one() -> None:
    conn = established()
    events, sent = feed(conn, segment(START, 1, b"half") + segment(START | END, 2, b"new"))
    assert sent == [XferAck(START, 1, 4), XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 1)]
    assert [type(e) for e in events] == [
        TransferStarted,
        SegmentReceived,
        ProtocolViolation,
        TransferAborted,
        TransferStarted,
        SegmentReceived,
    ]
    conn.complete_transfer(2, 0.0)
    assert decode_wire(conn.data_to_send()) == [XferAck(START | END, 2, 3)]


def test_reused_transfer_id_is_unexpected() -> None:
    conn = established()
    feed(conn, segment(START | END, 1, b"one"))
    _, sent = feed(conn, segment(START | END, 1, b"again"))
    assert sent == [MsgReject(MsgRejectReason.UNEXPECTED, MessageType.XFER_SEGMENT)]


def test_bad_acks_and_refusals() -> None:
    pair = small_mru_pair(100)
    tid = pair.a.send_bundle(b"abc", 0.0)
    pair.pump()
    events, sent = feed(pair.a, encode_message(XferAck(END, tid, 4)))
    assert sent == [MsgReject(MsgRejectReason.UNSUPPORTED, MessageType.XFER_ACK)]
    events, sent = feed(pair.a, encode_message(XferAck(END, 77, 1)))
    assert sent == [MsgReject(MsgRejectReason.UNEXPECTED, MessageType.XFER_ACK)]
    events, sent = feed(pair.a, encode_message(XferRefuse(0, 77)))
    assert sent == [MsgReject(MsgRejectReason.UNEXPECTED, MessageType.XFER_REFUSE)]
    assert all(isinstance(e, ProtocolViolation) for e in events)
    # Still in step: the real acknowledgement completes the transfer.
    events, sent = feed(pair.a, encode_message(XferAck(END | START, tid, 3)))
    assert events == [TransferAcknowledged(tid, 3, True)]


def test_message_rejected_event() -> None:
    conn = established()
    events, sent = feed(conn, encode_message(MsgReject(MsgRejectReason.UNSUPPORTED, 1)))
    assert (events, sent) == ([MessageRejected(2, 1)], [])


def test_second_sess_term_is_unexpected() -> None:
    conn = established()
    feed(conn, encode_message(XferSegment(START, 0, b"x")))  # keeps the session open
    events, sent = feed(conn, encode_message(SessTerm(3)))
    assert sent == [SessTerm(3, 1)]
    assert events[-1] == SessionTerminated(3, True)
    events, sent = feed(conn, encode_message(SessTerm(3)))
    assert sent == [MsgReject(MsgRejectReason.UNEXPECTED, MessageType.SESS_TERM)]


@pytest.mark.parametrize("which", ["sess_init", "segment"])
def test_oversized_extension_lists_end_the_session(which: str) -> None:
    if which == "sess_init":
        conn = TcpclConnection(Role.PASSIVE, TcpclConfig(max_extensions_length=100), 0.0)
        conn.receive_data(encode_contact_header(), 0.0)
        conn.data_to_send()
        frame = b"\x07\x00\x00" + bytes(16) + b"\x00\x00" + struct.pack(">I", 101)
    else:
        conn = established(config=TcpclConfig(max_extensions_length=100))
        frame = struct.pack(">BBQI", 1, START, 0, 1 << 31)
    events, sent = feed(conn, frame)
    assert sent == [SessTerm(SessTermReason.RESOURCE_EXHAUSTION)]
    assert events[-2:] == [SessionTerminated(5, False), ConnectionClosed(False)]


def test_violations_leave_the_session_usable() -> None:
    pair = small_mru_pair(100)
    pair.p.receive_data(segment(END, 42, b"stray") + bytes([MessageType.KEEPALIVE]), 0.0)
    pair.a.receive_data(encode_message(XferAck(0, 5, 5)), 0.0)
    pair.pump()
    tid = pair.a.send_bundle(b"still fine", 0.0)
    pair.pump()
    pair.p.complete_transfer(tid, 0.0)
    pair.pump()
    assert pair.active.events[-1] == TransferAcknowledged(tid, 10, True)


# --------------------------------------------------------------------------------------------
# Keepalive and timers
# --------------------------------------------------------------------------------------------


def test_keepalive_timer_exact_values() -> None:
    pair = ConnectionPair(TcpclConfig(keepalive=30), TcpclConfig(keepalive=17), now=100.0)
    pair.handshake(100.0)
    assert pair.a.get_timer() == 117.0
    assert pair.p.get_timer() == 117.0
    pair.timers(116.9)  # too early: nothing happens
    assert Keepalive() not in pair.active.messages()
    pair.timers(117.0)
    assert pair.active.messages()[-1] == Keepalive()
    assert pair.passive.messages()[-1] == Keepalive()
    assert pair.active.take() == [KeepaliveReceived()]
    assert pair.passive.take() == [KeepaliveReceived()]
    # Next KEEPALIVE 17 s after the last message sent; idle timeout 34 s after the last received.
    assert pair.a.get_timer() == 134.0
    # Sending anything pushes the next KEEPALIVE back (the idle deadline, 117 + 34, is later).
    tid = pair.a.send_bundle(b"x", 120.0)
    assert pair.a.get_timer() == 137.0
    pair.pump(120.0)
    assert pair.a.get_timer() == 137.0
    pair.p.complete_transfer(tid, 125.0)
    assert pair.p.get_timer() == 142.0


def test_idle_timeout_after_twice_the_keepalive() -> None:
    conn = established(config=TcpclConfig(keepalive=10), peer=peer_sess_init(keepalive=10), now=0.0)
    conn.handle_timer(10.0)
    assert decode_wire(conn.data_to_send()) == [Keepalive()]
    assert conn.get_timer() == 20.0
    conn.handle_timer(19.999)
    assert conn.data_to_send() == b""
    conn.handle_timer(20.0)  # the peer said nothing for 2 × 10 s
    assert decode_wire(conn.data_to_send()) == [SessTerm(SessTermReason.IDLE_TIMEOUT)]
    assert list(conn.events()) == [SessionTerminated(SessTermReason.IDLE_TIMEOUT, False)]
    assert conn.state is State.ENDING
    # Still silent for another idle period: give up without a clean end.
    assert conn.get_timer() == 30.0  # the next KEEPALIVE comes first
    conn.handle_timer(30.0)
    assert decode_wire(conn.data_to_send()) == [Keepalive()]
    assert conn.get_timer() == 40.0
    conn.handle_timer(40.0)
    assert list(conn.events()) == [ConnectionClosed(False)]
    assert conn.get_timer() is None


def test_received_data_resets_the_idle_timer() -> None:
    conn = established(config=TcpclConfig(keepalive=10, idle_timeout=25.0), peer=peer_sess_init(keepalive=60))
    assert conn.get_timer() == 10.0
    conn.receive_data(encode_message(Keepalive()), 15.0)
    conn.handle_timer(25.0)
    assert decode_wire(conn.data_to_send()) == [Keepalive()]
    assert conn.state is State.ESTABLISHED
    conn.handle_timer(40.0)
    assert decode_wire(conn.data_to_send())[-1] == SessTerm(SessTermReason.IDLE_TIMEOUT)


def test_session_idle_timeout_ignores_keepalives() -> None:
    config = TcpclConfig(keepalive=10, session_idle_timeout=100.0)
    conn = established(config=config, peer=peer_sess_init(keepalive=10))
    for t in range(10, 100, 10):
        conn.receive_data(encode_message(Keepalive()), float(t))
        conn.handle_timer(float(t))
    assert conn.get_timer() == 100.0
    conn.handle_timer(100.0)
    assert decode_wire(conn.data_to_send())[-1] == SessTerm(SessTermReason.IDLE_TIMEOUT)


def test_session_idle_timeout_reset_by_transfers() -> None:
    conn = established(config=TcpclConfig(keepalive=0, session_idle_timeout=50.0))
    assert conn.get_timer() == 50.0
    conn.receive_data(segment(START | END, 0, b"x"), 30.0)
    assert conn.get_timer() == 80.0


@pytest.mark.parametrize("role", list(Role))
def test_contact_header_timeout_closes_without_a_word(role: Role) -> None:
    conn = TcpclConnection(role, TcpclConfig(contact_timeout=5.0), 10.0)
    conn.data_to_send()
    assert conn.get_timer() == 15.0
    conn.handle_timer(14.0)
    assert conn.state is State.CONTACT_WAIT
    conn.handle_timer(15.0)
    assert conn.data_to_send() == b""
    assert list(conn.events()) == [ConnectionClosed(False)]


def test_sess_init_timeout_terminates() -> None:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(contact_timeout=5.0), 0.0)
    conn.receive_data(encode_contact_header(), 2.0)
    conn.data_to_send()
    assert conn.get_timer() == 7.0
    conn.handle_timer(7.0)
    assert decode_wire(conn.data_to_send()) == [SessTerm(SessTermReason.IDLE_TIMEOUT)]
    assert conn.get_timer() == 12.0  # waiting for the reply, bounded by contact_timeout
    conn.receive_data(encode_message(SessTerm(SessTermReason.IDLE_TIMEOUT, 1)), 8.0)
    assert list(conn.events())[-1] == ConnectionClosed(True)


# --------------------------------------------------------------------------------------------
# Session termination
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("initiator", ["active", "passive"])
def test_clean_termination_either_direction(initiator: str) -> None:
    pair = ConnectionPair()
    pair.handshake()
    first, second = (pair.active, pair.passive) if initiator == "active" else (pair.passive, pair.active)
    first.conn.close(SessTermReason.BUSY, 5.0)
    assert first.conn.state is State.ENDING
    assert not first.conn.can_start_transfer
    pair.pump(5.0)
    assert first.messages()[-1] == SessTerm(SessTermReason.BUSY, 0)
    assert second.messages()[-1] == SessTerm(SessTermReason.BUSY, 1)
    assert first.take() == [SessionTerminated(3, False), ConnectionClosed(True)]
    assert second.take() == [SessionTerminated(3, True), ConnectionClosed(True)]
    first.conn.close(SessTermReason.BUSY, 6.0)  # no-op once closed
    assert first.conn.data_to_send() == b""


def test_simultaneous_termination() -> None:
    pair = ConnectionPair()
    pair.handshake()
    pair.a.close(SessTermReason.UNKNOWN, 0.0)
    pair.p.close(SessTermReason.IDLE_TIMEOUT, 0.0)
    pair.pump()
    assert pair.active.messages()[-1] == SessTerm(0, 0)
    assert pair.passive.messages()[-1] == SessTerm(1, 0)
    assert pair.active.take()[-1] == ConnectionClosed(True)
    assert pair.passive.take()[-1] == ConnectionClosed(True)


def test_termination_with_transfers_in_progress_both_ways() -> None:
    pair = small_mru_pair(10)
    out = pair.a.start_transfer(None, 0.0)
    pair.a.send_segment(out, bytes(15), False, 0.0)
    back = pair.p.start_transfer(30, 0.0)
    pair.p.send_segment(back, bytes(12), False, 0.0)
    pair.pump()
    pair.active.take()
    pair.passive.take()
    pair.a.close(SessTermReason.UNKNOWN, 1.0)
    pair.pump(1.0)
    assert pair.a.state is State.ENDING and pair.p.state is State.ENDING
    with pytest.raises(LocalError):
        pair.a.start_transfer(None, 1.0)
    with pytest.raises(LocalError):
        pair.p.send_bundle(b"late", 1.0)
    # Both in-progress transfers may finish.
    pair.a.send_segment(out, bytes(5), True, 2.0)
    pair.p.send_segment(back, bytes(18), True, 2.0)
    pair.pump(2.0)
    assert pair.a.state is State.ENDING
    pair.p.complete_transfer(out, 3.0)
    pair.pump(3.0)
    assert pair.a.state is State.ENDING  # its own incoming transfer still awaits completion
    pair.a.complete_transfer(back, 4.0)
    pair.pump(4.0)
    assert pair.active.events[-1] == ConnectionClosed(True)
    assert pair.passive.events[-1] == ConnectionClosed(True)
    assert received_data(pair.passive.events, out) == bytes(5)
    assert TransferAcknowledged(out, 20, True) in pair.active.events
    assert TransferAcknowledged(back, 30, True) in pair.passive.events


def test_new_transfer_while_ending_is_refused_session_terminating() -> None:
    conn = established()
    tid = conn.start_transfer(None, 0.0)
    conn.send_segment(tid, b"keeps the session open", False, 0.0)
    conn.close(SessTermReason.UNKNOWN, 0.0)
    conn.data_to_send()
    list(conn.events())
    events, sent = feed(conn, segment(START | END, 1, b"new"))
    assert sent == [XferRefuse(XferRefuseReason.SESSION_TERMINATING, 1)]
    assert events == []


def test_immediate_close_aborts_transfers() -> None:
    pair = small_mru_pair(10)
    out = pair.a.start_transfer(None, 0.0)
    pair.a.send_segment(out, bytes(15), False, 0.0)
    pair.pump()
    pair.passive.take()
    pair.active.take()
    pair.a.close(SessTermReason.RESOURCE_EXHAUSTION, 1.0, immediate=True)
    assert list(pair.a.events()) == [
        SessionTerminated(5, False),
        TransferAborted(out, False),
        ConnectionClosed(False),
    ]
    assert pair.a.send_segment(out, b"x", True, 1.0) is False
    pair.flush(pair.active, pair.passive, 1.0)
    pair.p.receive_eof(1.0)
    assert list(pair.p.events()) == [
        SessionTerminated(5, True),
        TransferAborted(out, True),
        ConnectionClosed(False),
    ]


def test_end_of_stream_mid_transfer() -> None:
    pair = small_mru_pair(10)
    tid = pair.a.start_transfer(None, 0.0)
    pair.a.send_segment(tid, bytes(15), False, 0.0)
    pair.pump()
    pair.passive.take()
    pair.p.receive_eof(1.0)
    assert list(pair.p.events()) == [TransferAborted(tid, True), ConnectionClosed(False)]
    pair.p.complete_transfer(tid, 1.0)  # no-op once closed
    pair.p.refuse_transfer(tid, 0, 1.0)
    pair.p.acknowledge(tid, 1.0)
    assert pair.p.data_to_send() == b""


def test_received_but_uncompleted_transfer_is_not_aborted_on_close() -> None:
    pair = small_mru_pair(100)
    tid = pair.a.send_bundle(b"whole", 0.0)
    pair.pump()
    pair.passive.take()
    pair.p.receive_eof(1.0)
    # The receiver holds the whole bundle; only the sender sees it fail.
    assert list(pair.p.events()) == [ConnectionClosed(False)]
    pair.a.receive_eof(1.0)
    assert list(pair.a.events()) == [TransferAborted(tid, False), ConnectionClosed(False)]


def test_peer_refuses_session_before_it_starts() -> None:
    conn = TcpclConnection(Role.ACTIVE, TcpclConfig(), 0.0)
    conn.receive_data(encode_contact_header(), 0.0)
    conn.data_to_send()
    events, sent = feed(conn, encode_message(SessTerm(SessTermReason.BUSY)))
    assert sent == [SessTerm(SessTermReason.BUSY, 1)]
    assert events == [ContactHeaderReceived(4, False), SessionTerminated(3, True), ConnectionClosed(True)]


def test_sess_init_crossing_our_sess_term_is_ignored() -> None:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(), 0.0)
    conn.receive_data(encode_contact_header(), 0.0)
    conn.close(SessTermReason.BUSY, 0.0)
    conn.data_to_send()
    list(conn.events())
    events, sent = feed(conn, encode_message(peer_sess_init()) + encode_message(SessTerm(3, 1)))
    assert (events, sent) == ([ConnectionClosed(True)], [])


def test_transfers_crossing_our_sess_init_timeout_are_refused_session_terminating() -> None:
    # Our SESS_INIT wait timed out, but the peer had already established its side and started
    # sending: its SESS_INIT is ignored, its new transfer refused, its KEEPALIVE accepted.
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(contact_timeout=5.0), 0.0)
    conn.receive_data(encode_contact_header(), 0.0)
    conn.handle_timer(5.0)
    conn.data_to_send()
    list(conn.events())
    late = encode_message(peer_sess_init()) + segment(START | END, 0, b"late") + encode_message(Keepalive())
    events, sent = feed(conn, late, 6.0)
    assert sent == [XferRefuse(XferRefuseReason.SESSION_TERMINATING, 0)]
    assert events == [KeepaliveReceived()]
    events, sent = feed(conn, encode_message(SessTerm(SessTermReason.IDLE_TIMEOUT, 1)), 6.0)
    assert events == [ConnectionClosed(True)]


def test_close_before_contact_sends_nothing() -> None:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(), 0.0)
    conn.close(SessTermReason.UNKNOWN, 0.0)
    assert conn.data_to_send() == b""
    assert list(conn.events()) == [ConnectionClosed(False)]


def test_large_segment_data_is_passed_by_reference() -> None:
    pair = ConnectionPair(TcpclConfig(), TcpclConfig())
    pair.handshake()
    bundle = bytes(100_000)
    pair.a.send_bundle(bundle, 0.0)
    chunks = pair.a.data_chunks_to_send()
    assert any(isinstance(c, memoryview) and c.obj is bundle for c in chunks)
    assert pair.a.data_to_send() == b""
    mutable = bytearray(100_000)
    pair.a.send_bundle(mutable, 0.0)
    mutable[:5] = b"later"  # mutable input was copied when it was queued
    assert b"later" not in pair.a.data_to_send()


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_any_buffer_type_can_be_fed(kind: type) -> None:
    conn = established()
    conn.receive_data(kind(segment(START | END, 0, b"buffer")), 0.0)
    assert conn.next_event() == TransferStarted(0, None, ())
    assert conn.next_event() == SegmentReceived(0, b"buffer", True, True)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(kind(b""), 0.0)  # empty input is ignored
    assert conn.state is State.ESTABLISHED


# --------------------------------------------------------------------------------------------
# Feeding: whole, byte by byte, any chunking
# --------------------------------------------------------------------------------------------


def scripted_session() -> tuple[bytes, list[Event]]:
    """An active peer's whole output for a busy session, and the events a passive side saw."""
    pair = ConnectionPair(
        TcpclConfig(node_id=ACTIVE_NODE, segment_mru=7), TcpclConfig(node_id=PASSIVE_NODE, segment_mru=7)
    )
    pair.pump()
    for size in (0, 1, 7, 8, 30):
        tid = pair.a.send_bundle(bytes(range(size)), 0.0)
        pair.pump()
        pair.p.complete_transfer(tid, 0.0)
    pair.a.handle_timer(30.0)  # a KEEPALIVE
    pair.a.close(SessTermReason.UNKNOWN, 30.0)
    pair.pump(30.0)
    return bytes(pair.active.wire), pair.passive.events


SCRIPTED = scripted_session()


def run_passive(chunks: list[bytes]) -> list[Event]:
    conn = TcpclConnection(Role.PASSIVE, TcpclConfig(node_id=PASSIVE_NODE, segment_mru=7), 0.0)
    events: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk, 0.0)
        for event in conn.events():
            events.append(event)
            if isinstance(event, SegmentReceived) and event.end:
                conn.complete_transfer(event.transfer_id, 0.0)
    return events


def test_session_fed_whole_and_byte_by_byte() -> None:
    wire, expected = scripted_session()
    assert expected[-1] == ConnectionClosed(True)
    assert run_passive([wire]) == expected
    assert run_passive([wire[i : i + 1] for i in range(len(wire))]) == expected


@given(st.lists(st.integers(1, 60), max_size=200))
def test_session_fed_in_any_chunks(cuts: list[int]) -> None:
    wire, expected = SCRIPTED
    chunks = []
    pos = 0
    for cut in itertools.cycle(cuts or [len(wire)]):
        if pos >= len(wire):
            break
        chunks.append(wire[pos : pos + cut])
        pos += cut
    assert run_passive(chunks) == expected


# --------------------------------------------------------------------------------------------
# Robustness: random bytes in every state never raise
# --------------------------------------------------------------------------------------------


def connection_in(state_name: str) -> TcpclConnection:
    if state_name == "contact-passive":
        return TcpclConnection(Role.PASSIVE, TcpclConfig(), 0.0)
    if state_name == "contact-active":
        return TcpclConnection(Role.ACTIVE, TcpclConfig(), 0.0)
    if state_name == "sess-init":
        conn = TcpclConnection(Role.PASSIVE, TcpclConfig(), 0.0)
        conn.receive_data(encode_contact_header(), 0.0)
        return conn
    if state_name == "tls":
        conn = TcpclConnection(Role.PASSIVE, TcpclConfig(can_tls=True), 0.0)
        conn.receive_data(encode_contact_header(can_tls=True), 0.0)
        return conn
    conn = established(config=TcpclConfig(segment_mru=50, transfer_mru=200, max_extensions_length=64))
    if state_name in ("receiving", "ending"):
        conn.receive_data(segment(START, 0, b"part"), 0.0)
        tid = conn.start_transfer(None, 0.0)
        conn.send_segment(tid, b"out", False, 0.0)
    if state_name == "ending":
        conn.close(SessTermReason.UNKNOWN, 0.0)
    return conn


STATES = ["contact-passive", "contact-active", "sess-init", "tls", "established", "receiving", "ending"]

frames = st.one_of(
    st.binary(max_size=40),
    messages.map(encode_message),
    st.sampled_from([encode_contact_header(), b"dtn!\x04", b"\x01\x02", bytes([1, 3]) + bytes(8)]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(STATES),
    st.lists(frames, max_size=12),
    st.lists(st.integers(1, 50), min_size=1, max_size=10),
    st.lists(st.sampled_from(["timer", "complete", "refuse", "ack", "send", "close"]), max_size=4),
)
def test_random_input_only_ever_produces_events(
    state_name: str, pieces: list[bytes], cuts: list[int], actions: list[str]
) -> None:
    conn = connection_in(state_name)
    stream = b"".join(pieces)
    now = 1.0
    pos = 0
    for cut in itertools.cycle(cuts):
        if pos >= len(stream):
            break
        conn.receive_data(stream[pos : pos + cut], now)
        pos += cut
        now += 0.5
        for action in actions:
            try:
                if action == "timer":
                    conn.handle_timer(now + 1000.0)
                elif action == "complete":
                    conn.complete_transfer(0, now)
                elif action == "refuse":
                    conn.refuse_transfer(0, 1, now)
                elif action == "ack":
                    conn.acknowledge(0, now)
                elif action == "send":
                    conn.send_bundle(b"abc", now)
                else:
                    conn.close(SessTermReason.UNKNOWN, now)
            except LocalError:
                pass
    events = list(conn.events())
    assert all(isinstance(e, Event) for e in events)
    assert events.count(ConnectionClosed(True)) + events.count(ConnectionClosed(False)) <= 1
    assert isinstance(conn.data_to_send(), bytes)
    timer = conn.get_timer()
    assert timer is None or timer >= 0
    conn.receive_data(b"", now)  # ignored
    conn.receive_eof(now)
    assert conn.state is State.CLOSED


# --------------------------------------------------------------------------------------------
# End-to-end properties over random workloads
# --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 64),
    st.lists(st.tuples(st.booleans(), st.binary(max_size=200), st.booleans()), max_size=8),
    st.booleans(),
)
def test_every_transfer_ends_exactly_once(
    mru: int, bundles: list[tuple[bool, bytes, bool]], close_midway: bool
) -> None:
    """Random bundles both ways, each completed or refused by its receiver, maybe closing midway:
    every transfer ends exactly once at its sender, and every byte arrives in order."""
    pair = small_mru_pair(mru)
    sides = {"active": pair.active, "passive": pair.passive}
    sent: dict[tuple[str, int], tuple[bytes, bool]] = {}
    for i, (from_active, data, refuse) in enumerate(bundles):
        name = "active" if from_active else "passive"
        tid = sides[name].conn.send_bundle(data, float(i))
        sent[(name, tid)] = (data, refuse)
        pair.pump(float(i))
        if close_midway and i == len(bundles) // 2:
            pair.a.close(SessTermReason.UNKNOWN, float(i))
            pair.pump(float(i))
            break
    for name, side in sides.items():
        sender = "passive" if name == "active" else "active"
        for event in list(side.events):
            if isinstance(event, SegmentReceived) and event.end:
                if sent[(sender, event.transfer_id)][1]:
                    side.conn.refuse_transfer(event.transfer_id, XferRefuseReason.COMPLETED, 50.0)
                else:
                    side.conn.complete_transfer(event.transfer_id, 50.0)
    pair.pump(50.0)
    for name, side in sides.items():
        other = sides["passive" if name == "active" else "active"]
        endings: dict[int, list[Event]] = {}
        for event in side.events:
            if (isinstance(event, TransferAcknowledged) and event.complete) or isinstance(
                event, TransferRefused
            ):
                endings.setdefault(event.transfer_id, []).append(event)
        mine = {tid: value for (who, tid), value in sent.items() if who == name}
        assert set(endings) == set(mine)
        for tid, (data, refuse) in mine.items():
            assert len(endings[tid]) == 1
            assert isinstance(endings[tid][0], TransferRefused) == refuse
            assert received_data(other.events, tid) == data
    assert not any(isinstance(e, ProtocolViolation) for e in pair.active.events + pair.passive.events)
    if close_midway and bundles:
        assert pair.active.events[-1] == ConnectionClosed(True)
        assert pair.passive.events[-1] == ConnectionClosed(True)


# --------------------------------------------------------------------------------------------
# Streaming a large transfer without holding it
# --------------------------------------------------------------------------------------------


def test_one_gigabyte_streams_in_64k_pieces_without_memory_growth() -> None:
    piece = 64 * 1024
    count = (1 << 30) // piece
    big = TcpclConfig(segment_mru=piece, transfer_mru=1 << 31, max_segment_send=piece)
    pair = ConnectionPair(big, big)
    pair.handshake()
    tracemalloc.start()
    try:
        tid = pair.a.start_transfer(1 << 30, 0.0)
        received = 0
        for i in range(count):
            data = bytes([i & 0xFF]) * piece  # made lazily, dropped after use
            pair.a.send_segment(tid, data, i == count - 1, 0.0)
            wire = pair.a.data_to_send()
            for start in range(0, len(wire), 65_000):  # TCP reads do not line up with segments
                pair.p.receive_data(wire[start : start + 65_000], 0.0)
            for event in pair.p.events():
                if isinstance(event, SegmentReceived):
                    assert event.data[:1] == bytes([i & 0xFF]) or event.data[:1] == bytes([(i - 1) & 0xFF])
                    received += len(event.data)
            pair.flush(pair.passive, pair.active, 0.0)
            list(pair.a.events())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == 1 << 30
    assert peak < 1_000_000, peak
    pair.p.complete_transfer(tid, 0.0)
    pair.a.receive_data(pair.p.data_to_send(), 0.0)
    assert list(pair.a.events()) == [TransferAcknowledged(tid, 1 << 30, True)]
