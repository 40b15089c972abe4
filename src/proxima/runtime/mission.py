"""A mission description in TOML: its nodes, which of them may talk, at what rates; and its link windows.

The file names spacecraft (from element sets: the shipped snapshot or a file), relays (a geostationary
slot by longitude, or elements), ground stations (with an elevation mask), rates per link type and the
pairs allowed to talk. :func:`load_mission` reads it into typed dataclasses with errors naming the file
and the key; :func:`mission_windows` computes every allowed pair's windows with
:mod:`proxima.orbit.links`. The format, with the shipped example ``proxima:data/missions/proxima.toml``::

    name = "Proxima"

    [defaults]                     # optional
    grazing_height_km = 100        # line of sight between two nodes in space clears this height
    min_elevation_deg = 5          # mask of ground stations that give none
    step_s = 15                    # coarse search step

    [[spacecraft]]
    name = "ISS"
    elements = "ISS (ZARYA)"       # name or catalog number; default: the node's name
    elements_file = "iss.tle"      # optional, relative to this file; default: the shipped snapshot
    node_id = "ipn:10.0"           # optional DTN node ID

    [[relay]]
    name = "TDRS East"
    longitude_deg = -41.0          # a station-kept slot; or elements = "TDRS 12" (+ elements_file)

    [[ground]]
    name = "White Sands"
    latitude_deg = 32.5
    longitude_deg = -106.6
    height_m = 1450
    min_elevation_deg = 5          # or mask = [[azimuth_deg, min_elevation_deg], ...]

    [rates.space-relay]            # space-ground, space-relay, relay-ground, space-space,
    down = "300 Mbit/s"            # relay-relay, terrestrial; "down" flows from the node
    up = "72 kbit/s"               # higher up (spacecraft > relay > ground), "up" back;
                                   # "rate" sets both (required for same-level links)

    [[link]]
    between = ["ISS", "@relays"]   # node names, or @spacecraft / @relays / @ground for all of them
    # optional overrides: up, down, rate, max_range_km, grazing_height_km, min_duration_s,
    # light_time_s (terrestrial links only)

Rates are bytes per second when given as numbers, or text with a unit: ``bit/s``, ``kbit/s``,
``Mbit/s``, ``Gbit/s`` (also ``bps``, ``kbps``, ``Mbps``, ``Gbps``) or ``B/s``, ``kB/s``, ``MB/s``,
``GB/s`` (decimal prefixes). A terrestrial link (two ground stations) is always on.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from proxima.bpv7.eid import EID
from proxima.errors import ConfigError, InvalidEndpointID, ProximaError
from proxima.orbit.elements import Elements, GeoRelay
from proxima.orbit.links import (
    DEFAULT_GRAZING_HEIGHT_KM,
    DEFAULT_STEP_S,
    ElevationMask,
    GroundStation,
    LinkWindow,
    link_windows,
    terrestrial_window,
)
from proxima.orbit.propagate import DEFAULT_MAX_SPAN_DAYS
from proxima.runtime.elements import (
    DEFAULT_MAX_AGE_DAYS,
    LoadedElements,
    StaleElementsWarning,
    load_elements,
)

__all__ = [
    "EXAMPLE_MISSION_RESOURCE",
    "LINK_KINDS",
    "LinkSpec",
    "Mission",
    "MissionNode",
    "load_mission",
    "mission_windows",
    "parse_mission",
    "parse_rate",
]

EXAMPLE_MISSION_RESOURCE = ("data", "missions", "proxima.toml")
"""The shipped example mission inside the ``proxima`` package."""
LINK_KINDS = ("space-ground", "space-relay", "relay-ground", "space-space", "relay-relay", "terrestrial")
"""Link types, named by the roles of their two ends."""

Role = Literal["spacecraft", "relay", "ground"]
_LEVEL: dict[str, int] = {"spacecraft": 2, "relay": 1, "ground": 0}
_ROLE_WORD = {"spacecraft": "space", "relay": "relay", "ground": "ground"}
_GROUPS: dict[str, Role] = {"@spacecraft": "spacecraft", "@relays": "relay", "@ground": "ground"}
_KIND_OF = {
    ("ground", "ground"): "terrestrial",
    ("ground", "relay"): "relay-ground",
    ("ground", "space"): "space-ground",
    ("relay", "relay"): "relay-relay",
    ("relay", "space"): "space-relay",
    ("space", "space"): "space-space",
}
_RATE_UNITS = {
    "bit/s": 0.125,
    "bps": 0.125,
    "kbit/s": 125.0,
    "kbps": 125.0,
    "Mbit/s": 125e3,
    "Mbps": 125e3,
    "Gbit/s": 125e6,
    "Gbps": 125e6,
    "B/s": 1.0,
    "kB/s": 1e3,
    "MB/s": 1e6,
    "GB/s": 1e9,
}
_RATE_TEXT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z/]+)\s*$")


@dataclass(frozen=True, slots=True)
class MissionNode:
    """A node of the mission: its role, where it is (what the link engine takes), its DTN node ID.

    ``position`` carries the node's name (element sets are renamed to it). ``source`` says where
    the position came from: an elements file or snapshot, or "longitude" / "coordinates".
    """

    name: str
    role: Role
    position: Elements | GeoRelay | GroundStation
    node_id: EID | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One pair allowed to talk, with its resolved rates (bytes/s) and geometry options."""

    a: str
    b: str
    kind: str
    rate_ab_bytes_s: float
    rate_ba_bytes_s: float
    grazing_height_km: float = DEFAULT_GRAZING_HEIGHT_KM
    max_range_km: float | None = None
    min_duration_s: float = 0.0
    light_time_s: float | None = None


@dataclass(frozen=True, slots=True)
class Mission:
    """A parsed mission: nodes in file order (spacecraft, relays, ground) and allowed links."""

    name: str
    source: str
    nodes: tuple[MissionNode, ...]
    links: tuple[LinkSpec, ...]
    step_s: float = DEFAULT_STEP_S
    description: str = ""

    def node(self, name: str) -> MissionNode:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError(f"{self.source}: no node named {name!r}")

    def by_role(self, role: Role) -> tuple[MissionNode, ...]:
        """The nodes with one role, in file order."""
        return tuple(n for n in self.nodes if n.role == role)

    @property
    def elements(self) -> tuple[Elements, ...]:
        """Every element set the mission uses (to report their ages and epochs)."""
        return tuple(n.position for n in self.nodes if isinstance(n.position, Elements))


def parse_rate(value: Any, where: str) -> float:
    """Bytes per second from a number (bytes/s) or text with a unit ("300 Mbit/s", "9 kB/s")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where} must be bytes per second or text such as '300 Mbit/s', not {value!r}")
    if isinstance(value, str):
        match = _RATE_TEXT.match(value)
        if match is None or match.group(2) not in _RATE_UNITS:
            units = ", ".join(_RATE_UNITS)
            raise ConfigError(f"{where}: cannot read the rate {value!r} (a number and one of {units})")
        rate = float(match.group(1)) * _RATE_UNITS[match.group(2)]
    else:
        rate = float(value)
    if not (math.isfinite(rate) and rate >= 0.0):
        raise ConfigError(f"{where} must be a finite rate >= 0, not {value!r}")
    return rate


class _Table:
    """Typed access to one TOML table, every error naming ``file: key``."""

    def __init__(self, source: str, table: dict[str, Any], prefix: str = "") -> None:
        self.source = source
        self.table = table
        self.prefix = prefix

    def where(self, key: str) -> str:
        return f"{self.source}: {self.prefix}{key}"

    def fail(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {what}")

    def has(self, key: str) -> bool:
        return key in self.table

    def text(self, key: str, default: str | None = None) -> str:
        if key not in self.table:
            if default is None:
                raise ConfigError(f"{self.where(key)} is missing")
            return default
        value = self.table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be non-empty text, not {value!r}")
        return value.strip()

    def number(
        self, key: str, default: float | None = None, *, low: float = -math.inf, high: float = math.inf
    ) -> float:
        if key not in self.table:
            if default is None:
                raise ConfigError(f"{self.where(key)} is missing")
            return default
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, f"must be a number, not {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"must be within [{low:g}, {high:g}], not {value!r}")
        return float(value)

    def optional_number(self, key: str, *, low: float = -math.inf, high: float = math.inf) -> float | None:
        return self.number(key, low=low, high=high) if key in self.table else None

    def sub(self, key: str) -> _Table:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return _Table(self.source, value, f"{self.prefix}{key}.")

    def tables(self, key: str) -> list[_Table]:
        items = self.table.get(key, [])
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise self.fail(key, f"must be an array of tables ([[{key}]])")
        return [_Table(self.source, x, f"{self.prefix}{key}[{i}].") for i, x in enumerate(items)]

    def unknown(self, known: set[str]) -> None:
        extra = sorted(set(self.table) - known)
        if extra:
            raise self.fail(extra[0], f"unknown key (known: {', '.join(sorted(known))})")


class _ElementSource:
    """Loads element files once each (the snapshot when no file is named); warns about stale sets used."""

    def __init__(self, base: Path, now_unix: float | None, max_age_days: float | None) -> None:
        self.base = base
        self.now_unix = now_unix
        self.max_age_days = max_age_days
        self.cache: dict[str, LoadedElements] = {}

    def get(self, t: _Table) -> tuple[Elements, str]:
        path = t.text("elements_file", "") or None
        key = "elements_file" if path else "elements"
        resolved = None if path is None else self.base / path
        cache_key = str(resolved)
        try:
            loaded = self.cache.get(cache_key)
            if loaded is None:
                loaded = load_elements(resolved, now_unix=self.now_unix or 0.0, max_age_days=None)
                self.cache[cache_key] = loaded
        except ProximaError as exc:
            raise t.fail(key, str(exc)) from exc
        if "elements" in t.table:
            raw = t.table["elements"]
            if isinstance(raw, bool) or not isinstance(raw, str | int):
                raise t.fail("elements", f"must be a name or catalog number, not {raw!r}")
            wanted = str(raw)
        elif path is not None and len(loaded.elements) == 1:
            wanted = loaded.elements[0].name
        else:
            wanted = t.text("name")
        try:
            found = loaded.find(wanted)
        except ProximaError as exc:
            raise t.fail("elements", str(exc)) from exc
        index = loaded.elements.index(found)
        age = loaded.age_days[index]
        if self.now_unix is not None and self.max_age_days is not None and age > self.max_age_days:
            warnings.warn(
                f"{t.where('elements')}: elements for {found.name} from {loaded.sources[index]} are "
                f"{age:.1f} days old (limit {self.max_age_days:g}); predictions may be off by many "
                "kilometres - use newer elements",
                StaleElementsWarning,
                stacklevel=5,
            )
        return found, loaded.sources[index]


def _node_id(t: _Table) -> EID | None:
    if not t.has("node_id"):
        return None
    text = t.text("node_id")
    try:
        eid = EID.parse(text)
    except InvalidEndpointID as exc:
        raise t.fail("node_id", str(exc)) from exc
    if eid.is_none or eid != eid.node_id:
        raise t.fail("node_id", f"must be a node ID (ipn:N.0 or dtn://name/), not {text}")
    return eid


def _mask(t: _Table, default_deg: float) -> ElevationMask:
    if t.has("mask") and t.has("min_elevation_deg"):
        raise t.fail("mask", "give mask or min_elevation_deg, not both")
    if not t.has("mask"):
        return ElevationMask.constant(t.number("min_elevation_deg", default_deg, low=-90.0, high=90.0))
    raw = t.table["mask"]
    points: list[tuple[float, float]] = []
    if not isinstance(raw, list) or not raw:
        raise t.fail("mask", "must be a non-empty list of [azimuth_deg, min_elevation_deg] pairs")
    for i, point in enumerate(raw):
        ok = (
            isinstance(point, list)
            and len(point) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
        )
        if not ok:
            raise t.fail(f"mask[{i}]", f"must be an [azimuth_deg, min_elevation_deg] pair, not {point!r}")
        points.append((float(point[0]), float(point[1])))
    try:
        return ElevationMask.table(points)
    except ProximaError as exc:
        raise t.fail("mask", str(exc)) from exc


_NODE_KEYS = {"name", "node_id", "elements", "elements_file"}


def _spacecraft(t: _Table, elements: _ElementSource) -> MissionNode:
    t.unknown(_NODE_KEYS)
    name = t.text("name")
    found, source = elements.get(t)
    return MissionNode(name, "spacecraft", dataclasses.replace(found, name=name), _node_id(t), source)


def _relay(t: _Table, elements: _ElementSource) -> MissionNode:
    t.unknown(_NODE_KEYS | {"longitude_deg"})
    name = t.text("name")
    by_elements = t.has("elements") or t.has("elements_file")
    if by_elements == t.has("longitude_deg"):
        raise t.fail("longitude_deg", "give a relay either longitude_deg (a geostationary slot) or elements")
    if by_elements:
        found, source = elements.get(t)
        return MissionNode(name, "relay", dataclasses.replace(found, name=name), _node_id(t), source)
    relay = GeoRelay(name, t.number("longitude_deg", low=-180.0, high=360.0))
    return MissionNode(name, "relay", relay, _node_id(t), "longitude")


def _ground(t: _Table, default_min_el: float) -> MissionNode:
    t.unknown({"name", "node_id", "latitude_deg", "longitude_deg", "height_m", "min_elevation_deg", "mask"})
    name = t.text("name")
    station = GroundStation(
        name,
        t.number("latitude_deg", low=-90.0, high=90.0),
        t.number("longitude_deg", low=-180.0, high=360.0),
        t.number("height_m", 0.0, low=-1000.0, high=100_000.0) / 1000.0,
        _mask(t, default_min_el),
    )
    return MissionNode(name, "ground", station, _node_id(t), "coordinates")


def _rates(t: _Table) -> dict[str, tuple[float, float]]:
    """(up, down) bytes/s from a table with ``rate`` or ``up``/``down`` (empty table: none)."""
    if t.has("rate"):
        if t.has("up") or t.has("down"):
            raise t.fail("rate", "give rate, or up and down, not both")
        rate = parse_rate(t.table["rate"], t.where("rate"))
        return {"rate": (rate, rate)}
    if t.has("up") != t.has("down"):
        missing = "down" if t.has("up") else "up"
        raise ConfigError(f"{t.where(missing)} is missing (give up and down, or rate)")
    if not t.has("up"):
        return {}
    return {
        "updown": (parse_rate(t.table["up"], t.where("up")), parse_rate(t.table["down"], t.where("down")))
    }


def _expand(t: _Table, nodes: dict[str, MissionNode]) -> list[tuple[MissionNode, MissionNode]]:
    raw = t.table.get("between")
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, str) for x in raw)):
        raise t.fail("between", f"must be two node names (or @spacecraft, @relays, @ground), not {raw!r}")
    sides: list[list[MissionNode]] = []
    for i, key in enumerate(raw):
        if key in _GROUPS:
            sides.append([n for n in nodes.values() if n.role == _GROUPS[key]])
        elif key in nodes:
            sides.append([nodes[key]])
        else:
            known = ", ".join([*nodes, *_GROUPS])
            raise t.fail(f"between[{i}]", f"no node named {key!r} (known: {known})")
    explicit = not any(key in _GROUPS for key in raw)
    if explicit and raw[0] == raw[1]:
        raise t.fail("between", f"a node cannot link to itself ({raw[0]!r})")
    return [(a, b) for a in sides[0] for b in sides[1] if a.name != b.name]


def parse_mission(
    text: str,
    *,
    source: str = "<mission>",
    base: Path | None = None,
    now_unix: float | None = None,
    max_age_days: float | None = DEFAULT_MAX_AGE_DAYS,
) -> Mission:
    """Parse a mission description; element files are taken relative to ``base``.

    With ``now_unix`` element ages are checked against ``max_age_days`` (a StaleElementsWarning
    when older); without it no age warning is given.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    top = _Table(source, doc)
    top.unknown({"name", "description", "defaults", "spacecraft", "relay", "ground", "rates", "link"})
    defaults = top.sub("defaults")
    defaults.unknown({"grazing_height_km", "min_elevation_deg", "step_s"})
    grazing = defaults.number("grazing_height_km", DEFAULT_GRAZING_HEIGHT_KM, low=0.0, high=10_000.0)
    min_el = defaults.number("min_elevation_deg", 0.0, low=-90.0, high=90.0)
    step_s = defaults.number("step_s", DEFAULT_STEP_S, low=1.0, high=3600.0)
    elements = _ElementSource(base or Path(), now_unix, max_age_days)
    entries: list[tuple[MissionNode, _Table]] = []
    for key in ("spacecraft", "relay", "ground"):
        for t in top.tables(key):
            try:
                if key == "spacecraft":
                    node = _spacecraft(t, elements)
                elif key == "relay":
                    node = _relay(t, elements)
                else:
                    node = _ground(t, min_el)
            except ConfigError:
                raise
            except ProximaError as exc:  # a value the orbit engine refuses
                raise ConfigError(f"{t.where('')} {exc}") from exc
            entries.append((node, t))
    if not entries:
        raise ConfigError(f"{source}: a mission needs nodes ([[spacecraft]], [[relay]], [[ground]])")
    nodes: dict[str, MissionNode] = {}
    ids: dict[EID, str] = {}
    for node, t in entries:
        if node.name.startswith("@"):
            raise t.fail("name", "names starting with @ are reserved for groups")
        if node.name in nodes:
            raise t.fail("name", f"a second node is called {node.name!r}")
        nodes[node.name] = node
        if node.node_id is not None:
            if node.node_id in ids:
                raise t.fail("node_id", f"{node.node_id} is already {ids[node.node_id]!r}'s")
            ids[node.node_id] = node.name
    rates_table = top.sub("rates")
    rates_table.unknown(set(LINK_KINDS))
    rates: dict[str, dict[str, tuple[float, float]]] = {}
    for kind in LINK_KINDS:
        table = rates_table.sub(kind)
        table.unknown({"up", "down", "rate"})
        rates[kind] = _rates(table)
    links: list[LinkSpec] = []
    seen: dict[frozenset[str], str] = {}
    for index, t in enumerate(top.tables("link")):
        t.unknown(
            {"between", "up", "down", "rate", "max_range_km", "grazing_height_km"}
            | {"min_duration_s", "light_time_s"}
        )
        override = _rates(t)
        max_range = t.optional_number("max_range_km", low=1.0, high=1e9)
        link_grazing = t.number("grazing_height_km", grazing, low=0.0, high=10_000.0)
        min_duration = t.number("min_duration_s", 0.0, low=0.0, high=86_400.0)
        light = t.optional_number("light_time_s", low=0.0, high=100.0)
        for a, b in _expand(t, nodes):
            pair = frozenset((a.name, b.name))
            if pair in seen:
                raise t.fail("between", f"{a.name} and {b.name} are already linked by {seen[pair]}")
            seen[pair] = f"link[{index}]"
            words = sorted((_ROLE_WORD[a.role], _ROLE_WORD[b.role]))
            kind = _KIND_OF[(words[0], words[1])]
            if light is not None and kind != "terrestrial":
                raise t.fail("light_time_s", f"only terrestrial links take a light time ({a.name}-{b.name})")
            chosen = override or rates[kind]
            if not chosen:
                raise t.fail(
                    "between",
                    f"no rates for the {kind} link {a.name}-{b.name}: add [rates.{kind}] or up/down here",
                )
            ((label, (up, down)),) = chosen.items()
            if _LEVEL[a.role] > _LEVEL[b.role]:
                rate_ab, rate_ba = down, up
            elif _LEVEL[a.role] < _LEVEL[b.role]:
                rate_ab, rate_ba = up, down
            elif label == "rate":
                rate_ab, rate_ba = up, up
            else:
                where = "here" if override else f"in [rates.{kind}]"
                raise t.fail("between", f"a {kind} link has no up or down: give rate {where}")
            links.append(
                LinkSpec(a.name, b.name, kind, rate_ab, rate_ba, link_grazing, max_range, min_duration, light)
            )
    return Mission(
        name=top.text("name", "mission"),
        source=source,
        nodes=tuple(node for node, _ in entries),
        links=tuple(links),
        step_s=step_s,
        description=top.text("description", ""),
    )


def load_mission(
    path: str | Path | None = None,
    *,
    now_unix: float | None = None,
    max_age_days: float | None = DEFAULT_MAX_AGE_DAYS,
) -> Mission:
    """Read a mission file (None: the shipped example, ``proxima:data/missions/proxima.toml``)."""
    if path is None:
        resource = resources.files("proxima").joinpath(*EXAMPLE_MISSION_RESOURCE)
        text = resource.read_text(encoding="utf-8")
        return parse_mission(
            text,
            source="proxima:" + "/".join(EXAMPLE_MISSION_RESOURCE),
            now_unix=now_unix,
            max_age_days=max_age_days,
        )
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the mission: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text") from exc
    return parse_mission(text, source=str(p), base=p.parent, now_unix=now_unix, max_age_days=max_age_days)


def mission_windows(
    mission: Mission,
    t0_unix: float,
    t1_unix: float,
    *,
    max_span_days: float | None = DEFAULT_MAX_SPAN_DAYS,
) -> list[LinkWindow]:
    """Every allowed pair's link windows in [t0_unix, t1_unix], sorted by start, then pair.

    Times too far from an element set's epoch raise OrbitInputError (see ``max_span_days``).
    """
    out: list[LinkWindow] = []
    for spec in mission.links:
        a, b = mission.node(spec.a).position, mission.node(spec.b).position
        if isinstance(a, GroundStation) and isinstance(b, GroundStation):
            out.append(
                terrestrial_window(
                    a,
                    b,
                    t0_unix,
                    t1_unix,
                    rate_ab_bytes_s=spec.rate_ab_bytes_s,
                    rate_ba_bytes_s=spec.rate_ba_bytes_s,
                    owlt_s=spec.light_time_s,
                )
            )
            continue
        out += link_windows(
            a,
            b,
            t0_unix,
            t1_unix,
            rate_ab_bytes_s=spec.rate_ab_bytes_s,
            rate_ba_bytes_s=spec.rate_ba_bytes_s,
            kind=spec.kind,
            grazing_height_km=spec.grazing_height_km,
            max_range_km=spec.max_range_km,
            min_duration_s=spec.min_duration_s,
            step_s=mission.step_s,
            max_span_days=max_span_days,
        )
    out.sort(key=lambda w: (w.start_unix, w.a, w.b))
    return out
