"""The one exception tree of Proxima.

Every error Proxima raises on purpose is a :class:`ProximaError`, and says whose fault it is::

    ProximaError
    ├── LocalError              the caller asked for something invalid (bad argument, bad config,
    │   │                       a bundle that breaks a rule before it is ever sent)
    │   ├── InvalidEndpointID   an endpoint ID given as text or value is malformed
    │   ├── ConfigError         a configuration file or value is wrong (names the file and key)
    │   │   └── KeyFileError    a key or keyring file is missing, unreadable, too open or not Ed25519
    │   ├── StoreError          the local bundle store refuses or fails (full, corrupt, closed)
    │   ├── TooLargeForLink     a bundle is larger than a convergence layer carries in one piece
    │   │                       (``limit``: the most bytes it takes, e.g. a UDP datagram's)
    │   ├── PostError           a crew post as drafted breaks a rule (``field`` names it: "text[fr]:
    │   │                       5012 characters, at most 5000")
    │   ├── GroundError         the ground service refuses a request; ``reason`` is the HTTP status
    │   │   ├── NotFound        (404) no such post, account, question or slot
    │   │   ├── Forbidden       (401/403) not logged in, or the role does not allow it (four eyes)
    │   │   ├── Conflict        (409) the post's state does not allow this step (approve a rejected post)
    │   │   ├── InvalidInput    (400/413/415) a field is wrong (``field`` names it)
    │   │   └── RateLimited     (429) too many requests from one client (``retry_after`` seconds)
    │   └── OrbitInputError     an orbit computation was asked something invalid (a latitude of 91°,
    │                           a time too far from the elements' epoch, no elements at all)
    └── RemoteError             data that came from outside is wrong (a peer, a file, a socket)
        ├── Incomplete          the bytes stop before the item ends: feed more, then try again
        ├── ElementsError       orbital elements read from a file are wrong (``source``, ``line``,
        │                       ``field`` say where: "iss.tle line 2: checksum is 7, ...")
        ├── EnvelopeError       a received post envelope, media part or signed post is malformed
        │                       (``field`` names the field)
        ├── VerificationError   provenance fails: unknown signer, bad signature, doctored media...
        │                       (``failure`` says which)
        ├── MediaError          a media file is unreadable, of an unsupported format, or too large
        ├── ChannelError        a publishing channel (Mastodon, ActivityPub...) failed; ``transient``
        │                       says whether a retry may succeed, ``reason`` is the HTTP status
        └── ProtocolError       the bytes break a protocol rule; ``reason`` is the wire reason code
            ├── BundleError     RFC 9171: the bundle is invalid (``reason`` is a status report code)
            │   ├── CRCError    a block's CRC does not match the received bytes
            │   └── SecurityError   RFC 9172/9173: a security block is invalid or fails
            └── ConvergenceLayerError   a convergence-layer peer broke its protocol (TCPCLv4:
                                ``reason`` is the SESS_TERM or MSG_REJECT reason code to send)

Lower-layer exceptions (``cbor2``, ``cryptography``) are translated at the boundary with
``raise ... from exc`` so callers only ever need to catch these.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "CRCError",
    "ChannelError",
    "ConfigError",
    "Conflict",
    "ConvergenceLayerError",
    "ElementsError",
    "EnvelopeError",
    "Forbidden",
    "GroundError",
    "Incomplete",
    "InvalidEndpointID",
    "InvalidInput",
    "KeyFileError",
    "LocalError",
    "MediaError",
    "NotFound",
    "OrbitInputError",
    "PostError",
    "ProtocolError",
    "ProximaError",
    "RateLimited",
    "RemoteError",
    "SecurityError",
    "StoreError",
    "VerificationError",
]


class ProximaError(Exception):
    """Base of every error Proxima raises on purpose.

    ``reason`` is the wire reason code of the protocol concerned when it has one (a bundle
    status report reason, a TCPCL SESS_TERM or MSG_REJECT reason...), else ``None``.
    """

    reason: int | None

    def __init__(self, message: str, *, reason: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class LocalError(ProximaError):
    """The caller misused an API or asked for something the protocol forbids."""


class InvalidEndpointID(LocalError, ValueError):
    """An endpoint ID given as text or value is malformed."""


class RemoteError(ProximaError):
    """Data received from outside (a peer, a file) is wrong; not the caller's fault."""


class Incomplete(RemoteError):
    """The input ends before the item does. ``needed`` is a lower bound on bytes still missing."""

    def __init__(self, message: str, *, needed: int = 1, reason: int | None = None) -> None:
        super().__init__(message, reason=reason)
        self.needed = needed


class ProtocolError(RemoteError):
    """Received bytes break a protocol rule; ``reason`` carries the wire reason code."""


class BundleError(ProtocolError):
    """A received bundle is invalid (RFC 9171). ``reason`` is a status report reason code.

    ``block`` names the block concerned when there is one (its block number, 0 for the primary).
    """

    def __init__(self, message: str, *, reason: int | None = None, block: int | None = None) -> None:
        super().__init__(message, reason=reason)
        self.block = block


class CRCError(BundleError):
    """A block's CRC does not match the bytes received."""


class SecurityError(BundleError):
    """A BPSec block (RFC 9172/9173) is malformed, or its integrity or confidentiality check fails."""


class ConfigError(LocalError):
    """A configuration file or value is wrong; the message names the file and the key."""


class StoreError(LocalError):
    """The local bundle store refuses (full, closed) or fails (corrupt); nothing stored is lost."""


class TooLargeForLink(LocalError):
    """A bundle is larger than a convergence layer carries in one piece; ``limit`` is the most
    encoded bytes it takes (the node then splits the bundle into fragments, RFC 9171 §5.8)."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ConvergenceLayerError(ProtocolError):
    """A convergence-layer peer broke its protocol.

    For TCPCLv4 (RFC 9174) ``reason`` is the reason code to send back and ``message_kind`` says
    in which message: ``"sess_term"`` (SESS_TERM reason), ``"msg_reject"`` (MSG_REJECT reason)
    or ``"xfer_refuse"`` (XFER_REFUSE reason).
    """

    def __init__(self, message: str, *, reason: int | None = None, message_kind: str = "sess_term") -> None:
        super().__init__(message, reason=reason)
        self.message_kind = message_kind


class OrbitInputError(LocalError, ValueError):
    """An orbit computation was given invalid input by its caller (not bad data from a file).

    Examples: a latitude outside [-90°, 90°], a time further from the elements' epoch than the
    allowed span, a time at which SGP4 says the satellite has already decayed.
    """


class ElementsError(RemoteError):
    """Orbital elements read from outside (a TLE or OMM file) are malformed or physically invalid.

    ``source`` names the file (or ``"<text>"``), ``line`` is the 1-based line number when known,
    ``field`` the element or keyword concerned when known; the message starts with them so a
    one-line report says where to look: ``"iss.tle line 2: checksum is 7, the line sums to 3"``.
    """

    def __init__(
        self, message: str, *, source: str = "<text>", line: int | None = None, field: str | None = None
    ) -> None:
        where = source if line is None else f"{source} line {line}"
        if field is not None:
            where = f"{where} ({field})"
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line
        self.field = field


class PostError(LocalError, ValueError):
    """A crew post as drafted breaks a rule (too long, bad language tag, too many media...).

    ``field`` names the field concerned (``"text[fr]"``, ``"media[0].sha256"``); the message
    starts with it so a one-line report says what to fix.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.field = field


class KeyFileError(ConfigError):
    """A key or keyring file is missing, unreadable, too open, or holds no Ed25519 key of the right kind."""


class EnvelopeError(RemoteError):
    """A received post envelope, media part or signed post is malformed; ``field`` names the field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.field = field


class VerificationError(RemoteError):
    """A post or a media file fails provenance checks.

    ``failure`` is a short stable word for machines: ``"unknown_signer"``, ``"bad_signature"``
    (the signed bytes were altered, or another key signed them), ``"media_mismatch"`` (a doctored
    file), ``"media_not_listed"``, ``"code_mismatch"`` (a verification code of another post).
    """

    def __init__(self, message: str, *, failure: str) -> None:
        super().__init__(message)
        self.failure = failure


class GroundError(LocalError):
    """The ground service refuses a request; ``reason`` is the HTTP status its API answers with."""

    status: int = 400

    def __init__(self, message: str, *, field: str | None = None, status: int | None = None) -> None:
        code = self.status if status is None else status
        super().__init__(message if field is None else f"{field}: {message}", reason=code)
        self.field = field
        self.status = code


class NotFound(GroundError):
    """No such post, account, question, channel or slot."""

    status = 404


class Forbidden(GroundError):
    """Not logged in (401), or the account's role does not allow the step (403, four eyes included)."""

    status = 403


class Conflict(GroundError):
    """The step does not fit the current state (approve a rejected post, schedule in the past...)."""

    status = 409


class InvalidInput(GroundError):
    """A field of a request is wrong; ``field`` names it (413 too large, 415 unsupported type)."""

    status = 400


class RateLimited(GroundError):
    """Too many requests from one client; ``retry_after`` is how many seconds to wait."""

    status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MediaError(RemoteError):
    """A media file is unreadable, of a format that is not supported, or too large for a channel."""

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message if name is None else f"{name}: {message}")
        self.name = name


class ChannelError(RemoteError):
    """A publishing channel failed.

    ``channel`` names it; ``transient`` is true when trying again later may succeed (network
    down, 5xx, 429), false when it never will (401, a post the network refuses); ``reason`` is the
    HTTP status when there was one.
    """

    def __init__(
        self, message: str, *, channel: str, transient: bool, status: int | None = None
    ) -> None:
        super().__init__(f"{channel}: {message}", reason=status)
        self.channel = channel
        self.transient = transient
