"""Contact plans in other implementations' formats: ION's ``ionadmin`` commands, µD3TN's
configuration messages and HDTN's JSON. Pure: text in, text out; the caller reads the file.

Units are converted here and nowhere else in this module's callers:

* **ION** (``ionrc``, ``man ionrc``): ``a contact START STOP FROM TO RATE [CONFIDENCE]`` with the
  rate in bytes/s, ``a range START STOP FROM TO OWLT`` in light seconds; times are ``+S``
  (seconds after the reference time: the caller's ``epoch_ms``, moved by ``@ TIME``) or
  ``YYYY/MM/DD-HH:MM:SS`` (UTC).
* **µD3TN** (``ud3tn_utils.config``, "µD3TN Contacts Data Format"):
  ``1(NODE_EID)[,RELIABILITY]:(CLA_ADDRESS):[(EID),...]:[{START,END,RATE[,[(EID),...]]},...];``
  with DTN times in seconds, the rate in bytes/s, the reliability in 100..1000 (/1000 is the
  confidence). The contacts are the local node's contacts *to* NODE_EID; there are no ranges.
* **HDTN** (``contactPlan.json``): ``{"contacts": [{"contact", "source", "dest", "startTime",
  "endTime", "rateBitsPerSec", "owlt"}, ...]}`` with times in seconds after the caller's
  ``epoch_ms`` (HDTN counts from its start), the rate in **bits**/s, ``owlt`` in seconds.

Writers round towards a shorter contact (start up, end down, rate down to a whole byte or bit
per second) and a longer light time (up), so a written plan never promises more than the plan
did; plans on whole seconds and whole rates come back unchanged.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from proxima.bpv7.eid import EID
from proxima.errors import InvalidEndpointID, LocalError
from proxima.routing.contacts import Contact, ContactPlan, NodeMap, PlanError, Range, dtn_s_to_ms, s_to_ms

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "PlanFile",
    "dtn_ms_from_utc",
    "read_hdtn",
    "read_ion",
    "read_plan",
    "read_ud3tn",
    "utc_from_dtn_ms",
    "write_hdtn",
    "write_ion",
    "write_ud3tn",
]

HDTN_DEFAULT_RATE_BITS_S = 1_000_000_000
"""The rate HDTN's libcgr assumes for a contact whose rate is 0 ("unlimited")."""


class PlanFile(NamedTuple):
    """A contact plan read from a file, with what else the file said.

    ``notes`` lists what was read but not used (other ``ionadmin`` commands, µD3TN reachable
    EIDs...), each naming its line. ``nodes`` names the nodes of ``dtn`` endpoints (µD3TN),
    ``addresses`` their convergence-layer addresses (µD3TN's CLA address strings).
    """

    plan: ContactPlan
    notes: tuple[str, ...] = ()
    nodes: NodeMap | None = None
    addresses: Mapping[int, str] | None = None


# -- calendar (no datetime in a pure core) ---------------------------------------------------

_DAYS_TO_2000 = 10957  # days from 1970-01-01 to 2000-01-01


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def dtn_ms_from_utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """DTN milliseconds of a UTC calendar time (no leap seconds, as DTN time counts)."""
    days = _days_from_civil(year, month, day) - _DAYS_TO_2000
    return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000


def utc_from_dtn_ms(dtn_ms: int) -> tuple[int, int, int, int, int, int]:
    """The UTC (year, month, day, hour, minute, second) of a DTN time (milliseconds dropped)."""
    s = dtn_ms // 1000
    days, rest = divmod(s, 86400)
    y, m, d = _civil_from_days(days + _DAYS_TO_2000)
    return y, m, d, rest // 3600, rest // 60 % 60, rest % 60


# -- ION -------------------------------------------------------------------------------------

_ION_ABS = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})-(\d{1,2}):(\d{1,2}):(\d{1,2})")
_ION_REL = re.compile(r"\+(\d+(?:\.\d+)?)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ION_IGNORED = {
    "1": "initialization",
    "s": "start",
    "x": "stop",
    "m": "management",
    "e": "echo",
    "v": "version",
    "!": "announce",
    "^": "region",
    "h": "help",
    "?": "help",
    "q": "quit",
    "l": "list",
    "i": "info",
    "b": "brief",
    "w": "watch",
    "t": "time",
}


class _Ion:
    """The state of an ``ionadmin`` command file being read."""

    def __init__(self, source: str, epoch_ms: int) -> None:
        self.source = source
        self.ref_ms = epoch_ms
        self.contacts: list[Contact] = []
        self.ranges: list[Range] = []
        self.notes: list[str] = []
        self.line = 0

    def fail(self, message: str, field: str | None = None) -> PlanError:
        return PlanError(message, source=self.source, line=self.line, field=field)

    def time(self, text: str, field: str) -> int:
        m = _ION_REL.fullmatch(text)
        if m:
            return self.ref_ms + s_to_ms(float(m.group(1)))
        m = _ION_ABS.fullmatch(text)
        if m:
            y, mo, d, h, mi, s = (int(g) for g in m.groups())
            if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
                raise self.fail(f"{text!r} is not a valid date and time", field)
            return dtn_ms_from_utc(y, mo, d, h, mi, s)
        raise self.fail(f"{text!r} is not a time (+SECONDS or YYYY/MM/DD-HH:MM:SS)", field)

    def node(self, text: str, field: str) -> int:
        if not text.isdigit() or len(text) > 20:
            raise self.fail(f"{text!r} is not a node number", field)
        return int(text)

    def number(self, text: str, field: str) -> float:
        if not _NUMBER.fullmatch(text) or len(text) > 40:
            raise self.fail(f"{text!r} is not a number >= 0", field)
        return float(text)

    def confidence(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0.0 <= value <= 1.0:
            raise self.fail(f"{text!r} is not a confidence in 0..1", "confidence")
        return value

    def command(self, words: list[str], raw: str) -> None:
        verb = words[0]
        if verb == "@":
            self.arity(words, 2, 2)
            self.ref_ms = self.time(words[1], "time")
            return
        if verb in ("a", "c", "d") and len(words) > 1 and words[1] in ("contact", "range"):
            getattr(self, f"{verb}_{words[1]}")(words)
            return
        if verb in _ION_IGNORED:
            what = _ION_IGNORED[verb]
            self.notes.append(f"{self.source} line {self.line}: {raw!r} ignored ({what} command)")
            return
        raise self.fail(f"unknown ionadmin command {raw[:60]!r}")

    def arity(self, words: list[str], low: int, high: int) -> None:
        if len(words) > high:
            raise self.fail(f"unexpected {' '.join(words[high:])[:40]!r} after the command")
        if len(words) < low:
            raise self.fail(f"{' '.join(words[:2])!r} needs {low - 1} arguments, {len(words) - 1} given")

    def a_contact(self, words: list[str]) -> None:
        self.arity(words, 7, 8)
        frm, to = self.node(words[4], "from node"), self.node(words[5], "to node")
        if words[2] == "-1":
            self.notes.append(f"{self.source} line {self.line}: registration contact of node {frm} ignored")
            return
        if words[3] == "0":
            self.notes.append(f"{self.source} line {self.line}: hypothetical contact {frm}->{to} ignored")
            return
        start, end = self.time(words[2], "start"), self.time(words[3], "stop")
        rate = self.number(words[6], "rate")
        confidence = self.confidence(words[7]) if len(words) == 8 else 1.0
        if end <= start:
            raise self.fail("the contact stops before it starts", "stop")
        if rate <= 0:
            raise self.fail("a scheduled contact needs a rate > 0", "rate")
        self.contacts.append(Contact(frm, to, start, end, rate, confidence))

    def a_range(self, words: list[str]) -> None:
        self.arity(words, 7, 7)
        start, end = self.time(words[2], "start"), self.time(words[3], "stop")
        frm, to = self.node(words[4], "from node"), self.node(words[5], "to node")
        owlt = self.number(words[6], "distance")
        if end <= start:
            raise self.fail("the range stops before it starts", "stop")
        self.ranges.append(Range(frm, to, start, end, math.ceil(owlt * 1000)))

    def c_contact(self, words: list[str]) -> None:
        self.arity(words, 6, 7)
        start = self.time(words[2], "start")
        frm, to = self.node(words[3], "from node"), self.node(words[4], "to node")
        rate = self.number(words[5], "rate")
        for i, c in enumerate(self.contacts):
            if (c.start_ms, c.from_node, c.to_node) == (start, frm, to):
                confidence = self.confidence(words[6]) if len(words) == 7 else c.confidence
                self.contacts[i] = c._replace(rate_bytes_s=rate, confidence=confidence)
                return
        raise self.fail(f"no contact {frm}->{to} starts at {words[2]} to change")

    def d_contact(self, words: list[str]) -> None:
        self.arity(words, 5, 5)
        frm, to = self.node(words[3], "from node"), self.node(words[4], "to node")
        start = None if words[2] == "*" else self.time(words[2], "start")
        self.contacts = [
            c
            for c in self.contacts
            if not (c.from_node == frm and c.to_node == to and (start is None or c.start_ms == start))
        ]

    def d_range(self, words: list[str]) -> None:
        self.arity(words, 5, 5)
        frm, to = self.node(words[3], "from node"), self.node(words[4], "to node")
        start = None if words[2] == "*" else self.time(words[2], "start")
        pairs = {(frm, to), (to, frm)} if frm < to else {(frm, to)}  # ION: lower first means both ways
        self.ranges = [
            r
            for r in self.ranges
            if not ((r.from_node, r.to_node) in pairs and (start is None or r.start_ms == start))
        ]


def read_plan(
    text: str,
    fmt: str,
    *,
    epoch_ms: int = 0,
    local: int | EID | None = None,
    nodes: NodeMap | None = None,
    source: str = "<text>",
) -> PlanFile:
    """A plan in format ``fmt``: ``ion``, ``hdtn`` (their relative times count from
    ``epoch_ms``) or ``ud3tn`` (read for the node ``local``, naming nodes from ``nodes``)."""
    if fmt == "ion":
        return read_ion(text, epoch_ms=epoch_ms, source=source)
    if fmt == "hdtn":
        return read_hdtn(text, epoch_ms=epoch_ms, source=source)
    if fmt == "ud3tn":
        if local is None:
            raise LocalError("a µD3TN contact plan is read for one node: say which (local)")
        return read_ud3tn(text, local=local, nodes=nodes, source=source)
    raise LocalError(f"unknown contact plan format {fmt!r} (ion, ud3tn or hdtn)")


def read_ion(text: str, *, epoch_ms: int = 0, source: str = "<text>") -> PlanFile:
    """A plan from ``ionadmin`` commands (an ``.ionrc`` file, or the ``ionadmin`` sections of an
    ``ionstart`` file). ``epoch_ms`` (DTN ms) is the reference time of ``+S`` times.

    Other ``ionadmin`` commands are noted and skipped; anything else is a :class:`PlanError`
    naming the line and the field.
    """
    lines = text.splitlines()
    sections = any(line.strip().lower().startswith("## begin ionadmin") for line in lines)
    state = _Ion(source, epoch_ms)
    inside = not sections
    for number, line in enumerate(lines, 1):
        state.line = number
        stripped = line.strip()
        if sections:
            low = stripped.lower()
            if low.startswith("## begin ionadmin"):
                inside = True
                continue
            if low.startswith("## end ionadmin"):
                inside = False
                continue
        if not inside or not stripped or stripped.startswith("#"):
            continue
        state.command(stripped.split(), stripped)
    try:
        plan = ContactPlan(state.contacts, state.ranges)
    except LocalError as exc:
        raise PlanError(str(exc), source=source) from exc
    return PlanFile(plan, tuple(state.notes))


def _ion_time(ms: int, epoch_ms: int | None, up: bool) -> str:
    if epoch_ms is None:
        s = (ms + 999) // 1000 if up else ms // 1000
        y, mo, d, h, mi, sec = utc_from_dtn_ms(s * 1000)
        return f"{y:04d}/{mo:02d}/{d:02d}-{h:02d}:{mi:02d}:{sec:02d}"
    rel = ms - epoch_ms
    if rel < 0:
        raise LocalError(f"a time {-rel} ms before the reference time cannot be written relative to it")
    return f"+{(rel + 999) // 1000 if up else rel // 1000}"


def _confidence_text(value: float) -> str:
    return repr(value)


def write_ion(plan: ContactPlan, *, epoch_ms: int | None = None) -> str:
    """``ionadmin`` commands for ``plan``: ``+S`` times after ``epoch_ms`` when given, else
    absolute UTC times. Contacts shorter than a second or slower than 1 byte/s are left out
    (with a comment saying so)."""
    out = ["# contact plan written by proxima"]
    if epoch_ms is not None:
        y, mo, d, h, mi, s = utc_from_dtn_ms(epoch_ms)
        out.append(f"# relative times count from {y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z")
    for c in plan.contacts:
        start, end = _ion_time(c.start_ms, epoch_ms, True), _ion_time(c.end_ms, epoch_ms, False)
        rate = math.floor(c.rate_bytes_s)
        if _secs(start, epoch_ms) >= _secs(end, epoch_ms) or rate < 1:
            out.append(f"# left out: contact {c.from_node}->{c.to_node} at {c.start_ms} ms (too short, slow)")
            continue
        conf = "" if c.confidence == 1.0 else f" {_confidence_text(c.confidence)}"
        out.append(f"a contact {start} {end} {c.from_node} {c.to_node} {rate}{conf}")
    for r in plan.ranges:
        start, end = _ion_time(r.start_ms, epoch_ms, False), _ion_time(r.end_ms, epoch_ms, True)
        out.append(f"a range {start} {end} {r.from_node} {r.to_node} {(r.owlt_ms + 999) // 1000}")
    return "\n".join(out) + "\n"


def _secs(text: str, epoch_ms: int | None) -> int:
    if epoch_ms is not None:
        return int(text[1:])
    m = _ION_ABS.fullmatch(text)
    if m is None:  # pragma: no cover - written by _ion_time
        raise LocalError(f"bad time {text!r}")
    return dtn_ms_from_utc(*(int(g) for g in m.groups())) // 1000


# -- µD3TN -----------------------------------------------------------------------------------


class _Cursor:
    """A position in µD3TN configuration text, with the line it is on."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.pos = 0
        self.source = source

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def fail(self, message: str, field: str | None = None) -> PlanError:
        return PlanError(message, source=self.source, line=self.line, field=field)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self, char: str, field: str) -> None:
        if self.peek() != char:
            got = self.text[self.pos : self.pos + 20] or "the end"
            raise self.fail(f"expected {char!r}, found {got!r}", field)
        self.pos += 1

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def until(self, char: str, field: str) -> str:
        end = self.text.find(char, self.pos)
        if end < 0 or "\n" in self.text[self.pos : end]:
            raise self.fail(f"no closing {char!r}", field)
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def integer(self, field: str) -> int:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isdigit():
            self.pos += 1
        if start == self.pos:
            raise self.fail(f"expected a number, found {self.text[start : start + 20]!r}", field)
        if self.pos - start > 20:
            raise self.fail("number too large", field)
        return int(self.text[start : self.pos])

    def eid_list(self, field: str) -> list[str]:
        self.take("[", field)
        out: list[str] = []
        while self.peek() != "]":
            if out:
                self.take(",", field)
            self.take("(", field)
            out.append(self.until(")", field))
        self.pos += 1
        return out


class _Ud3tnContact(NamedTuple):
    start_s: int
    end_s: int
    rate: int
    line: int


def read_ud3tn(
    text: str, *, local: int | EID, nodes: NodeMap | None = None, source: str = "<text>"
) -> PlanFile:
    """A plan from µD3TN configuration messages (one or more, ``;``-terminated), as sent to
    the config endpoint of the node ``local``.

    Nodes named by ``dtn`` endpoints get numbers from ``nodes`` (a copy is returned in the
    result, with fresh numbers for nodes it did not know). Reachable-EID lists are noted and
    not used (contact graph routing finds what each contact reaches from the plan itself).
    """
    names = NodeMap() if nodes is None else nodes.copy()
    here = local if isinstance(local, int) else names.assign(local)
    cur = _Cursor(text, source)
    contacts: dict[int, list[Contact]] = {}
    addresses: dict[int, str] = {}
    notes: list[str] = []
    cur.skip_space()
    while cur.pos < len(text):
        line = cur.line
        cmd = cur.peek()
        if cmd not in ("1", "2", "3", "4"):
            raise cur.fail(f"expected a command 1-4, found {text[cur.pos : cur.pos + 20]!r}", "command")
        cur.pos += 1
        if cmd == "4" and cur.peek() == ";":
            cur.pos += 1
            notes.append(f"{source} line {line}: query command ignored")
            cur.skip_space()
            continue
        cur.take("(", "node ID")
        eid_text = cur.until(")", "node ID")
        try:
            node = names.assign(EID.parse(eid_text))
        except InvalidEndpointID as exc:
            raise cur.fail(str(exc), "node ID") from exc
        confidence = 1.0
        if cur.peek() == ",":
            cur.pos += 1
            reliability = cur.integer("reliability")
            if not 100 <= reliability <= 1000:
                raise cur.fail(f"reliability {reliability} is not in 100..1000", "reliability")
            confidence = reliability / 1000.0
        cla: str | None = None
        reach: list[str] = []
        listed: list[_Ud3tnContact] = []
        if cur.peek() == ":":
            cur.pos += 1
            if cur.peek() == "(":
                cur.pos += 1
                cla = cur.until(")", "CLA address")
            if cur.peek() == ":":
                cur.pos += 1
                if cur.peek() == "[":
                    reach = cur.eid_list("reachable EIDs")
                if cur.peek() == ":":
                    cur.pos += 1
                    if cur.peek() == "[":
                        listed = _ud3tn_contacts(cur, notes)
        cur.take(";", "end of command")
        if reach:
            notes.append(f"{source} line {line}: reachable EIDs of {eid_text} not used ({', '.join(reach)})")
        if cla is not None:
            addresses[node] = cla
        made = [
            Contact(here, node, dtn_s_to_ms(c.start_s), dtn_s_to_ms(c.end_s), float(c.rate), confidence)
            for c in listed
        ]
        have = contacts.setdefault(node, [])
        if cmd == "1":
            have.extend(made)
        elif cmd == "2":
            have[:] = made
        elif cmd == "3":
            if listed:
                gone = {(c.start_ms, c.end_ms) for c in made}
                have[:] = [c for c in have if (c.start_ms, c.end_ms) not in gone]
            else:
                have.clear()
                addresses.pop(node, None)
        else:
            notes.append(f"{source} line {line}: query command ignored")
        cur.skip_space()
    plan = ContactPlan([c for lst in contacts.values() for c in lst])
    return PlanFile(plan, tuple(notes), names, addresses)


def _ud3tn_contacts(cur: _Cursor, notes: list[str]) -> list[_Ud3tnContact]:
    cur.take("[", "contacts")
    out: list[_Ud3tnContact] = []
    while cur.peek() != "]":
        if out:
            cur.take(",", "contacts")
        line = cur.line
        cur.take("{", "contact")
        start = cur.integer("contact start")
        cur.take(",", "contact")
        end = cur.integer("contact end")
        cur.take(",", "contact")
        rate = cur.integer("contact rate")
        if cur.peek() == ",":
            cur.pos += 1
            reach = cur.eid_list("contact reachable EIDs")
            notes.append(f"{cur.source} line {line}: contact reachable EIDs not used ({', '.join(reach)})")
        cur.take("}", "contact")
        if end <= start:
            raise PlanError(
                "the contact ends before it starts", source=cur.source, line=line, field="contact end"
            )
        out.append(_Ud3tnContact(start, end, rate, line))
    cur.pos += 1
    return out


def write_ud3tn(
    plan: ContactPlan,
    *,
    local: int,
    nodes: NodeMap | None = None,
    addresses: Mapping[int, str] | None = None,
) -> str:
    """µD3TN configuration messages (one ``ADD`` per neighbour) for ``local``'s contacts.

    µD3TN keeps one reliability per node: the lowest confidence of the node's contacts is
    written. A node without an entry in ``addresses`` is written without a CLA address (µD3TN
    then needs the node configured already).
    """
    names = NodeMap() if nodes is None else nodes
    per: dict[int, list[Contact]] = {}
    for c in plan.contacts:
        if c.from_node == local and c.to_node != local:
            per.setdefault(c.to_node, []).append(c)
    lines = []
    for node in sorted(per):
        items = []
        for c in per[node]:
            start, end = (c.start_ms + 999) // 1000, c.end_ms // 1000
            rate = math.floor(c.rate_bytes_s)
            if end > start:
                items.append(f"{{{start},{end},{rate}}}")
        if not items:
            continue
        conf = min(c.confidence for c in per[node])
        reliability = "" if conf >= 1.0 else f",{min(1000, max(100, round(conf * 1000)))}"
        eid = str(names.eid(node))
        cla = (addresses or {}).get(node)
        if any(ch in eid + (cla or "") for ch in "()"):
            raise LocalError(f"µD3TN cannot carry parentheses in {eid!r} or {cla!r}")
        cla_text = f"({cla})" if cla is not None else ""
        lines.append(f"1({eid}){reliability}:{cla_text}::[{','.join(items)}];")
    return "\n".join(lines) + ("\n" if lines else "")


# -- HDTN ------------------------------------------------------------------------------------


def read_hdtn(text: str, *, epoch_ms: int = 0, source: str = "<text>") -> PlanFile:
    """A plan from HDTN's JSON contact plan; ``startTime``/``endTime`` count seconds from
    ``epoch_ms`` (DTN ms). Each contact also gives a range of its ``owlt`` over its span.

    A rate of 0 is HDTN's "unlimited": it is read as HDTN's default, 1 Gbit/s (noted). The
    deprecated ``rate`` field (Mbit/s) is read when ``rateBitsPerSec`` is missing (noted).
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"not JSON: {exc.msg}", source=source, line=exc.lineno) from exc
    except RecursionError as exc:
        raise PlanError("JSON nested too deeply", source=source) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("contacts"), list):
        raise PlanError('expected an object with a "contacts" list', source=source, field="contacts")
    contacts: list[Contact] = []
    ranges: list[Range] = []
    notes: list[str] = []
    for i, item in enumerate(doc["contacts"]):
        path = f"contacts[{i}]"
        if not isinstance(item, dict):
            raise PlanError("expected an object", source=source, field=path)

        def num(
            key: str, default: float | None = None, *, item: dict[str, Any] = item, path: str = path
        ) -> float:
            value = item.get(key, default)
            if value is None:
                raise PlanError("missing", source=source, field=f"{path}.{key}")
            if isinstance(value, str) and _NUMBER.fullmatch(value.strip()) and len(value) < 40:
                value = float(value)  # HDTN's property tree reads numbers given as strings too
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise PlanError(f"expected a number, not {value!r:.40}", source=source, field=f"{path}.{key}")
            if value < 0:
                raise PlanError(f"must be >= 0, not {value}", source=source, field=f"{path}.{key}")
            return float(value)

        frm, to = num("source"), num("dest")
        if not (frm.is_integer() and to.is_integer()):
            raise PlanError("node numbers are whole", source=source, field=f"{path}.source")
        start, end = epoch_ms + s_to_ms(num("startTime")), epoch_ms + s_to_ms(num("endTime"))
        if end <= start:  # HDTN's own generated plans have some; they can carry nothing
            notes.append(f"{source} {path}: ends before it starts, left out")
            continue
        if "rateBitsPerSec" in item or "rate" not in item:
            bits = num("rateBitsPerSec")
        else:
            bits = num("rate") * 1_000_000
            notes.append(f"{source} {path}: deprecated 'rate' (Mbit/s) read")
        if bits == 0:
            bits = HDTN_DEFAULT_RATE_BITS_S
            notes.append(f"{source} {path}: rate 0 (unlimited) read as {HDTN_DEFAULT_RATE_BITS_S} bit/s")
        owlt = num("owlt", 0)
        contacts.append(Contact(int(frm), int(to), start, end, bits / 8.0))
        ranges.append(Range(int(frm), int(to), start, end, math.ceil(owlt * 1000)))
    return PlanFile(ContactPlan(contacts, ranges), tuple(notes))


def write_hdtn(plan: ContactPlan, *, epoch_ms: int = 0) -> str:
    """HDTN's JSON contact plan for ``plan``: whole seconds after ``epoch_ms``, rates in whole
    bits/s, ``owlt`` in whole seconds (the light time at each contact's start, rounded up)."""
    items: list[dict[str, int]] = []
    for c in plan.contacts:
        start = -((epoch_ms - c.start_ms) // 1000)  # ceil((start - epoch) / 1000)
        end = (c.end_ms - epoch_ms) // 1000
        bits = math.floor(c.rate_bytes_s * 8)
        if end <= start or bits < 1:
            continue
        owlt_ms = plan.owlt_ms(c.from_node, c.to_node, c.start_ms)
        items.append(
            {
                "contact": len(items),
                "source": c.from_node,
                "dest": c.to_node,
                "startTime": start,
                "endTime": end,
                "rateBitsPerSec": bits,
                "owlt": (owlt_ms + 999) // 1000,
            }
        )
    return json.dumps({"contacts": items}, indent=4) + "\n"
