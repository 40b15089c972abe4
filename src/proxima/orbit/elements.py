"""Mean orbital elements: TLE/3LE and CCSDS OMM (JSON, XML, KVN, CSV) readers, a TLE writer.

Text in, :class:`Elements` out; no file access here (``proxima.runtime.elements`` reads files).
Errors in the text raise :class:`~proxima.errors.ElementsError` naming the source, the 1-based
line and the field, so one line of output tells the user where to look.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from xml.parsers import expat

import numpy as np
from sgp4.api import WGS72, Satrec

from proxima.errors import ElementsError, OrbitInputError
from proxima.orbit.timescale import SECONDS_PER_DAY, iso_to_unix

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "Elements",
    "GeoRelay",
    "OmmFormat",
    "alpha5_to_int",
    "elements_age_days",
    "format_tle",
    "int_to_alpha5",
    "parse_elements",
    "parse_omm",
    "parse_tle",
]

OmmFormat = Literal["json", "xml", "kvn", "csv"]

_XPDOTP = 1440.0 / (2.0 * math.pi)  # rev/day -> rad/min divisor, as in SGP4's twoline2rv
_DEG = math.pi / 180.0
_SGP4_EPOCH_JD = 2433281.5  # 1949-12-31T00:00 UTC, the origin of sgp4init's epoch argument
_UNIX_EPOCH_JD = 2440587.5
_ALPHA5_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are skipped (they look like 1 and 0)


def alpha5_to_int(catalog: str) -> int:
    """Catalog number of a 5-character TLE catalog field: "25544" -> 25544, "A0001" -> 100001."""
    text = catalog.strip()
    if text.isdigit():
        return int(text)
    if len(text) == 5 and text[0] in _ALPHA5_LETTERS and text[1:].isdigit():
        return (10 + _ALPHA5_LETTERS.index(text[0])) * 10000 + int(text[1:])
    raise ValueError(f"catalog number {catalog!r} is neither digits nor Alpha-5")


def int_to_alpha5(number: int) -> str:
    """The 5-character TLE form of a catalog number (Alpha-5 from 100000 to 339999)."""
    if 0 <= number <= 99999:
        return f"{number:05d}"
    if 100000 <= number <= 339999:
        head, tail = divmod(number, 10000)
        return f"{_ALPHA5_LETTERS[head - 10]}{tail:04d}"
    raise OrbitInputError(f"catalog number {number} does not fit a TLE (Alpha-5 stops at 339999)")


@dataclass(frozen=True, slots=True)
class Elements:
    """One SGP4 mean element set (TEME, WGS72), as published in a TLE or an OMM.

    ``catalog`` keeps the catalog number as text ("25544", Alpha-5 "A0001", or more digits for
    OMM-only objects); :attr:`catalog_number` gives it as an int. ``mean_motion_dot`` and
    ``mean_motion_ddot`` are the TLE/OMM fields (n-dot/2 in rev/day², n-double-dot/6 in rev/day³).
    """

    name: str
    catalog: str
    intl_designator: str
    epoch_unix: float
    inclination_deg: float
    raan_deg: float
    eccentricity: float
    arg_perigee_deg: float
    mean_anomaly_deg: float
    mean_motion_rev_day: float
    mean_motion_dot: float
    mean_motion_ddot: float
    bstar: float
    classification: str = "U"
    ephemeris_type: int = 0
    element_set_no: int = 999
    rev_at_epoch: int = 0

    @property
    def catalog_number(self) -> int:
        """The catalog number as an int (Alpha-5 decoded: "A0001" -> 100001)."""
        return alpha5_to_int(self.catalog)

    @property
    def period_minutes(self) -> float:
        """Orbital period from the mean motion, in minutes."""
        return 1440.0 / self.mean_motion_rev_day

    def satrec(self) -> Satrec:
        """A fresh ``sgp4.api.Satrec`` initialised from these elements (WGS72, improved mode).

        The epoch is handed to SGP4 exactly as its own TLE reader does (a whole Julian day plus
        the day fraction, snapped to the TLE's 8 decimals when it is within 2 µs of them), so
        results match ``Satrec.twoline2rv`` to the last bit for TLE-born elements.
        """
        days = math.floor(self.epoch_unix / SECONDS_PER_DAY)
        fraction = (self.epoch_unix - days * SECONDS_PER_DAY) / SECONDS_PER_DAY
        if abs(round(fraction, 8) - fraction) < 2e-11:
            fraction = round(fraction, 8)
        jd = days + _UNIX_EPOCH_JD
        sat = Satrec()
        sat.sgp4init(
            WGS72,
            "i",
            self.catalog_number,
            (jd + fraction) - _SGP4_EPOCH_JD,
            self.bstar,
            self.mean_motion_dot / (_XPDOTP * 1440.0),
            self.mean_motion_ddot / (_XPDOTP * 1440.0 * 1440.0),
            self.eccentricity,
            self.arg_perigee_deg * _DEG,
            self.inclination_deg * _DEG,
            self.mean_anomaly_deg * _DEG,
            self.mean_motion_rev_day / _XPDOTP,
            self.raan_deg * _DEG,
        )
        sat.jdsatepoch = jd
        sat.jdsatepochF = fraction
        return sat


@dataclass(frozen=True, slots=True)
class GeoRelay:
    """A station-kept geostationary relay given by its longitude only (no elements needed).

    Positions are on the equator at the geostationary radius (35,786 km altitude); TDRS-like
    relays are held within about 0.1° of their slot, so this is exact enough for link windows.
    """

    name: str
    longitude_deg: float

    def __post_init__(self) -> None:
        lon = self.longitude_deg
        if not math.isfinite(lon) or not -180.0 <= lon <= 360.0:
            raise OrbitInputError(f"relay {self.name!r}: longitude {lon}° is outside [-180°, 360°]")
        if lon > 180.0:
            object.__setattr__(self, "longitude_deg", lon - 360.0)


def elements_age_days(elements: Elements, now_unix: float) -> float:
    """Days from the elements' epoch to ``now_unix`` (negative when the epoch is in the future)."""
    return (now_unix - elements.epoch_unix) / SECONDS_PER_DAY


# --------------------------------------------------------------------------------------------
# TLE


def _checksum(line: str) -> int:
    return sum(int(c) if c.isdigit() else 1 if c == "-" else 0 for c in line[:68]) % 10


def _implied(field: str) -> float:
    """Parse an implied-decimal exponent field such as " 16153-3" or "-11606-4"."""
    text = field.strip()
    if not text:
        return 0.0
    match = re.fullmatch(r"([+-]?)\.?(\d{1,5})([+-])(\d)", text)
    if match is None:
        raise ValueError(f"{field!r} is not of the form ±NNNNN±E")
    sign, mantissa, esign, exponent = match.groups()
    return float(f"{sign or '+'}0.{mantissa}e{esign}{exponent}")


def _fmt_implied(value: float) -> str:
    if value == 0.0:
        return " 00000+0"
    sign = "-" if value < 0 else " "
    mantissa, exponent = f"{abs(value):.4e}".split("e")
    exp = int(exponent) + 1
    if exp < -9:  # below the field's range: denormalise the mantissa (or round to zero)
        digits = round(abs(value) * 1e14)
        return f"{sign}{digits:05d}-9" if digits else " 00000+0"
    if exp > 9:
        raise OrbitInputError(f"value {value!r} does not fit a TLE exponent field")
    return f"{sign}{mantissa.replace('.', '')}{'-' if exp < 0 else '+'}{abs(exp)}"


def _epoch_from_tle(yy: int, day_of_year: float) -> float:
    year = 2000 + yy if yy < 57 else 1900 + yy
    whole, fraction = divmod(day_of_year, 1.0)
    jan0_days = (np.datetime64(f"{year}-01-01", "D") - np.datetime64("1970-01-01", "D")).astype(int) - 1
    return (float(jan0_days) + whole) * SECONDS_PER_DAY + round(fraction, 8) * SECONDS_PER_DAY


def _tle_epoch_fields(epoch_unix: float) -> tuple[int, float]:
    day = np.datetime64(math.floor(epoch_unix / SECONDS_PER_DAY), "D")
    year = int(str(day.astype("datetime64[Y]")))
    jan1 = (np.datetime64(f"{year}-01-01", "D") - np.datetime64("1970-01-01", "D")).astype(int)
    doy = (epoch_unix - float(jan1) * SECONDS_PER_DAY) / SECONDS_PER_DAY + 1.0
    if round(doy, 8) >= 367.0:  # rounding spilled into next year
        return _tle_epoch_fields(epoch_unix + 1e-3)
    return year, round(doy, 8)


def format_tle(elements: Elements) -> tuple[str, str, str]:
    """Write elements as a three-line element set: (name line, line 1, line 2), checksums included.

    A name that could be taken for an element line ("1 ...", "2 ...") or for the "0 NAME" form
    is written in the "0 NAME" form so that :func:`parse_tle` reads it back unchanged.
    """
    e = elements
    year, doy = _tle_epoch_fields(e.epoch_unix)
    if not 1957 <= year <= 2056:
        raise OrbitInputError(f"epoch year {year} cannot be written in a TLE (1957-2056)")
    if not 0.0 <= e.eccentricity < 1.0:
        raise OrbitInputError(f"eccentricity {e.eccentricity} cannot be written in a TLE")
    if abs(e.mean_motion_dot) >= 1.0:
        raise OrbitInputError(f"mean motion derivative {e.mean_motion_dot} cannot be written in a TLE")
    ndot = f"{abs(e.mean_motion_dot):.8f}"[1:]
    ndot = ("-" if e.mean_motion_dot < 0 and float(ndot) != 0.0 else " ") + ndot
    ecc = f"{e.eccentricity:.7f}"
    if not ecc.startswith("0."):
        raise OrbitInputError(f"eccentricity {e.eccentricity} rounds to 1")
    line1 = (
        f"1 {int_to_alpha5(e.catalog_number)}{(e.classification or 'U')[:1]} {e.intl_designator[:8]:<8} "
        f"{year % 100:02d}{doy:012.8f} {ndot} {_fmt_implied(e.mean_motion_ddot)} "
        f"{_fmt_implied(e.bstar)} {e.ephemeris_type % 10:1d} {e.element_set_no % 10000:4d}"
    )
    line2 = (
        f"2 {int_to_alpha5(e.catalog_number)} {e.inclination_deg:8.4f} {e.raan_deg % 360.0:8.4f} "
        f"{ecc[2:]} {e.arg_perigee_deg % 360.0:8.4f} {e.mean_anomaly_deg % 360.0:8.4f} "
        f"{e.mean_motion_rev_day:11.8f}{e.rev_at_epoch % 100000:5d}"
    )
    if len(line1) != 68 or len(line2) != 68:
        raise OrbitInputError(f"elements of {e.name!r} do not fit the TLE columns")
    name_line = f"0 {e.name}" if e.name[:2] in {"0 ", "1 ", "2 "} else e.name
    return name_line, line1 + str(_checksum(line1)), line2 + str(_checksum(line2))


def _tle_field(text: str, source: str, line: int, field: str, convert: Any) -> Any:
    try:
        return convert(text)
    except ValueError as exc:
        raise ElementsError(
            f"{text.strip()!r} is not a valid {field}", source=source, line=line, field=field
        ) from exc


def _check_tle_line(text: str, number: int, source: str, line: int, checksum: bool) -> str:
    body = text.rstrip()
    if not body.startswith(f"{number} "):
        raise ElementsError(f"expected TLE line {number}, found {body[:20]!r}", source=source, line=line)
    if len(body) != 69:
        raise ElementsError(
            f"TLE line {number} has {len(body)} characters, not 69", source=source, line=line, field="length"
        )
    if not body[68].isdigit():
        raise ElementsError(
            f"checksum {body[68]!r} is not a digit", source=source, line=line, field="checksum"
        )
    actual = _checksum(body)
    if checksum and int(body[68]) != actual:
        raise ElementsError(
            f"checksum is {body[68]}, the line sums to {actual}", source=source, line=line, field="checksum"
        )
    return body


def _parse_tle_pair(name: str, l1: str, l2: str, source: str, n1: int, n2: int, checksum: bool) -> Elements:
    l1 = _check_tle_line(l1, 1, source, n1, checksum)
    l2 = _check_tle_line(l2, 2, source, n2, checksum)
    cat1, cat2 = l1[2:7], l2[2:7]
    _tle_field(cat1, source, n1, "catalog number", alpha5_to_int)
    if cat1 != cat2:
        raise ElementsError(
            f"catalog number {cat2!r} differs from line 1's {cat1!r}",
            source=source,
            line=n2,
            field="catalog number",
        )
    yy = _tle_field(l1[18:20], source, n1, "epoch year", int)
    doy = _tle_field(l1[20:32], source, n1, "epoch day", float)
    if not 1.0 <= doy < 367.0:
        raise ElementsError(f"epoch day {doy} is outside 1-366", source=source, line=n1, field="epoch day")
    ecc = _tle_field(l2[26:33], source, n2, "eccentricity", lambda s: float("0." + s.strip()))
    if not l2[26:33].strip().isdigit():
        raise ElementsError(
            f"{l2[26:33]!r} is not a valid eccentricity", source=source, line=n2, field="eccentricity"
        )
    mean_motion = _tle_field(l2[52:63], source, n2, "mean motion", float)
    if not mean_motion > 0.0:
        raise ElementsError(
            f"mean motion {mean_motion} is not positive", source=source, line=n2, field="mean motion"
        )
    rev = l2[63:68].strip()
    ephtype = l1[62].strip()
    elnum = l1[64:68].strip()
    return Elements(
        name=name or cat1,
        catalog=cat1.strip().zfill(5),
        intl_designator=l1[9:17].strip(),
        epoch_unix=_epoch_from_tle(yy, doy),
        inclination_deg=_tle_field(l2[8:16], source, n2, "inclination", float),
        raan_deg=_tle_field(l2[17:25], source, n2, "right ascension of the node", float),
        eccentricity=ecc,
        arg_perigee_deg=_tle_field(l2[34:42], source, n2, "argument of perigee", float),
        mean_anomaly_deg=_tle_field(l2[43:51], source, n2, "mean anomaly", float),
        mean_motion_rev_day=mean_motion,
        mean_motion_dot=_tle_field(l1[33:43], source, n1, "mean motion derivative", float),
        mean_motion_ddot=_tle_field(l1[44:52], source, n1, "mean motion second derivative", _implied),
        bstar=_tle_field(l1[53:61], source, n1, "bstar", _implied),
        classification=l1[7].strip() or "U",
        ephemeris_type=_tle_field(ephtype, source, n1, "ephemeris type", int) if ephtype else 0,
        element_set_no=_tle_field(elnum, source, n1, "element set number", int) if elnum else 0,
        rev_at_epoch=_tle_field(rev, source, n2, "revolution number", int) if rev else 0,
    )


def parse_tle(text: str, source: str = "<text>", *, verify_checksums: bool = True) -> list[Elements]:
    """Every element set in TLE text: 2-line sets, 3-line sets (name line, optionally "0 NAME").

    Blank lines are skipped; checksums are verified (``verify_checksums=False`` only for test sets
    such as Vallado's, which contain deliberately bad lines); Alpha-5 catalog numbers are
    accepted. Any other line raises :class:`ElementsError` naming it.
    """
    numbered = [(i, raw) for i, raw in enumerate(text.splitlines(), start=1) if raw.strip()]
    out: list[Elements] = []
    k = 0
    while k < len(numbered):
        n, raw = numbered[k]
        name = ""
        if not raw.startswith("1 "):
            name = raw.strip()
            if name.startswith("0 "):
                name = name[2:].strip()
            if k + 1 >= len(numbered) or not numbered[k + 1][1].startswith("1 "):
                raise ElementsError(
                    f"{raw.strip()[:30]!r} is neither a TLE line nor a name followed by TLE line 1",
                    source=source,
                    line=n,
                )
            k += 1
        n1, l1 = numbered[k]
        if k + 1 >= len(numbered):
            raise ElementsError("TLE line 1 has no line 2 after it", source=source, line=n1)
        n2, l2 = numbered[k + 1]
        out.append(_parse_tle_pair(name, l1, l2, source, n1, n2, verify_checksums))
        k += 2
    return out


# --------------------------------------------------------------------------------------------
# OMM

_OMM_REQUIRED = (
    "EPOCH",
    "MEAN_MOTION",
    "ECCENTRICITY",
    "INCLINATION",
    "RA_OF_ASC_NODE",
    "ARG_OF_PERICENTER",
    "MEAN_ANOMALY",
    "NORAD_CAT_ID",
    "BSTAR",
    "MEAN_MOTION_DOT",
    "MEAN_MOTION_DDOT",
)


def _omm_value(fields: Mapping[str, Any], key: str, source: str, line: int | None) -> str:
    value = fields.get(key)
    if value is None or str(value).strip() == "":
        raise ElementsError(f"OMM field {key} is missing", source=source, line=line, field=key)
    return re.sub(r"\s*\[.*\]\s*$", "", str(value).strip())


def _omm_number(fields: Mapping[str, Any], key: str, source: str, line: int | None) -> float:
    text = _omm_value(fields, key, source, line)
    try:
        value = float(text)
    except ValueError:
        raise ElementsError(f"{key} {text!r} is not a number", source=source, line=line, field=key) from None
    if not math.isfinite(value):
        raise ElementsError(f"{key} {text!r} is not finite", source=source, line=line, field=key)
    return value


def _omm_int(fields: Mapping[str, Any], key: str, default: int, source: str, line: int | None) -> int:
    if fields.get(key) is None or str(fields[key]).strip() == "":
        return default
    number = _omm_number(fields, key, source, line)
    if number != int(number):
        raise ElementsError(f"{key} {number!r} is not an integer", source=source, line=line, field=key)
    return int(number)


def _elements_from_omm(fields: Mapping[str, Any], source: str, line: int | None) -> Elements:
    for key in _OMM_REQUIRED:
        _omm_value(fields, key, source, line)
    epoch_text = _omm_value(fields, "EPOCH", source, line)
    try:
        epoch = iso_to_unix(epoch_text)
    except OrbitInputError as exc:
        raise ElementsError(
            f"EPOCH {epoch_text!r} is not an ISO 8601 UTC time", source=source, line=line, field="EPOCH"
        ) from exc
    catalog_number = _omm_int(fields, "NORAD_CAT_ID", 0, source, line)
    if catalog_number < 0:
        raise ElementsError(
            f"NORAD_CAT_ID {catalog_number} is negative", source=source, line=line, field="NORAD_CAT_ID"
        )
    catalog = (
        f"{catalog_number:05d}"
        if catalog_number <= 99999
        else (int_to_alpha5(catalog_number) if catalog_number <= 339999 else str(catalog_number))
    )
    ecc = _omm_number(fields, "ECCENTRICITY", source, line)
    if not 0.0 <= ecc < 1.0:
        raise ElementsError(
            f"ECCENTRICITY {ecc} is outside [0, 1)", source=source, line=line, field="ECCENTRICITY"
        )
    mean_motion = _omm_number(fields, "MEAN_MOTION", source, line)
    if not mean_motion > 0.0:
        raise ElementsError(
            f"MEAN_MOTION {mean_motion} is not positive", source=source, line=line, field="MEAN_MOTION"
        )
    object_id = str(fields.get("OBJECT_ID") or "").strip()
    match = re.fullmatch(r"(\d{2})?(\d{2})-(\d{3})([A-Z]{1,3})", object_id)
    intl = f"{match.group(2)}{match.group(3)}{match.group(4)}" if match else object_id.replace("-", "")
    return Elements(
        name=str(fields.get("OBJECT_NAME") or catalog).strip(),
        catalog=catalog,
        intl_designator=intl,
        epoch_unix=epoch,
        inclination_deg=_omm_number(fields, "INCLINATION", source, line),
        raan_deg=_omm_number(fields, "RA_OF_ASC_NODE", source, line),
        eccentricity=ecc,
        arg_perigee_deg=_omm_number(fields, "ARG_OF_PERICENTER", source, line),
        mean_anomaly_deg=_omm_number(fields, "MEAN_ANOMALY", source, line),
        mean_motion_rev_day=mean_motion,
        mean_motion_dot=_omm_number(fields, "MEAN_MOTION_DOT", source, line),
        mean_motion_ddot=_omm_number(fields, "MEAN_MOTION_DDOT", source, line),
        bstar=_omm_number(fields, "BSTAR", source, line),
        classification=str(fields.get("CLASSIFICATION_TYPE") or "U").strip()[:1] or "U",
        ephemeris_type=_omm_int(fields, "EPHEMERIS_TYPE", 0, source, line),
        element_set_no=_omm_int(fields, "ELEMENT_SET_NO", 999, source, line),
        rev_at_epoch=_omm_int(fields, "REV_AT_EPOCH", 0, source, line),
    )


def _json_record_lines(text: str) -> list[int]:
    """Line numbers of the objects in a JSON array (or [1] for a single top-level object)."""
    lines: list[int] = []
    depth, line, in_string, escape = 0, 1, False, False
    for ch in text:
        if ch == "\n":
            line += 1
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            if ch == "{" and depth <= 1:
                lines.append(line)
            depth += 1
        elif ch in "]}":
            depth -= 1
    return lines


def _parse_omm_json(text: str, source: str) -> list[Elements]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ElementsError(f"not valid JSON: {exc.msg}", source=source, line=exc.lineno) from exc
    records = data if isinstance(data, list) else [data]
    lines = _json_record_lines(text)
    out = []
    for i, record in enumerate(records):
        line = lines[i] if i < len(lines) else None
        if not isinstance(record, dict):
            raise ElementsError(f"record {i + 1} is not a JSON object", source=source, line=line)
        out.append(_elements_from_omm(record, source, line))
    return out


def _parse_omm_xml(text: str, source: str) -> list[Elements]:
    records: list[tuple[int, dict[str, str]]] = []
    stack: list[str] = []
    chunks: list[str] = []
    parser = expat.ParserCreate()

    def start(tag: str, _attrs: dict[str, str]) -> None:
        local = tag.rsplit(":", 1)[-1]
        stack.append(local)
        chunks.clear()
        if local == "segment":
            records.append((parser.CurrentLineNumber, {}))

    def end(tag: str) -> None:
        local = stack.pop()
        if records and "segment" in stack and local != "segment":
            value = "".join(chunks).strip()
            if value:
                records[-1][1][local] = value
        chunks.clear()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chunks.append
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise ElementsError(
            f"not valid XML: {expat.errors.messages[exc.code]}", source=source, line=exc.lineno
        ) from exc
    if not records:
        raise ElementsError("no OMM <segment> in the XML", source=source)
    return [_elements_from_omm(fields, source, line) for line, fields in records]


def _parse_omm_kvn(text: str, source: str) -> list[Elements]:
    records: list[tuple[int, dict[str, str]]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("COMMENT"):
            continue
        if "=" not in line:
            raise ElementsError(f"{line[:30]!r} is not a KVN 'KEY = value' line", source=source, line=n)
        key, _, value = line.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Z0-9_]+", key):
            raise ElementsError(f"{key[:30]!r} is not a KVN keyword", source=source, line=n)
        repeated_name = key == "OBJECT_NAME" and bool(records) and "OBJECT_NAME" in records[-1][1]
        if key == "CCSDS_OMM_VERS" or not records or repeated_name:
            records.append((n, {}))
        if key in records[-1][1] and key != "CCSDS_OMM_VERS":
            raise ElementsError(
                f"keyword {key} appears twice in one message", source=source, line=n, field=key
            )
        records[-1][1][key] = value.strip()
    if not records:
        raise ElementsError("no OMM keywords in the KVN text", source=source)
    return [_elements_from_omm(fields, source, line) for line, fields in records]


def _parse_omm_csv(text: str, source: str) -> list[Elements]:
    rows = [(n, raw) for n, raw in enumerate(text.splitlines(), start=1) if raw.strip()]
    if not rows:
        raise ElementsError("empty CSV", source=source)
    header = next(csv.reader([rows[0][1]]))
    header = [h.strip().lstrip("\ufeff") for h in header]
    out = []
    for n, raw in rows[1:]:
        values = next(csv.reader([raw]))
        if len(values) != len(header):
            raise ElementsError(
                f"row has {len(values)} fields, the header has {len(header)}", source=source, line=n
            )
        out.append(_elements_from_omm(dict(zip(header, values, strict=True)), source, n))
    return out


def _sniff(text: str) -> Literal["json", "xml", "kvn", "csv", "tle"]:
    body = text.lstrip("\ufeff \t\r\n")
    if body.startswith(("[", "{")):
        return "json"
    if body.startswith("<"):
        return "xml"
    first = body.splitlines()[0] if body else ""
    if "CCSDS_OMM_VERS" in body[:2000] or re.match(r"^[A-Z_]+\s*=", first):
        return "kvn"
    if "," in first and "EPOCH" in first.upper():
        return "csv"
    return "tle"


def parse_omm(text: str, source: str = "<text>", fmt: OmmFormat | None = None) -> list[Elements]:
    """Every element set in CCSDS OMM text: JSON (CelesTrak GP arrays), XML, KVN or CSV.

    ``fmt`` None detects the encoding from the text. A missing mandatory field (EPOCH, the six
    mean elements, NORAD_CAT_ID, BSTAR, MEAN_MOTION_DOT, MEAN_MOTION_DDOT) is named in the error.
    """
    kind = fmt or _sniff(text)
    if kind == "json":
        return _parse_omm_json(text, source)
    if kind == "xml":
        return _parse_omm_xml(text, source)
    if kind == "kvn":
        return _parse_omm_kvn(text, source)
    if kind == "csv":
        return _parse_omm_csv(text, source)
    raise ElementsError("the text is not an OMM (JSON, XML, KVN or CSV); is it a TLE?", source=source, line=1)


def parse_elements(text: str, source: str = "<text>") -> list[Elements]:
    """Element sets from TLE, 3LE or OMM text, the format recognised from the content."""
    kind = _sniff(text)
    if kind == "tle":
        return parse_tle(text, source)
    return parse_omm(text, source, kind)
