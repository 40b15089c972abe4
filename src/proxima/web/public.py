"""The public pages: where the station is now (``/``), and when it can be seen from a place (``/passes``).

Server-rendered with Jinja2 (autoescaped) plus two small scripts; the same data as JSON under
``/api/station`` and ``/api/passes``. Everything the pages draw comes from the orbit engine through
:mod:`proxima.web.geo`. What is expensive is cached: the country outlines once per process, the
ground track and the night side per minute, the passes of a place per hour (bounded LRU), so the
JSON endpoints answer from memory nearly every time.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import threading
import time
import zoneinfo
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2
import numpy as np
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from proxima.errors import GroundError, InvalidInput, NotFound, OrbitInputError
from proxima.ground.api import client_key
from proxima.ground.ratelimit import RateLimiter
from proxima.orbit.passes import SPOT_THE_STATION, Pass, compass, find_passes, local_time_parts, sightings
from proxima.orbit.position import SatelliteState, satellite_state
from proxima.orbit.timescale import SECONDS_PER_DAY, unix_to_iso
from proxima.runtime.elements import DEFAULT_MAX_AGE_DAYS, load_elements
from proxima.runtime.regions import countries
from proxima.web import geo

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from starlette.requests import Request
    from starlette.routing import BaseRoute

    from proxima.orbit.elements import Elements
    from proxima.orbit.passes import Sighting

__all__ = [
    "PLACES_RESOURCE",
    "TEMPLATES_DIR",
    "PassView",
    "PublicContext",
    "default_gazetteer",
    "default_templates",
    "public_routes",
    "snapshot_elements",
    "station_payload",
]

PLACES_RESOURCE: Final = ("data", "places", "places.csv")
"""The shipped gazetteer inside the ``proxima`` package (see the README beside it)."""
TEMPLATES_DIR: Final = Path(__file__).with_name("templates")

_TRACK_BUCKET_S: Final = 60.0
_PASS_BUCKET_S: Final = 3600.0
_PASS_CACHE_SIZE: Final = 512
_NEAREST_TZ_KM: Final = 1000.0
_MAX_DAYS: Final = 20.0
_CHART_SAMPLES: Final = 40

# Natural Earth 1:110m leaves out small countries; names for the codes the gazetteer uses anyway.
_EXTRA_COUNTRY_NAMES: Final = {
    "AD": "Andorra", "BB": "Barbados", "BH": "Bahrain", "CV": "Cape Verde", "FM": "Micronesia",
    "GF": "French Guiana", "HK": "Hong Kong", "KI": "Kiribati", "KM": "Comoros", "LI": "Liechtenstein",
    "MC": "Monaco", "MH": "Marshall Islands", "MT": "Malta", "MU": "Mauritius", "MV": "Maldives",
    "NR": "Nauru", "PF": "French Polynesia", "PW": "Palau", "SC": "Seychelles", "SG": "Singapore",
    "SJ": "Svalbard", "SM": "San Marino", "ST": "São Tomé and Príncipe", "TO": "Tonga", "TV": "Tuvalu",
    "VA": "Vatican City", "WS": "Samoa",
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# defaults the application can use


@functools.cache
def default_gazetteer() -> geo.Gazetteer:
    """The shipped gazetteer, with country names from the shipped outlines; read once."""
    text = resources.files("proxima").joinpath(*PLACES_RESOURCE).read_text(encoding="utf-8")
    names = {code: countries()[code].name for code in countries()}
    names.update({k: v for k, v in _EXTRA_COUNTRY_NAMES.items() if k not in names})
    return geo.Gazetteer.from_csv(text, names)


def default_templates() -> Jinja2Templates:
    """Templates from ``proxima/web/templates``: autoescaped, and strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return Jinja2Templates(env=env)


def snapshot_elements(path: str | Path | None = None, satellite: str = "ISS") -> Callable[[], Elements]:
    """An elements provider: the set named ``satellite`` in ``path`` (default the shipped snapshot),
    read on first use and kept."""

    @functools.cache
    def provide() -> Elements:
        loaded = load_elements(path, now_unix=0.0, max_age_days=None)
        return loaded.find(satellite)

    return provide


@functools.cache
def _world() -> tuple[geo.CountryShape, ...]:
    return geo.country_shapes(countries())


@functools.cache
def _world_svg() -> Markup:
    """The country outlines as one SVG group, rendered once (names escaped)."""
    paths = "".join(
        f'<path class="country" data-code="{escape(c.code)}" d="{c.path}">'
        f"<title>{escape(c.name)}</title></path>"
        for c in _world()
        if c.path
    )
    return Markup(f'<g class="countries">{paths}</g>')  # noqa: S704 - built from escaped parts


# --------------------------------------------------------------------------------------------
# context


@dataclass(frozen=True)
class PublicContext:
    """What the public routes need: the elements to use, the clock, the templates, the places.

    ``elements`` is called on every request (keep it cheap: :func:`snapshot_elements` caches);
    ``clock`` returns an aware UTC datetime. ``orbits`` ground-track revolutions are drawn,
    ``pass_days`` days of sightings listed, and elements older than ``max_age_days`` flagged.
    ``static_prefix`` is where the application serves ``proxima/web/static``.
    """

    elements: Callable[[], Elements]
    clock: Callable[[], dt.datetime]
    templates: Jinja2Templates
    places: geo.Gazetteer = field(default_factory=default_gazetteer)
    mission_name: str = "Proxima"
    orbits: float = 3.0
    pass_days: float = 10.0
    max_age_days: float = DEFAULT_MAX_AGE_DAYS
    static_prefix: str = "/static"

    def now_unix(self) -> float:
        """The clock's time as Unix seconds (a naive datetime is taken as UTC)."""
        now = self.clock()
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        return now.timestamp()


_NO_STORE: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _json_bytes(content: Any) -> bytes:
    """Compact JSON with ``<``, ``>`` and ``&`` escaped as ``\\u003c``…: echoed user text stays inert
    even if a browser is tricked into reading the body as HTML (``nosniff`` forbids that anyway)."""
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode("utf-8")


class _JSON(JSONResponse):
    """A JSON response rendered by :func:`_json_bytes`, with ``nosniff``."""

    def render(self, content: Any) -> bytes:
        return _json_bytes(content)

    def __init__(self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(content, status_code, {**_NO_STORE, **(headers or {})})


@dataclass(frozen=True, slots=True)
class _Station:
    """The station at one second: the page's data and the two JSON bodies (with and without track)."""

    data: dict[str, Any]
    full: bytes
    light: bytes


class _LRU:
    """A small thread-safe LRU map (handlers may run in the thread pool)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


def _ekey(e: Elements) -> tuple[str, str, float]:
    return (e.name, e.catalog, e.epoch_unix)


# --------------------------------------------------------------------------------------------
# the station now


@dataclass(frozen=True, slots=True)
class _Track:
    start: float
    segments: list[geo.Segment]
    path: str
    points: list[list[list[float]]]


def _compute_track(e: Elements, start: float, orbits: float) -> _Track:
    _, segments = geo.track_segments(e, start, orbits=orbits, step_s=60.0)
    points = [[[round(lat, 3), round(lon, 3)] for lat, lon in seg] for seg in segments]
    return _Track(start, segments, geo.track_path(segments), points)


def _age_text(age_days: float) -> str:
    if age_days < 0:
        return f"{-age_days:.1f} days in the future"
    if age_days < 1:
        return f"{age_days * 24:.1f} hours old"
    return f"{age_days:.1f} days old"


def station_payload(
    e: Elements, t: float, state: SatelliteState, track: _Track, night: str, max_age_days: float
) -> dict[str, Any]:
    """The JSON of ``/api/station`` (also the data of the home page)."""
    age = (t - e.epoch_unix) / SECONDS_PER_DAY
    x, y = geo.map_xy(state.lat_deg, state.lon_deg)
    return {
        "satellite": state.name,
        "time": unix_to_iso(t, digits=3),
        "lat": round(state.lat_deg, 4),
        "lon": round(state.lon_deg, 4),
        "alt_km": round(state.alt_km, 2),
        "speed_km_s": round(state.speed_km_s, 4),
        "ground_speed_km_s": round(state.ground_speed_km_s, 4),
        "sunlit": state.sunlit,
        "sunlit_fraction": round(state.sunlit_fraction, 3),
        "footprint_km": round(state.footprint_km, 1),
        "map": {"x": round(x, 3), "y": round(y, 3)},
        "elements": {
            "name": e.name,
            "catalog": e.catalog,
            "epoch": unix_to_iso(e.epoch_unix),
            "age_days": round(age, 3),
            "age_text": _age_text(age),
            "stale": abs(age) > max_age_days,
        },
        "track": {"start": unix_to_iso(track.start), "segments": track.points, "path": track.path},
        "night_path": night,
    }


# --------------------------------------------------------------------------------------------
# passes


@dataclass(frozen=True, slots=True)
class PassView:
    """One visible pass as the pages show it: the listing line, the pass, its sky chart."""

    sighting: Sighting
    pass_: Pass
    chart: geo.SkyChart
    end_time: str
    sky_points: list[list[float]]

    def as_json(self) -> dict[str, Any]:
        """The pass in ``/api/passes``."""
        s, v = self.sighting, self.pass_.visible
        if v is None:  # never: only visible passes are viewed
            raise OrbitInputError("pass has no visible part")

        def look(kind: str, az: float, el: float, t: float) -> dict[str, Any]:
            return {"time": unix_to_iso(t), "azimuth_deg": round(az, 1), "elevation_deg": round(el, 1),
                    "direction": compass(az), "kind": kind}  # fmt: skip

        return {
            "date": s.date,
            "time": s.time,
            "local_iso": s.local_iso,
            "end_time": self.end_time,
            "minutes_visible": s.minutes_visible,
            "max_height_deg": s.max_height_deg,
            "appears": s.appears,
            "disappears": s.disappears,
            "magnitude": round(s.magnitude, 1) if math.isfinite(s.magnitude) else None,
            "start": look("start", v.start.az_deg, v.start.el_deg, v.start.t_unix),
            "max": look("max", v.peak.az_deg, v.peak.el_deg, v.peak.t_unix),
            "end": look("end", v.end.az_deg, v.end.el_deg, v.end.t_unix),
            "sky_path": self.sky_points,
        }


def _offset_fn(zone: zoneinfo.ZoneInfo) -> Callable[[float], float]:
    def offset_of(t: float) -> float:
        delta = dt.datetime.fromtimestamp(t, tz=zone).utcoffset()
        return 0.0 if delta is None else delta.total_seconds()

    return offset_of


def _compute_passes(e: Elements, lat: float, lon: float, t0: float, t1: float, tz: str) -> list[PassView]:
    """Visible passes over [t0, t1] with sky charts; one SGP4 run for all the charts."""
    table = find_passes(e, lat, lon, 0.0, t0_unix=t0, t1_unix=t1, **SPOT_THE_STATION)
    items = [p for p in table.for_observer(0) if p.visible is not None]
    if not items:
        return []
    offset_of = _offset_fn(zoneinfo.ZoneInfo(tz))
    n = _CHART_SAMPLES
    times = []
    for p in items:
        v = p.visible
        if v is None:
            continue
        a = p.rise.t_unix if math.isfinite(p.rise.t_unix) else p.culmination.t_unix - 300.0
        b = p.set.t_unix if math.isfinite(p.set.t_unix) else p.culmination.t_unix + 300.0
        times.append(np.linspace(a, b, n))
        times.append(np.linspace(v.start.t_unix, v.end.t_unix, n))
    az, el = geo.look_angles(e, lat, lon, 0.0, np.concatenate(times))
    out = []
    for i, p in enumerate(items):
        v = p.visible
        if v is None:
            continue
        whole, seen = slice(2 * i * n, (2 * i + 1) * n), slice((2 * i + 1) * n, (2 * i + 2) * n)
        chart = geo.sky_chart(
            az[whole], el[whole], az[seen], el[seen],
            [("start", v.start.az_deg, v.start.el_deg), ("max", v.peak.az_deg, v.peak.el_deg),
             ("end", v.end.az_deg, v.end.el_deg)],
        )  # fmt: skip
        sighting = sightings([p], offset_of)[0]
        end_time = local_time_parts(v.end.t_unix, offset_of(v.end.t_unix))[2]
        points = [[round(float(a), 1), round(float(b), 1)] for a, b in zip(az[seen], el[seen], strict=True)]
        out.append(PassView(sighting, p, chart, end_time, points))
    return out


@dataclass(frozen=True, slots=True)
class _Where:
    """The observer of a passes request."""

    name: str
    country: str
    lat: float
    lon: float
    timezone: str
    note: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "country": self.country, "lat": self.lat, "lon": self.lon,
                "timezone": self.timezone, "note": self.note}  # fmt: skip


class _Ambiguous(Exception):
    def __init__(self, text: str, choices: list[geo.Place]) -> None:
        super().__init__(text)
        self.text = text
        self.choices = choices


def _number(params: Any, name: str) -> float | None:
    raw = params.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{raw!r} is not a number", field=name) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{raw!r} is not a finite number", field=name)
    return value


def _zone_name(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    name = raw.strip()
    try:
        if len(name) > 64:
            raise ValueError(name)
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        message = f"{name!r} is not a time zone (give a name like Europe/Paris)"
        raise InvalidInput(message, field="tz") from None
    return name


def _resolve(ctx: PublicContext, params: Any) -> _Where | None:
    """The observer from ``place`` or ``lat``/``lon`` (+ optional ``tz``); None when none is given."""
    zone = _zone_name(params.get("tz"))
    place = (params.get("place") or "").strip()
    coords: tuple[float, float] | None = None
    if place:
        if len(place) > 200:
            raise InvalidInput("too long (at most 200 characters)", field="place")
        coords = geo.parse_latlon(place)
        if coords is None:
            found = ctx.places.search(place)
            if not found:
                close = ctx.places.suggestions(place)
                hint = f"; did you mean {', '.join(p.label for p in close)}?" if close else ""
                raise NotFound(
                    f"no place named {place!r} in the gazetteer{hint} "
                    "(try a nearby city, or give coordinates like 48.85, 2.35)",
                    field="place",
                )
            if len(found) > 1:
                raise _Ambiguous(place, found[:20])
            p = found[0]
            return _Where(p.name, p.country_name, p.lat, p.lon, zone or p.timezone, "")
    else:
        lat, lon = _number(params, "lat"), _number(params, "lon")
        if lat is None and lon is None:
            return None
        if lat is None:
            raise InvalidInput("missing (give both lat and lon, or a place)", field="lat")
        if lon is None:
            raise InvalidInput("missing (give both lat and lon, or a place)", field="lon")
        geo.check_latlon(lat, lon)
        coords = (lat, lon)
    lat, lon = coords
    name = f"{abs(lat):.2f}°{'N' if lat >= 0 else 'S'} {abs(lon):.2f}°{'E' if lon >= 0 else 'W'}"
    if zone is not None:
        return _Where(name, "", lat, lon, zone, "")
    near, km = ctx.places.nearest(lat, lon)
    if km <= _NEAREST_TZ_KM:
        note = f"times in the zone of {near.name} ({near.timezone})"
        return _Where(name, "", lat, lon, near.timezone, note)
    return _Where(name, "", lat, lon, "UTC", "times in UTC (no city nearby to take a time zone from)")


def _days(ctx: PublicContext, params: Any) -> float:
    days = _number(params, "days")
    if days is None:
        return ctx.pass_days
    if not 0.0 < days <= _MAX_DAYS:
        raise InvalidInput(f"{days:g} is outside (0, {_MAX_DAYS:g}]", field="days")
    return days


# --------------------------------------------------------------------------------------------
# routes


def public_routes(ctx: PublicContext) -> list[BaseRoute]:
    """The public pages and their JSON: ``/``, ``/api/station``, ``/passes``, ``/api/passes``."""
    tracks = _LRU(8)
    nights = _LRU(8)
    stations = _LRU(8)
    passes_cache = _LRU(_PASS_CACHE_SIZE)
    search_limiter = RateLimiter(rate_per_s=0.5, burst=10, max_clients=100_000)
    passes_json = _LRU(_PASS_CACHE_SIZE)

    def station_now() -> _Station:
        """The station at the clock's whole second (one SGP4 run per second, whatever the load)."""
        e = ctx.elements()
        t = float(math.floor(ctx.now_unix()))
        key = (_ekey(e), t)
        cached: _Station | None = stations.get(key)
        if cached is not None:
            return cached
        state = satellite_state(e, t)
        bucket = math.floor(t / _TRACK_BUCKET_S) * _TRACK_BUCKET_S
        track_key = (_ekey(e), bucket, ctx.orbits)
        track = tracks.get(track_key)
        if track is None:
            track = _compute_track(e, bucket, ctx.orbits)
            tracks.put(track_key, track)
        night = nights.get(bucket)
        if night is None:
            night = geo.night_path(bucket + _TRACK_BUCKET_S / 2)
            nights.put(bucket, night)
        data = station_payload(e, t, state, track, night, ctx.max_age_days)
        light = {k: v for k, v in data.items() if k not in ("track", "night_path")}
        made = _Station(data, _json_bytes(data), _json_bytes(light))
        stations.put(key, made)
        return made

    def base(request: Request, **extra: Any) -> dict[str, Any]:
        # every name the templates use is defined, so they render under StrictUndefined too
        return {
            "request": request, "mission_name": ctx.mission_name, "static_prefix": ctx.static_prefix,
            "active": "", "form": {}, "where": None, "error": None, "choices": None, "ambiguous": None,
            "views": [], "days": ctx.pass_days, "satellite": "", "age_text": "", "stale": False, **extra,
        }  # fmt: skip

    def page_error(request: Request, status: int, message: str, active: str) -> Response:
        return ctx.templates.TemplateResponse(
            request, "public/error.html", base(request, status=status, message=message, active=active),
            status_code=status,
        )  # fmt: skip

    async def home(request: Request) -> Response:
        try:
            data = station_now().data
        except OrbitInputError as exc:
            return page_error(request, 503, f"cannot compute the station's position: {exc}", "home")
        return ctx.templates.TemplateResponse(
            request, "public/station.html",
            base(request, active="home", station=data, world=_world_svg(),
                 max_age_days=ctx.max_age_days),
        )  # fmt: skip

    async def api_station(request: Request) -> Response:
        try:
            station = station_now()
        except OrbitInputError as exc:
            return _JSON({"error": f"cannot compute the station's position: {exc}"}, status_code=503)
        body = station.light if request.query_params.get("track") == "0" else station.full
        return Response(body, media_type="application/json", headers=_NO_STORE)

    async def upcoming(where: _Where, days: float, client: str) -> tuple[Elements, float, list[PassView]]:
        """Visible passes from the clock's minute on (searched once an hour per place).

        A search (a cache miss) costs a fraction of a CPU second: each client gets a few, then
        one every few seconds (:class:`RateLimited`); whole days keep the cache keys few.
        """
        e = ctx.elements()
        t = math.floor(ctx.now_unix() / 60.0) * 60.0
        bucket = math.floor(t / _PASS_BUCKET_S) * _PASS_BUCKET_S
        whole_days = math.ceil(days)
        key = (_ekey(e), round(where.lat, 4), round(where.lon, 4), where.timezone, bucket, whole_days)
        views: list[PassView] | None = passes_cache.get(key)
        if views is None:
            search_limiter.check(client, time.monotonic())
            t1 = bucket + whole_days * SECONDS_PER_DAY + _PASS_BUCKET_S
            views = await run_in_threadpool(
                _compute_passes, e, where.lat, where.lon, bucket, t1, where.timezone
            )
            passes_cache.put(key, views)
        end = t + days * SECONDS_PER_DAY
        live = [
            v for v in views
            if v.pass_.visible is not None and v.pass_.visible.end.t_unix >= t and v.sighting.t_unix <= end
        ]  # fmt: skip
        return e, t, live

    async def passes_page(request: Request) -> Response:
        params = request.query_params
        form = {k: params.get(k, "") for k in ("place", "lat", "lon", "tz")}
        try:
            days = _days(ctx, params)
            where = _resolve(ctx, params)
            if where is None:
                return ctx.templates.TemplateResponse(
                    request, "public/passes.html", base(request, active="passes", form=form, where=None)
                )
            e, t, views = await upcoming(where, days, client_key(request))
        except _Ambiguous as amb:
            return ctx.templates.TemplateResponse(
                request, "public/passes.html",
                base(request, active="passes", form=form, where=None, ambiguous=amb.text,
                     choices=amb.choices),
            )  # fmt: skip
        except GroundError as exc:
            return ctx.templates.TemplateResponse(
                request, "public/passes.html",
                base(request, active="passes", form=form, where=None, error=str(exc)),
                status_code=exc.status,
            )  # fmt: skip
        except OrbitInputError as exc:
            return page_error(request, 503, f"cannot predict passes: {exc}", "passes")
        age = (t - e.epoch_unix) / SECONDS_PER_DAY
        return ctx.templates.TemplateResponse(
            request, "public/passes.html",
            base(request, active="passes", form=form, where=where, views=views, days=days,
                 satellite=e.name, age_text=_age_text(age), stale=abs(age) > ctx.max_age_days),
        )  # fmt: skip

    async def api_passes(request: Request) -> Response:
        params = request.query_params
        try:
            days = _days(ctx, params)
            where = _resolve(ctx, params)
            if where is None:
                raise InvalidInput("give a place name, or lat and lon", field="place")
            minute = math.floor(ctx.now_unix() / 60.0)
            key = (_ekey(ctx.elements()), where, days, minute)
            body: bytes | None = passes_json.get(key)
            if body is None:
                e, t, views = await upcoming(where, days, client_key(request))
                age = (t - e.epoch_unix) / SECONDS_PER_DAY
                body = _json_bytes({
                    "satellite": e.name,
                    "place": where.as_json(),
                    "from": unix_to_iso(t), "to": unix_to_iso(t + days * SECONDS_PER_DAY),
                    "elements": {"epoch": unix_to_iso(e.epoch_unix), "age_days": round(age, 3),
                                 "stale": abs(age) > ctx.max_age_days},
                    "passes": [v.as_json() for v in views],
                })  # fmt: skip
                passes_json.put(key, body)
        except _Ambiguous as amb:
            return _JSON(
                {"error": f"place: {amb.text!r} matches several places; pick one",
                 "choices": [{"name": p.name, "country": p.country_name, "country_code": p.country,
                              "lat": p.lat, "lon": p.lon, "query": p.query} for p in amb.choices]},
                status_code=300,
            )  # fmt: skip
        except GroundError as exc:
            return _JSON({"error": str(exc), "field": exc.field}, status_code=exc.status)
        except OrbitInputError as exc:
            return _JSON({"error": f"cannot predict passes: {exc}"}, status_code=503)
        return Response(body, media_type="application/json", headers=_NO_STORE)

    return [
        Route("/", home, methods=["GET"], name="public_home"),
        Route("/api/station", api_station, methods=["GET"], name="public_api_station"),
        Route("/passes", passes_page, methods=["GET"], name="public_passes"),
        Route("/api/passes", api_passes, methods=["GET"], name="public_api_passes"),
    ]
