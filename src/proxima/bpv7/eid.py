"""Endpoint IDs of RFC 9171 §4.2.5: the ``dtn`` scheme (with ``dtn:none``) and the ``ipn`` scheme.

An endpoint ID has a text form (``dtn://ground/posts``, ``ipn:2.1``, ``dtn:none``) and a CBOR form
(``[1, "//ground/posts"]``, ``[2, [2, 1]]``, ``[1, 0]``). Both parse strictly and print
canonically; the encoded CBOR bytes are computed once and kept on the object.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any, Final

from proxima.bpv7 import _cbor
from proxima.errors import InvalidEndpointID

__all__ = ["DTN_NONE", "EID", "DtnEID", "IpnEID", "eid_from_cbor"]

SCHEME_DTN: Final = 1
SCHEME_IPN: Final = 2
_U64_MAX: Final = (1 << 64) - 1

# RFC 9171 §4.2.5.1.1: node-name is reg-name (RFC 3986) of at least one character; demux is any
# sequence of VCHAR (may be empty). A '~' first in the demux marks a non-singleton endpoint.
_NODE_NAME = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=%]+")
_VCHARS = re.compile(r"[\x21-\x7e]*")
# 2^64-1 has 20 decimal digits: longer numbers are refused before int() sees them (which would
# raise a plain ValueError past Python's int digit limit, and waste time well before it).
_IPN_TEXT = re.compile(r"ipn:(0|[1-9][0-9]{0,19})\.(0|[1-9][0-9]{0,19})")
_TOO_MANY_DIGITS = re.compile(r"[0-9]{21}")
_MAX_SHOWN: Final = 80


class _SafeRepr(reprlib.Repr):
    """A bounded ``repr`` for error messages about untrusted values: never raises, never huge."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxdict = 4
        self.maxstring = self.maxother = 40
        self.maxlong = 30

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:  # repr() of a big enough int raises ValueError; say what it is
            return f"<{'negative ' if x < 0 else ''}integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_SAFE_REPR: Final = _SafeRepr()


def _show(value: object, limit: int = 60) -> str:
    """A short ``repr`` of any value for an error message; never raises."""
    try:
        text = _SAFE_REPR.repr(value)
    except Exception:  # a value's own __repr__ may fail; the message must not
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip(text: str) -> str:
    """``text`` quoted for an error message, shortened when very long."""
    if len(text) <= _MAX_SHOWN:
        return repr(text)
    return f"{text[:_MAX_SHOWN]!r}... ({len(text)} characters)"


class EID:
    """An endpoint ID. Instances are immutable, hashable and compare by value."""

    __slots__ = ("_cbor", "_text")

    scheme: int
    _cbor: bytes
    _text: str

    @property
    def cbor(self) -> bytes:
        """The deterministic CBOR encoding of this endpoint ID."""
        return self._cbor

    def to_value(self) -> list[Any]:
        """The CBOR data model form: ``[scheme, ssp]``."""
        raise NotImplementedError

    @property
    def node_id(self) -> EID:
        """The node ID this endpoint belongs to (RFC 9171 §4.2.5.2 / §4.2.5.1.2)."""
        raise NotImplementedError

    @property
    def is_none(self) -> bool:
        """True for ``dtn:none``, the null endpoint."""
        return False

    @property
    def is_singleton(self) -> bool:
        """True unless this is a ``dtn`` endpoint whose demux starts with ``~`` (or dtn:none)."""
        return True

    @staticmethod
    def parse(text: str) -> EID:
        """Parse the text form; raises :class:`InvalidEndpointID` naming what is wrong."""
        if not isinstance(text, str):
            raise InvalidEndpointID(f"endpoint ID must be text, not {type(text).__name__}")
        if text.startswith("dtn:"):
            if text == "dtn:none":
                return DTN_NONE
            return DtnEID(text[4:])
        if text.startswith("ipn:"):
            m = _IPN_TEXT.fullmatch(text)
            if m is None:
                if _TOO_MANY_DIGITS.search(text):
                    raise InvalidEndpointID(
                        f"malformed ipn endpoint ID {_clip(text)}: a node or service number has "
                        "more than 20 digits (at most 2^64-1)"
                    )
                raise InvalidEndpointID(
                    f"malformed ipn endpoint ID {_clip(text)}: expected ipn:NODE.SERVICE with decimal "
                    "numbers and no leading zeros"
                )
            return IpnEID(int(m.group(1)), int(m.group(2)))
        scheme = text.split(":", 1)[0] if ":" in text else ""
        if scheme:
            raise InvalidEndpointID(
                f"unsupported endpoint ID scheme {_clip(scheme)} in {_clip(text)} (only dtn: and ipn:)"
            )
        raise InvalidEndpointID(f"endpoint ID {_clip(text)} has no scheme (expected dtn: or ipn:)")

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"EID({self._text!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EID):
            return self._cbor == other._cbor
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._cbor)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")


class DtnEID(EID):
    """A ``dtn:`` endpoint ID. ``ssp`` is ``None`` for ``dtn:none``, else ``//node/demux``."""

    __slots__ = ("ssp",)
    scheme = SCHEME_DTN
    ssp: str | None

    def __init__(self, ssp: str | None) -> None:
        if ssp is None:
            text, cbor = "dtn:none", b"\x82\x01\x00"
        else:
            if not isinstance(ssp, str):
                raise InvalidEndpointID(f"dtn scheme-specific part must be text, not {_show(ssp)}")
            _check_dtn_ssp(ssp)
            text = "dtn:" + ssp
            cbor = b"\x82\x01" + _cbor.text(ssp)
        object.__setattr__(self, "ssp", ssp)
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_cbor", cbor)

    @property
    def is_none(self) -> bool:
        return self.ssp is None

    @property
    def node_name(self) -> str:
        """The node name (between ``//`` and the next ``/``); empty for dtn:none."""
        if self.ssp is None:
            return ""
        return self.ssp[2:].split("/", 1)[0]

    @property
    def demux(self) -> str:
        """The demultiplexing token after the node name (may be empty)."""
        if self.ssp is None:
            return ""
        return self.ssp[2:].split("/", 1)[1]

    @property
    def is_singleton(self) -> bool:
        return self.ssp is not None and not self.demux.startswith("~")

    @property
    def node_id(self) -> EID:
        if self.ssp is None:
            return self
        return DtnEID(f"//{self.node_name}/")

    def to_value(self) -> list[Any]:
        return [SCHEME_DTN, 0 if self.ssp is None else self.ssp]


_NODE_IDS: dict[int, IpnEID] = {}
"""Node IDs already built (EIDs are immutable): a node ID is asked for several times per bundle."""


class IpnEID(EID):
    """An ``ipn:NODE.SERVICE`` endpoint ID (two 64-bit numbers)."""

    __slots__ = ("node", "service")
    scheme = SCHEME_IPN
    node: int
    service: int

    def __init__(self, node: int, service: int) -> None:
        for name, v in (("node", node), ("service", service)):
            if type(v) is not int or not 0 <= v <= _U64_MAX:
                raise InvalidEndpointID(f"ipn {name} number must be an integer 0..2^64-1, not {_show(v)}")
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "service", service)
        object.__setattr__(self, "_text", f"ipn:{node}.{service}")
        object.__setattr__(self, "_cbor", b"\x82\x02\x82" + _cbor.uint(node) + _cbor.uint(service))

    @property
    def node_id(self) -> EID:
        if self.service == 0:
            return self
        node = _NODE_IDS.get(self.node)
        if node is None:
            if len(_NODE_IDS) >= 4096:
                _NODE_IDS.clear()
            node = _NODE_IDS[self.node] = IpnEID(self.node, 0)
        return node

    def to_value(self) -> list[Any]:
        return [SCHEME_IPN, [self.node, self.service]]


def _check_dtn_ssp(ssp: str) -> None:
    if not ssp.startswith("//"):
        raise InvalidEndpointID(
            f"malformed dtn endpoint ID {_clip('dtn:' + ssp)}: expected dtn://NODE/DEMUX or dtn:none"
        )
    rest = ssp[2:]
    if "/" not in rest:
        raise InvalidEndpointID(
            f"malformed dtn endpoint ID {_clip('dtn:' + ssp)}: the node name must be followed by '/'"
        )
    node, demux = rest.split("/", 1)
    if not _NODE_NAME.fullmatch(node):
        raise InvalidEndpointID(
            f"malformed dtn endpoint ID {_clip('dtn:' + ssp)}: bad node name {_clip(node)} "
            "(letters, digits and -._~!$&'()*+,;=% only, at least one)"
        )
    if not _VCHARS.fullmatch(demux):
        raise InvalidEndpointID(
            f"malformed dtn endpoint ID {_clip('dtn:' + ssp)}: the demux may hold visible ASCII only"
        )


DTN_NONE: Final[DtnEID] = DtnEID(None)


def eid_from_cbor(value: object) -> EID:
    """Build an endpoint ID from its decoded CBOR value ``[scheme, ssp]``.

    Raises :class:`InvalidEndpointID` naming the problem; callers decoding received bytes
    translate it into a remote error.
    """
    if type(value) is not list or len(value) != 2:
        raise InvalidEndpointID(f"an endpoint ID must be a 2-element array, not {_show(value)}")
    scheme, ssp = value
    if type(scheme) is int and scheme == SCHEME_IPN:
        if type(ssp) is not list or len(ssp) != 2:
            raise InvalidEndpointID(f"ipn scheme-specific part must be [node, service], not {_show(ssp)}")
        node, service = ssp
        if type(node) is not int or type(service) is not int:
            raise InvalidEndpointID(f"ipn node and service must be integers, not {_show(ssp)}")
        if node < 0 or service < 0 or node > _U64_MAX or service > _U64_MAX:
            raise InvalidEndpointID(f"ipn numbers out of range: {_show(ssp)}")
        return IpnEID(node, service)
    if type(scheme) is int and scheme == SCHEME_DTN:
        if type(ssp) is int:
            if ssp != 0:
                raise InvalidEndpointID(
                    f"dtn scheme-specific part integer must be 0 (dtn:none), not {_show(ssp)}"
                )
            return DTN_NONE
        if type(ssp) is not str:
            raise InvalidEndpointID(f"dtn scheme-specific part must be text or 0, not {_show(ssp)}")
        return DtnEID(ssp)
    raise InvalidEndpointID(f"unknown endpoint ID scheme code {_show(scheme, 40)} (1 = dtn, 2 = ipn)")
