"""``proxima overflights`` and ``proxima links``: when the station flies over a country, and when the
mission's nodes can talk.

Two module-level :class:`click.Command` objects, registered on the main group by :mod:`proxima.cli`.
Conventions as there: ``--help``, ``--json`` for machine output, exit 1 with one ``error: ...`` line on
stderr for bad input (warnings, such as stale elements, go to stderr as ``warning: ...`` lines).
The start time defaults to now; the shipped elements are a dated snapshot, so a start far from their
epoch is refused with a hint to pass ``--from``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from typing import TYPE_CHECKING, Any

import click

from proxima.cli_support import guard
from proxima.errors import OrbitInputError
from proxima.orbit.propagate import propagate
from proxima.orbit.regions import overflights as find_overflights
from proxima.orbit.timescale import SECONDS_PER_DAY, iso_to_unix, unix_to_iso

if TYPE_CHECKING:

    import numpy as np
    from numpy.typing import NDArray

    from proxima.orbit.elements import Elements
    from proxima.orbit.links import LinkWindow

__all__ = ["links", "overflights"]

_MAX_DAYS = 30.0


def _span(start: str | None, days: float) -> tuple[float, float]:
    t0 = time.time() if start is None else iso_to_unix(start)
    return t0, t0 + days * SECONDS_PER_DAY


def _with_hint(exc: OrbitInputError, start: str | None) -> OrbitInputError:
    """Add a hint to a propagation-limit error when the start time was the clock's."""
    text = str(exc).replace(" or a larger max_span_days", "")
    if start is None and "epoch" in text:
        text += " (the start defaults to now: give --from near the elements' epoch)"
    return OrbitInputError(text)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {text}" if days else text


def _rate(bytes_s: float) -> str:
    """A rate in bits per second with a decimal prefix: 37.5e6 B/s -> '300 Mbit/s'."""
    bits = bytes_s * 8.0
    for factor, unit in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if bits >= factor:
            return f"{bits / factor:.4g} {unit}"
    return f"{bits:.4g} bit/s"


def _position(lat: float, lon: float) -> str:
    return f"{abs(lat):.1f}°{'N' if lat >= 0 else 'S'} {abs(lon):.1f}°{'E' if lon >= 0 else 'W'}"


# --- overflights ---------------------------------------------------------------------------------------


def _pick(elements_file: str | None, satellite: str, now_unix: float) -> Elements:
    """The element set to fly; a stale one warns."""
    from proxima.runtime.elements import DEFAULT_MAX_AGE_DAYS, StaleElementsWarning, load_elements

    loaded = load_elements(elements_file, now_unix=now_unix, max_age_days=None)
    one = elements_file is not None and len(loaded.elements) == 1
    chosen = loaded.elements[0] if one else loaded.find(satellite)
    age = (now_unix - chosen.epoch_unix) / SECONDS_PER_DAY
    if age > DEFAULT_MAX_AGE_DAYS:
        warnings.warn(
            f"elements for {chosen.name} are {age:.1f} days old at the start "
            f"(limit {DEFAULT_MAX_AGE_DAYS:g}); predictions may be off by many kilometres - "
            "use newer elements",
            StaleElementsWarning,
            stacklevel=2,
        )
    return chosen


@click.command("overflights", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--region", required=True, help="Country: ISO 3166-1 alpha-2 code or English name (FR, France)."
)
@click.option(
    "--days",
    type=click.FloatRange(0, _MAX_DAYS, min_open=True),
    default=1.0,
    show_default=True,
    help="How many days to search.",
)
@click.option("--from", "start", default=None, help="Start time, ISO 8601 UTC (default: now).")
@click.option(
    "--elements",
    "elements_file",
    type=click.Path(),
    default=None,
    help="TLE/3LE/OMM file or directory (default: the shipped snapshot).",
)
@click.option(
    "--satellite",
    default="ISS",
    show_default=True,
    help="Which element set: a name (prefix) or catalog number; a one-set file needs none.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guard
def overflights(
    region: str, days: float, start: str | None, elements_file: str | None, satellite: str, as_json: bool
) -> None:
    """When the satellite's ground track is over a country (Natural Earth 1:110m outlines)."""
    from proxima.runtime.regions import country

    t0, t1 = _span(start, days)
    place = country(region)
    sat = _pick(elements_file, satellite, t0)
    age = (t0 - sat.epoch_unix) / SECONDS_PER_DAY

    def track(t: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lat, lon = propagate(sat, t).subpoint()
        return lat[0], lon[0]

    try:
        found = find_overflights(track, place, t0, t1)
    except OrbitInputError as exc:
        raise _with_hint(exc, start) from exc
    if as_json:
        doc = {
            "satellite": sat.name,
            "catalog": sat.catalog,
            "elements_epoch": unix_to_iso(sat.epoch_unix),
            "elements_age_days": round(age, 3),
            "region": {"code": place.code, "name": place.name},
            "from": unix_to_iso(t0, digits=3),
            "to": unix_to_iso(t1, digits=3),
            "overflights": [
                {
                    "enter": unix_to_iso(o.enter_unix, digits=1),
                    "leave": unix_to_iso(o.leave_unix, digits=1),
                    "enter_unix": o.enter_unix,
                    "leave_unix": o.leave_unix,
                    "duration_s": round(o.duration_s, 2),
                    "enter_lat_deg": round(o.enter_lat_deg, 4),
                    "enter_lon_deg": round(o.enter_lon_deg, 4),
                    "leave_lat_deg": round(o.leave_lat_deg, 4),
                    "leave_lon_deg": round(o.leave_lon_deg, 4),
                    "open_at_start": o.open_at_start,
                    "open_at_end": o.open_at_end,
                }
                for o in found
            ],
        }
        click.echo(json.dumps(doc))
        return
    count = f"{len(found)} overflight{'' if len(found) == 1 else 's'}"
    click.echo(
        f"{sat.name} over {place.name} ({place.code}), {unix_to_iso(t0)} to {unix_to_iso(t1)}: {count}"
        f" (elements of {unix_to_iso(sat.epoch_unix)})"
    )
    if not found:
        return
    click.echo(f"  {'enter':<21} {'leave':<21} {'duration':>9}  {'enters at':<15} leaves at")
    for o in found:
        enter = unix_to_iso(o.enter_unix) + ("*" if o.open_at_start else " ")
        leave = unix_to_iso(o.leave_unix) + ("*" if o.open_at_end else " ")
        click.echo(
            f"  {enter:<21} {leave:<21} {_duration(o.duration_s):>9}  "
            f"{_position(o.enter_lat_deg, o.enter_lon_deg):<15} {_position(o.leave_lat_deg, o.leave_lon_deg)}"
        )
    if any(o.open_at_start or o.open_at_end for o in found):
        click.echo("  * cut at the start or end of the search")


# --- links ---------------------------------------------------------------------------------------------


def _window_json(w: LinkWindow) -> dict[str, Any]:
    return {
        "a": w.a,
        "b": w.b,
        "kind": w.kind,
        "start": unix_to_iso(w.start_unix, digits=1),
        "end": unix_to_iso(w.end_unix, digits=1),
        "start_unix": w.start_unix,
        "end_unix": w.end_unix,
        "duration_s": round(w.duration_s, 2),
        "owlt_s": round(w.owlt_s, 6),
        "owlt_min_s": round(w.owlt_min_s, 6),
        "owlt_max_s": round(w.owlt_max_s, 6),
        "rate_ab_bytes_s": w.rate_ab_bytes_s,
        "rate_ba_bytes_s": w.rate_ba_bytes_s,
        "cut_start": w.cut_start,
        "cut_end": w.cut_end,
    }


@click.command("links", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--mission",
    "mission_file",
    type=click.Path(),
    default=None,
    help="Mission description (TOML); default: the shipped Proxima example.",
)
@click.option(
    "--days",
    type=click.FloatRange(0, _MAX_DAYS, min_open=True),
    default=1.0,
    show_default=True,
    help="How many days to compute.",
)
@click.option("--from", "start", default=None, help="Start time, ISO 8601 UTC (default: now).")
@click.option("--node", default=None, help="Only the windows with this node at one end.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guard
def links(mission_file: str | None, days: float, start: str | None, node: str | None, as_json: bool) -> None:
    """Link windows between the mission's nodes: when each allowed pair can talk, light time, rates."""
    from proxima.runtime.mission import load_mission, mission_windows

    t0, t1 = _span(start, days)
    mission = load_mission(mission_file, now_unix=t0)
    if node is not None:
        mission.node(node)  # an unknown name is an error, not an empty table
    try:
        windows = mission_windows(mission, t0, t1)
    except OrbitInputError as exc:
        raise _with_hint(exc, start) from exc
    if node is not None:
        windows = [w for w in windows if node in (w.a, w.b)]
    epochs = {e.name: unix_to_iso(e.epoch_unix) for e in mission.elements}
    if as_json:
        doc = {
            "mission": mission.name,
            "source": mission.source,
            "from": unix_to_iso(t0, digits=3),
            "to": unix_to_iso(t1, digits=3),
            "elements_epochs": epochs,
            "windows": [_window_json(w) for w in windows],
        }
        click.echo(json.dumps(doc))
        return
    count = f"{len(windows)} window{'' if len(windows) == 1 else 's'}"
    click.echo(f"{mission.name} ({mission.source}), {unix_to_iso(t0)} to {unix_to_iso(t1)}: {count}")
    if epochs:
        click.echo("  elements: " + ", ".join(f"{name} of {when}" for name, when in epochs.items()))
    if not windows:
        return
    width = max(len(w.pair) for w in windows)
    click.echo(
        f"  {'pair':<{width}}  {'kind':<12}  {'start':<21} {'end':<21} {'duration':>11}  {'owlt':>8}  "
        "rate a->b / b->a"
    )
    for w in windows:
        start_text = unix_to_iso(w.start_unix) + ("*" if w.cut_start else " ")
        end_text = unix_to_iso(w.end_unix) + ("*" if w.cut_end else " ")
        owlt = f"{w.owlt_s * 1000:.1f} ms" if math.isfinite(w.owlt_s) else "-"
        rates = f"{_rate(w.rate_ab_bytes_s)} / {_rate(w.rate_ba_bytes_s)}"
        click.echo(
            f"  {w.pair:<{width}}  {w.kind:<12}  {start_text:<21} {end_text:<21} "
            f"{_duration(w.duration_s):>11}  {owlt:>8}  {rates}"
        )
    if any(w.cut_start or w.cut_end for w in windows):
        click.echo("  * cut at the start or end of the span (the link exists beyond it)")
