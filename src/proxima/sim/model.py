"""What a simulation is fed: application messages, as plain values (DTN ms, node numbers, bytes)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DAY_MS", "Message", "Reply"]

DAY_MS = 86_400_000
"""One day in ms; DTN time 0 is midnight UTC, so ``t % DAY_MS`` is the UTC time of day."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A message sent back when the one carrying this reply is delivered (an answer to a
    question): ``delay_ms`` after its delivery, from its destination to its source."""

    size: int
    delay_ms: int
    klass: str
    lifetime_ms: int
    priority: int | None = None
    hours: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One application message: ``size`` payload bytes from node ``source`` to ``destination``
    posted at ``at_ms`` (DTN ms), in traffic class ``klass``.

    ``priority`` is the agent's class of service (None: by size, as the agent does). ``hours``
    is the sender's activity window as (start, end) ms of the UTC day: in end-to-end mode a
    sender only retries inside it. ``reply`` makes the destination answer on delivery.
    """

    at_ms: int
    source: int
    destination: int
    size: int
    klass: str
    lifetime_ms: int = 7 * DAY_MS
    priority: int | None = None
    hours: tuple[int, int] | None = None
    reply: Reply | None = None
    in_reply_to: int | None = None
    """The index of the message this one answers (set by the simulator)."""
