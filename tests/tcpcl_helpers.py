"""Helpers for the TCPCLv4 core tests: a back-to-back connection pair, wire decoding, fake peers."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxima.cla.tcpcl import (
    ContactHeader,
    Event,
    Message,
    Role,
    SessInit,
    State,
    TcpclConfig,
    TcpclConnection,
    decode_contact_header,
    decode_message,
    encode_contact_header,
    encode_message,
)

ACTIVE_NODE = "ipn:1.0"
PASSIVE_NODE = "ipn:2.0"


def decode_wire(data: bytes, *, contact: bool = False) -> list[Message | ContactHeader]:
    """Every message in ``data`` (after a contact header when ``contact``); all must be whole."""
    out: list[Message | ContactHeader] = []
    pos = 0
    if contact:
        header, pos = decode_contact_header(data)
        out.append(header)
    while pos < len(data):
        message, pos = decode_message(data, pos)
        out.append(message)
    return out


@dataclass
class Side:
    """One end of a :class:`ConnectionPair`, with everything it emitted and sent."""

    conn: TcpclConnection
    events: list[Event] = field(default_factory=list)
    wire: bytearray = field(default_factory=bytearray)

    def take(self) -> list[Event]:
        """The events collected since the last call."""
        events, self.events = self.events, []
        return events

    def messages(self, *, contact: bool = True) -> list[Message | ContactHeader]:
        """Every message this side ever sent, decoded."""
        return decode_wire(bytes(self.wire), contact=contact)


class ConnectionPair:
    """An active and a passive connection wired back to back, in virtual time."""

    def __init__(
        self,
        active_config: TcpclConfig | None = None,
        passive_config: TcpclConfig | None = None,
        now: float = 0.0,
    ) -> None:
        self.active = Side(
            TcpclConnection(Role.ACTIVE, active_config or TcpclConfig(node_id=ACTIVE_NODE), now)
        )
        self.passive = Side(
            TcpclConnection(Role.PASSIVE, passive_config or TcpclConfig(node_id=PASSIVE_NODE), now)
        )

    @property
    def a(self) -> TcpclConnection:
        return self.active.conn

    @property
    def p(self) -> TcpclConnection:
        return self.passive.conn

    def flush(self, src: Side, dst: Side, now: float) -> bool:
        """Move what ``src`` has to send into ``dst``; True when anything moved."""
        data = src.conn.data_to_send()
        if not data:
            return False
        src.wire += data
        dst.conn.receive_data(data, now)
        return True

    def collect(self) -> None:
        self.active.events.extend(self.active.conn.events())
        self.passive.events.extend(self.passive.conn.events())

    def pump(self, now: float = 0.0) -> None:
        """Deliver bytes both ways until both sides are quiet."""
        for _ in range(10_000):
            moved = self.flush(self.active, self.passive, now)
            moved = self.flush(self.passive, self.active, now) or moved
            self.collect()
            if not moved:
                return
        raise AssertionError("the pair never went quiet")

    def handshake(self, now: float = 0.0) -> None:
        """Run contact and session negotiation (no TLS) and drop their events."""
        self.pump(now)
        assert self.a.state is State.ESTABLISHED, self.active.events
        assert self.p.state is State.ESTABLISHED, self.passive.events
        self.active.take()
        self.passive.take()

    def timers(self, now: float) -> None:
        """Fire both sides' timers at ``now`` (whether due or not) and deliver the results."""
        self.a.handle_timer(now)
        self.p.handle_timer(now)
        self.pump(now)


def peer_sess_init(
    node_id: str = PASSIVE_NODE,
    keepalive: int = 30,
    segment_mru: int = 1 << 20,
    transfer_mru: int = 1 << 30,
) -> SessInit:
    return SessInit(keepalive, segment_mru, transfer_mru, node_id)


def established(
    role: Role = Role.PASSIVE,
    config: TcpclConfig | None = None,
    peer: SessInit | None = None,
    now: float = 0.0,
) -> TcpclConnection:
    """A connection brought to ESTABLISHED by a scripted peer; its output and events drained."""
    conn = TcpclConnection(role, config or TcpclConfig(node_id=ACTIVE_NODE), now)
    peer = peer or peer_sess_init()
    if role is Role.PASSIVE:
        conn.receive_data(encode_contact_header() + encode_message(peer), now)
    else:
        conn.receive_data(encode_contact_header(), now)
        conn.receive_data(encode_message(peer), now)
    assert conn.state is State.ESTABLISHED, list(conn.events())
    conn.data_to_send()
    list(conn.events())
    return conn


def feed(
    conn: TcpclConnection, data: bytes, now: float = 0.0
) -> tuple[list[Event], list[Message | ContactHeader]]:
    """Feed ``data``; return the events and the messages the connection sent back."""
    conn.receive_data(data, now)
    return list(conn.events()), decode_wire(conn.data_to_send())
