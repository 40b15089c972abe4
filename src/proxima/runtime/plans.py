"""Contact plans from a mission, and Proxima's own JSON plan format.

:func:`plan_from_mission` turns a mission's link windows (:mod:`proxima.runtime.mission`) into a
:class:`~proxima.routing.ContactPlan`: each window gives a contact each way (a direction of rate 0
gives none) and a range over the same span with the window's **largest** one-way light time, so the
plan never promises an earlier arrival than the geometry allows. Nodes are numbered by their
``node_id`` (``ipn:N.0`` is node N; a ``dtn://`` node ID gets a free number and is named in the
:class:`~proxima.routing.NodeMap`); a node without a ``node_id`` gets the next free number after every
number the mission uses (in file order), and is then ``ipn:N.0``.

The Proxima JSON plan (:func:`plan_to_json`, :func:`plan_from_json`)::

    {
      "format": "proxima-contact-plan", "version": 1,
      "mission": "Proxima",                      # optional, with "source", "from", "to"
      "nodes": [{"number": 10, "eid": "ipn:10.0", "name": "ISS"}, ...],
      "contacts": [{"from": 10, "to": 21, "from_name": "ISS", "to_name": "TDRS East",
                    "start": "2026-03-11T00:00:00.000Z", "end": "2026-03-11T00:41:15.000Z",
                    "rate_bytes_s": 37500000.0, "confidence": 1.0}, ...],
      "ranges": [{"from": 10, "to": 21, "from_name": "ISS", "to_name": "TDRS East",
                  "start": "...", "end": "...", "owlt_s": 0.131}, ...]
    }

Times are UTC ISO 8601 with milliseconds (the plan's resolution), rates bytes per second, light
times seconds. ``from``/``to`` are ipn node numbers; the ``*_name`` fields are informative (a
reader uses the numbers). Only ``contacts`` is required; ``nodes`` names ``dtn://`` nodes.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from proxima.bpv7.eid import EID, IpnEID
from proxima.errors import InvalidEndpointID, LocalError
from proxima.orbit.links import contacts as window_contacts
from proxima.routing.contacts import (
    Contact,
    ContactPlan,
    NodeMap,
    PlanError,
    Range,
    unix_s_to_dtn_ms,
)
from proxima.routing.formats import utc_from_dtn_ms
from proxima.runtime.mission import mission_windows

if TYPE_CHECKING:
    from collections.abc import Mapping

    from proxima.runtime.mission import Mission

__all__ = [
    "JSON_PLAN_FORMAT",
    "dtn_ms_to_iso",
    "iso_to_dtn_ms",
    "node_numbers",
    "plan_from_json",
    "plan_from_mission",
    "plan_to_json",
]

JSON_PLAN_FORMAT = "proxima-contact-plan"
"""The ``format`` value of Proxima's JSON contact plans."""


# -- times ------------------------------------------------------------------------------------


def iso_to_dtn_ms(text: str) -> int:
    """DTN milliseconds of UTC ISO 8601 text (``2026-03-11T20:04:34.5Z``; a date alone is midnight).

    ``Z``, ``+00:00`` or no offset mean UTC; other offsets are refused (give times in UTC).
    """
    s = text.strip()
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(s)
    except ValueError:
        raise LocalError(f"{text!r} is not an ISO 8601 time (such as 2026-03-11T00:00:00Z)") from None
    offset = when.utcoffset()
    if offset is not None and offset.total_seconds() != 0:
        raise LocalError(f"time {text!r} has a UTC offset; give times in UTC (suffix Z)")
    when = when.replace(tzinfo=UTC)
    delta = when - datetime(2000, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def dtn_ms_to_iso(dtn_ms: int) -> str:
    """UTC ISO 8601 text with milliseconds (``2026-03-11T00:00:00.000Z``) of a DTN time."""
    y, mo, d, h, mi, s = utc_from_dtn_ms(dtn_ms)
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{dtn_ms % 1000:03d}Z"


# -- from a mission ---------------------------------------------------------------------------


def node_numbers(mission: Mission) -> tuple[dict[str, int], NodeMap]:
    """Each mission node's number (by name), and the node map naming the ``dtn://`` ones."""
    names = NodeMap()
    numbers: dict[str, int] = {}
    for n in mission.nodes:
        if isinstance(n.node_id, IpnEID):
            numbers[n.name] = n.node_id.node
    for n in mission.nodes:
        if n.node_id is not None and not isinstance(n.node_id, IpnEID):
            number = _free(numbers)
            names.add(number, n.node_id)
            numbers[n.name] = number
    for n in mission.nodes:
        if n.node_id is None:
            numbers[n.name] = _free(numbers)
    return numbers, names


def _free(numbers: Mapping[str, int]) -> int:
    return max(numbers.values(), default=0) + 1


def plan_from_mission(
    mission: Mission, t0_unix: float, t1_unix: float, *, whole_seconds: bool = False
) -> tuple[ContactPlan, NodeMap]:
    """The contact plan of ``mission``'s link windows in [t0_unix, t1_unix], and its node map.

    With ``whole_seconds`` each contact (and its range) is cut to whole seconds, start up and end
    down, and a contact left shorter than a second is dropped: what ION, µD3TN and HDTN can carry.
    Times too far from an element set's epoch raise ``OrbitInputError``.
    """
    numbers, names = node_numbers(mission)
    contacts: list[Contact] = []
    ranges: list[Range] = []
    for c in window_contacts(mission_windows(mission, t0_unix, t1_unix)):
        start, end = unix_s_to_dtn_ms(c.start_unix), unix_s_to_dtn_ms(c.end_unix)
        if whole_seconds:
            start, end = -(-start // 1000) * 1000, end // 1000 * 1000
        if end <= start:
            continue
        a, b = numbers[c.from_node], numbers[c.to_node]
        contacts.append(Contact(a, b, start, end, c.rate_bytes_s, c.confidence))
        owlt = c.owlt_max_s if math.isfinite(c.owlt_max_s) else c.owlt_s
        ranges.append(Range(a, b, start, end, math.ceil(owlt * 1000)))
    return ContactPlan(contacts, ranges), names


# -- Proxima JSON -----------------------------------------------------------------------------


def plan_to_json(
    plan: ContactPlan,
    *,
    nodes: NodeMap | None = None,
    names: Mapping[int, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """``plan`` as a Proxima JSON plan; ``names`` names nodes (by number), ``extra`` adds top keys."""
    node_map = NodeMap() if nodes is None else nodes
    label = dict(names or {})
    numbers = sorted(plan.nodes | set(label) | {n for n, _ in node_map.items()})
    doc: dict[str, Any] = {"format": JSON_PLAN_FORMAT, "version": 1}
    doc.update(extra or {})
    doc["nodes"] = [{"number": n, "eid": str(node_map.eid(n)), "name": label.get(n)} for n in numbers]
    doc["contacts"] = [
        {
            "from": c.from_node,
            "to": c.to_node,
            "from_name": label.get(c.from_node),
            "to_name": label.get(c.to_node),
            "start": dtn_ms_to_iso(c.start_ms),
            "end": dtn_ms_to_iso(c.end_ms),
            "rate_bytes_s": c.rate_bytes_s,
            "confidence": c.confidence,
        }
        for c in plan.contacts
    ]
    doc["ranges"] = [
        {
            "from": r.from_node,
            "to": r.to_node,
            "from_name": label.get(r.from_node),
            "to_name": label.get(r.to_node),
            "start": dtn_ms_to_iso(r.start_ms),
            "end": dtn_ms_to_iso(r.end_ms),
            "owlt_s": r.owlt_ms / 1000,
        }
        for r in plan.ranges
    ]
    return _layout(doc)


def _layout(doc: Mapping[str, Any]) -> str:
    """JSON with one line per top-level key and per list item (readable, and diffs well)."""
    parts = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            items = ",\n".join(f"    {json.dumps(v)}" for v in value)
            parts.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


class _Reader:
    """Typed access to one JSON object of a plan, errors naming the file and the JSON path."""

    def __init__(self, source: str, item: Any, path: str) -> None:
        if not isinstance(item, dict):
            raise PlanError("expected an object", source=source, field=path)
        self.source = source
        self.item: dict[str, Any] = item
        self.path = path

    def fail(self, key: str, message: str) -> PlanError:
        return PlanError(message, source=self.source, field=f"{self.path}.{key}")

    def node(self, key: str) -> int:
        value = self.item.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, f"expected a node number >= 0, not {value!r:.40}")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        value = self.item.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, f"expected a number, not {value!r:.40}")
        return float(value)

    def time(self, key: str) -> int:
        value = self.item.get(key)
        if not isinstance(value, str):
            raise self.fail(key, f"expected an ISO 8601 time, not {value!r:.40}")
        try:
            return iso_to_dtn_ms(value)
        except LocalError as exc:
            raise self.fail(key, str(exc)) from None


def plan_from_json(text: str, *, source: str = "<text>") -> tuple[ContactPlan, NodeMap, dict[int, str]]:
    """A Proxima JSON plan: the plan, its node map and the node names it gives (by number)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"not JSON: {exc.msg}", source=source, line=exc.lineno) from None
    except RecursionError:
        raise PlanError("JSON nested too deeply", source=source) from None
    top = _Reader(source, doc, "$")
    if doc.get("format") != JSON_PLAN_FORMAT:
        raise top.fail("format", f"expected {JSON_PLAN_FORMAT!r}, not {doc.get('format')!r:.40}")
    nodes = NodeMap()
    names: dict[int, str] = {}
    lists: dict[str, list[Any]] = {}
    for key in ("nodes", "contacts", "ranges"):
        value = doc.get(key, [] if key != "contacts" else None)
        if not isinstance(value, list):
            raise top.fail(key, "expected a list")
        lists[key] = value
    for i, raw in enumerate(lists["nodes"]):
        r = _Reader(source, raw, f"nodes[{i}]")
        number = r.node("number")
        name, eid_text = r.item.get("name"), r.item.get("eid")
        if name is not None:
            if not isinstance(name, str):
                raise r.fail("name", f"expected text, not {name!r:.40}")
            names[number] = name
        if eid_text is not None:
            try:
                nodes.add(number, EID.parse(str(eid_text)))
            except (InvalidEndpointID, LocalError) as exc:
                raise r.fail("eid", str(exc)) from None
    contacts: list[Contact] = []
    for i, raw in enumerate(lists["contacts"]):
        r = _Reader(source, raw, f"contacts[{i}]")
        c = Contact(
            r.node("from"),
            r.node("to"),
            r.time("start"),
            r.time("end"),
            r.number("rate_bytes_s"),
            r.number("confidence", 1.0),
        )
        _check(source, r.path, [c], [])
        contacts.append(c)
    ranges: list[Range] = []
    for i, raw in enumerate(lists["ranges"]):
        r = _Reader(source, raw, f"ranges[{i}]")
        owlt = r.number("owlt_s")
        rng = Range(r.node("from"), r.node("to"), r.time("start"), r.time("end"), math.ceil(owlt * 1000))
        _check(source, r.path, [], [rng])
        ranges.append(rng)
    return ContactPlan(contacts, ranges), nodes, names


def _check(source: str, path: str, contacts: list[Contact], ranges: list[Range]) -> None:
    """Raise the plan model's complaint about one contact or range as a PlanError naming it."""
    try:
        ContactPlan(contacts, ranges)
    except LocalError as exc:
        raise PlanError(str(exc), source=source, field=path) from None
