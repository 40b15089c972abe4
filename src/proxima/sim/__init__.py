"""A discrete-event mission simulator running the real pure cores on a virtual clock.

One :class:`~proxima.agent.agent.BundleAgent` per node, each with a
:class:`~proxima.routing.ContactGraphRouter` over the contact plan; links exist only during
contacts, with the contact's rate and light time. Pure: no clock, no randomness, no I/O; the
caller (``proxima.runtime.scenario``) expands seeded traffic and outages into plain values.
"""

from proxima.sim.engine import EndToEnd, Simulator
from proxima.sim.model import Message, Reply
from proxima.sim.outages import cut_plan, periodic_windows
from proxima.sim.report import SimResult, percentile

__all__ = [
    "EndToEnd",
    "Message",
    "Reply",
    "SimResult",
    "Simulator",
    "cut_plan",
    "percentile",
    "periodic_windows",
]
