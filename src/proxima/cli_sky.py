"""``proxima where`` and ``proxima passes``: where the station is, and when it passes and can be seen.

Two module-level :class:`click.Command` objects, registered on the main group by :mod:`proxima.cli`.
Conventions as there: ``--help``, ``--json`` for machine output, exit 1 with one ``error: ...`` line
on stderr for bad input; warnings (stale elements) go to stderr as ``warning: ...`` lines. Times
default to now (this is the layer allowed to read the clock); time zones are resolved here with
:mod:`zoneinfo`, the orbit engine itself only ever sees UTC offsets.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
import warnings
from typing import TYPE_CHECKING, Any

import click

from proxima.cli_support import guard_quiet
from proxima.errors import OrbitInputError
from proxima.orbit.sun import TWILIGHT
from proxima.orbit.timescale import SECONDS_PER_DAY, iso_to_unix, unix_to_iso

if TYPE_CHECKING:
    from collections.abc import Callable

    from proxima.orbit.elements import Elements
    from proxima.orbit.passes import Look, Pass

__all__ = ["passes", "where"]

_MAX_DAYS = 30.0
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def _elements(elements_file: str | None, satellite: str, at_unix: float) -> tuple[Elements, str, float]:
    """The element set to use, where it came from and its age (days) at ``at_unix``; warns when stale.

    A user file holding a single set is used whatever its name; otherwise ``satellite`` is looked up
    by name or catalog number.
    """
    from proxima.runtime.elements import DEFAULT_MAX_AGE_DAYS, StaleElementsWarning, load_elements

    loaded = load_elements(elements_file, now_unix=at_unix, max_age_days=None)
    single = elements_file is not None and len(loaded.elements) == 1
    chosen = loaded.elements[0] if single else loaded.find(satellite)
    source = loaded.sources[loaded.elements.index(chosen)]
    age = (at_unix - chosen.epoch_unix) / SECONDS_PER_DAY
    if abs(age) > DEFAULT_MAX_AGE_DAYS:
        when = "old" if age > 0 else "in the future"
        warnings.warn(
            f"elements for {chosen.name} are {abs(age):.1f} days {when} at {unix_to_iso(at_unix)} "
            f"(limit {DEFAULT_MAX_AGE_DAYS:g}); predictions may be off by many kilometres - "
            "use newer elements",
            StaleElementsWarning,
            stacklevel=2,
        )
    return chosen, source, age


def _time(text: str | None, option: str) -> float:
    if text is None:
        return time.time()
    try:
        return iso_to_unix(text)
    except OrbitInputError as exc:
        raise OrbitInputError(f"{option}: {exc}") from exc


def _with_hint(exc: OrbitInputError, option: str, given: str | None) -> OrbitInputError:
    """Add a hint to a propagation-limit error: the shipped elements are a dated snapshot."""
    text = str(exc).replace(" or a larger max_span_days", "")
    if given is None and "epoch" in text:
        text += f" (the time defaults to now: give {option} near the elements' epoch, or --elements)"
    return OrbitInputError(text)


def _latlon(lat: float, lon: float) -> str:
    return f"{abs(lat):.4f}°{'N' if lat >= 0 else 'S'} {abs(lon):.4f}°{'E' if lon >= 0 else 'W'}"


def _elements_json(e: Elements, source: str, age: float) -> dict[str, Any]:
    epoch = unix_to_iso(e.epoch_unix, digits=3)
    return {"name": e.name, "catalog": e.catalog, "source": source, "epoch": epoch,
            "age_days": round(age, 4)}  # fmt: skip


# --- where ----------------------------------------------------------------------------------------


@click.command("where", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--at", "at", default=None, metavar="ISO_TIME", help="UTC time (e.g. 2026-03-11T20:00Z); default now."
)
@click.option("--elements", "elements_file", default=None, metavar="FILE",
              help="TLE/3LE/OMM file or directory; default the shipped snapshot.")  # fmt: skip
@click.option("--satellite", default="ISS", show_default=True, help="Name or catalog number in the elements.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guard_quiet
def where(at: str | None, elements_file: str | None, satellite: str, as_json: bool) -> None:
    """Where the satellite is: sub-satellite point, altitude, speeds, sunlight, age of the elements."""
    from proxima.orbit.position import satellite_state

    t = _time(at, "--at")
    chosen, source, age = _elements(elements_file, satellite, t)
    try:
        s = satellite_state(chosen, t)
    except OrbitInputError as exc:
        raise _with_hint(exc, "--at", at) from exc
    if as_json:
        click.echo(json.dumps({
            "satellite": s.name, "time": unix_to_iso(t, digits=3), "lat_deg": round(s.lat_deg, 5),
            "lon_deg": round(s.lon_deg, 5), "alt_km": round(s.alt_km, 3),
            "speed_km_s": round(s.speed_km_s, 5),
            "ground_speed_km_s": round(s.ground_speed_km_s, 5), "sunlit": s.sunlit,
            "sunlit_fraction": round(s.sunlit_fraction, 4), "footprint_km": round(s.footprint_km, 1),
            "elements": _elements_json(chosen, source, age),
        }))  # fmt: skip
        return
    lit = "yes" if s.sunlit else "no, in the Earth's shadow"
    if 0.0 < s.sunlit_fraction < 1.0:
        lit += f" (penumbra, {s.sunlit_fraction:.0%} of the Sun's disk)"
    click.echo(f"{s.name} at {unix_to_iso(t)}")
    click.echo(f"  over       {_latlon(s.lat_deg, s.lon_deg)}")
    click.echo(f"  altitude   {s.alt_km:.1f} km")
    click.echo(f"  speed      {s.speed_km_s:.3f} km/s ({s.speed_km_s * 3600:,.0f} km/h)")
    click.echo(f"  ground     {s.ground_speed_km_s:.3f} km/s")
    click.echo(f"  sunlit     {lit}")
    click.echo(f"  footprint  {s.footprint_km:,.0f} km radius")
    click.echo(f"  elements   epoch {unix_to_iso(chosen.epoch_unix)}, {age:.2f} days old ({source})")


# --- passes ---------------------------------------------------------------------------------------


def _zone(text: str) -> tuple[str, Callable[[float], float]]:
    """A time zone given as a name (Europe/Paris), UTC, or an offset (+02:00, -5): (label, offset_of)."""
    cleaned = text.strip()
    if cleaned.upper() in ("UTC", "Z", "GMT"):
        return "UTC", lambda _t: 0.0
    match = _OFFSET.match(cleaned)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise OrbitInputError(f"time zone offset {text!r} is outside ±14:00")
        offset = (hours * 3600 + minutes * 60) * (-1 if sign == "-" else 1)
        label = f"UTC{sign}{hours:02d}:{minutes:02d}"
        return label, lambda _t: float(offset)
    import zoneinfo

    try:
        zone = zoneinfo.ZoneInfo(cleaned)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise OrbitInputError(
            f"unknown time zone {text!r} (give a name like Europe/Paris or an offset like +02:00)"
        ) from exc

    def offset_of(t: float) -> float:
        delta = dt.datetime.fromtimestamp(t, tz=zone).utcoffset()
        return 0.0 if delta is None else delta.total_seconds()

    return cleaned, offset_of


def _look_json(look: Look, offset_of: Callable[[float], float]) -> dict[str, Any] | None:
    from proxima.orbit.passes import compass, local_time_parts

    if not math.isfinite(look.t_unix):
        return None
    return {
        "time": unix_to_iso(look.t_unix, digits=3),
        "local": local_time_parts(look.t_unix, offset_of(look.t_unix))[0],
        "azimuth_deg": round(look.az_deg, 3), "elevation_deg": round(look.el_deg, 3),
        "direction": compass(look.az_deg),
    }  # fmt: skip


def _pass_json(p: Pass, offset_of: Callable[[float], float]) -> dict[str, Any]:
    from proxima.orbit.passes import sightings

    out: dict[str, Any] = {
        "rise": _look_json(p.rise, offset_of),
        "culmination": _look_json(p.culmination, offset_of),
        "set": _look_json(p.set, offset_of),
        "duration_s": round(p.duration_s, 3) if math.isfinite(p.duration_s) else None,
        "range_at_culmination_km": round(p.range_km, 1),
        "visible": None,
    }
    v = p.visible
    if v is not None:
        s = sightings([p], offset_of)[0]
        out["visible"] = {
            "start": _look_json(v.start, offset_of), "peak": _look_json(v.peak, offset_of),
            "end": _look_json(v.end, offset_of), "duration_s": round(v.duration_s, 3),
            "minutes": s.minutes_visible, "max_height_deg": s.max_height_deg, "appears": s.appears,
            "disappears": s.disappears, "magnitude": round(v.magnitude, 1),
        }  # fmt: skip
    return out


def _clock(t: float, offset_of: Callable[[float], float]) -> tuple[str, str]:
    """("Wed Mar 11", "21:05:12") in local time; ("", "-") for a missing time."""
    from proxima.orbit.passes import local_time_parts

    if not math.isfinite(t):
        return "", "-"
    iso, date, _ = local_time_parts(t, offset_of(t))
    return date, iso[11:19]


@click.command("passes", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--lat", type=float, required=True, metavar="DEG", help="Observer latitude (north positive).")
@click.option("--lon", type=float, required=True, metavar="DEG", help="Observer longitude (east positive).")
@click.option("--height", type=float, default=0.0, show_default=True, metavar="M",
              help="Observer height above the WGS84 ellipsoid, metres.")  # fmt: skip
@click.option(
    "--days", type=float, default=5.0, show_default=True, metavar="N", help="Days to search (max 30)."
)
@click.option("--from", "start", default=None, metavar="ISO_TIME", help="UTC start time; default now.")
@click.option("--visible", is_flag=True, help="Only passes that can be seen (Spot the Station listing).")
@click.option("--min-elevation", type=float, default=10.0, show_default=True, metavar="DEG",
              help="Rise/set elevation (geometric, no refraction); 10° as Spot the Station.")  # fmt: skip
@click.option("--twilight", type=click.Choice(["civil", "nautical", "astronomical"]), default="civil",
              show_default=True, help="How dark the sky must be (Sun below -6°, -12°, -18°).")  # fmt: skip
@click.option("--elements", "elements_file", default=None, metavar="FILE",
              help="TLE/3LE/OMM file or directory; default the shipped snapshot.")  # fmt: skip
@click.option("--satellite", default="ISS", show_default=True, help="Name or catalog number in the elements.")
@click.option("--tz", "tz", default="UTC", show_default=True, metavar="ZONE",
              help="Time zone for local times: a name (Europe/Paris) or an offset (+02:00).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (ISO times).")
@guard_quiet
def passes(
    lat: float,
    lon: float,
    height: float,
    days: float,
    start: str | None,
    visible: bool,
    min_elevation: float,
    twilight: str,
    elements_file: str | None,
    satellite: str,
    tz: str,
    as_json: bool,
) -> None:
    """Passes of the satellite over an observer: rise, culmination, set, and when it can be seen."""
    from proxima.orbit.passes import compass, find_passes, sightings

    if not (math.isfinite(days) and 0.0 < days <= _MAX_DAYS):
        raise OrbitInputError(f"--days {days:g} must be within (0, {_MAX_DAYS:g}]")
    if not math.isfinite(height):
        raise OrbitInputError(f"--height {height} is not a number")
    label, offset_of = _zone(tz)
    t0 = _time(start, "--from")
    t1 = t0 + days * SECONDS_PER_DAY
    chosen, source, age = _elements(elements_file, satellite, t0)
    try:
        table = find_passes(
            chosen, lat, lon, height / 1000.0, t0_unix=t0, t1_unix=t1,
            min_elevation_deg=min_elevation, twilight=twilight,
        )  # fmt: skip
    except OrbitInputError as exc:
        raise _with_hint(exc, "--from", start) from exc
    items = table.for_observer(0)
    if visible:
        items = [p for p in items if p.visible is not None]
    if as_json:
        click.echo(json.dumps({
            "satellite": chosen.name,
            "observer": {"lat_deg": lat, "lon_deg": lon, "height_m": height},
            "from": unix_to_iso(t0, digits=3), "to": unix_to_iso(t1, digits=3), "time_zone": label,
            "min_elevation_deg": min_elevation, "twilight": twilight,
            "twilight_sun_elevation_deg": TWILIGHT[twilight], "visible_only": visible,
            "elements": _elements_json(chosen, source, age),
            "passes": [_pass_json(p, offset_of) for p in items],
        }))  # fmt: skip
        return
    kind = "visible passes" if visible else "passes"
    click.echo(
        f"{chosen.name} {kind} over {_latlon(lat, lon)} ({height:g} m), {days:g} days from "
        f"{unix_to_iso(t0)}; times in {label}"
    )
    click.echo(
        f"rise/set at {min_elevation:g}° elevation; visible = sunlit and Sun below {TWILIGHT[twilight]:g}° "
        f"({twilight} twilight); elements {age:.1f} days old"
    )
    if not items:
        click.echo("no passes" if not visible else "no visible passes")
        return
    if visible:
        rows = sightings(items, offset_of)
        click.echo(f"{'Date':<11} {'Time':>8}  {'Visible':<8} {'Max Height':<10}  {'Appears':<14} "
                   f"{'Disappears':<14} {'Mag':>5}")  # fmt: skip
        for s in rows:
            minutes = f"{s.minutes_visible} min"
            height_text = f"{s.max_height_deg}°"
            click.echo(f"{s.date:<11} {s.time:>8}  {minutes:<8} {height_text:<10}  {s.appears:<14} "
                       f"{s.disappears:<14} {s.magnitude:>5.1f}")  # fmt: skip
        return
    click.echo(
        f"{'Date':<11} {'Rise':<8} {'Dir':<4} {'Max':<12} {'Set':<8} {'Dir':<4} {'Length':>6}  Visible"
    )
    for p in items:
        date, rise = _clock(p.rise.t_unix, offset_of)
        cdate, _ = _clock(p.culmination.t_unix, offset_of)
        _, set_ = _clock(p.set.t_unix, offset_of)
        top = f"{p.culmination.el_deg:.0f}° {compass(p.culmination.az_deg)}"
        length = (
            "-"
            if not math.isfinite(p.duration_s)
            else f"{int(p.duration_s // 60)}:{int(p.duration_s % 60):02d}"
        )
        seen = "-"
        if p.visible is not None:
            v = p.visible
            seen = (f"{_clock(v.start.t_unix, offset_of)[1][:5]}-{_clock(v.end.t_unix, offset_of)[1][:5]} "
                    f"max {v.peak.el_deg:.0f}° mag {v.magnitude:.1f}")  # fmt: skip
        rise_dir = compass(p.rise.az_deg) if math.isfinite(p.rise.t_unix) else ""
        set_dir = compass(p.set.az_deg) if math.isfinite(p.set.t_unix) else ""
        click.echo(
            f"{date or cdate:<11} {rise:<8} {rise_dir:<4} {top:<12} {set_:<8} {set_dir:<4} "
            f"{length:>6}  {seen}"
        )
