"""Contact plans and contact graph routing (CCSDS SABR). Pure: times are passed in.

:mod:`~proxima.routing.contacts` holds the plan model (DTN milliseconds, bytes/s, ipn node
numbers), :mod:`~proxima.routing.formats` reads and writes ION, µD3TN and HDTN plans,
:mod:`~proxima.routing.cgr` finds routes, and :mod:`~proxima.routing.router` puts them behind
the agent's ``Router`` interface.
"""

from proxima.routing.cgr import NO_EXPIRY, CgrRoute, ContactGraph
from proxima.routing.contacts import (
    DTN_EPOCH_UNIX_S,
    Contact,
    ContactPlan,
    NodeMap,
    PlanError,
    Range,
    dtn_s_to_ms,
    s_to_ms,
    unix_s_to_dtn_ms,
)
from proxima.routing.formats import (
    PlanFile,
    read_hdtn,
    read_ion,
    read_ud3tn,
    write_hdtn,
    write_ion,
    write_ud3tn,
)
from proxima.routing.router import ContactGraphRouter, estimated_size

__all__ = [
    "DTN_EPOCH_UNIX_S",
    "NO_EXPIRY",
    "CgrRoute",
    "Contact",
    "ContactGraph",
    "ContactGraphRouter",
    "ContactPlan",
    "NodeMap",
    "PlanError",
    "PlanFile",
    "Range",
    "dtn_s_to_ms",
    "estimated_size",
    "read_hdtn",
    "read_ion",
    "read_ud3tn",
    "s_to_ms",
    "unix_s_to_dtn_ms",
    "write_hdtn",
    "write_ion",
    "write_ud3tn",
]
