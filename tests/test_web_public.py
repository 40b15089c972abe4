"""The public pages: the station now (map, JSON), sightings from a place, the gazetteer, the geometry."""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient

import proxima
from proxima.orbit.passes import SPOT_THE_STATION, find_passes, sightings
from proxima.orbit.position import satellite_state
from proxima.orbit.propagate import ground_track
from proxima.orbit.sun import sun_elevation_deg
from proxima.runtime.regions import countries
from proxima.web import geo
from proxima.web.public import (
    PublicContext,
    default_gazetteer,
    default_templates,
    public_routes,
    snapshot_elements,
)

NOW = dt.datetime(2026, 3, 12, 18, 0, tzinfo=dt.UTC)
ELEMENTS = snapshot_elements()
STATIC = Path(proxima.__file__).parent / "web" / "static"


class Clock:
    """A settable clock for the routes."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def make_client(clock: Clock) -> TestClient:
    ctx = PublicContext(
        elements=ELEMENTS, clock=clock, templates=default_templates(), mission_name="Proxima-1"
    )
    static = Mount("/static", StaticFiles(directory=STATIC), name="static")
    app = Starlette(routes=[*public_routes(ctx), static])
    return TestClient(app)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def client(clock: Clock) -> TestClient:
    return make_client(clock)


def marker(html: str) -> dict[str, float]:
    tag = re.search(r'<circle id="station-marker"[^>]*>', html)
    assert tag is not None
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))
    return {k: float(attrs[k]) for k in ("cx", "cy", "data-lat", "data-lon")}


# --------------------------------------------------------------------------------------------
# the station now


def test_home_draws_map_track_night_and_marker(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert len(re.findall(r'<path class="country" data-code="[A-Z]+" d="M[\d.]', html)) >= 170
    assert '<path class="country" data-code="FR"' in html
    assert re.search(r'<path id="track" class="track" d="M[\d.]+ [\d.]+L', html)
    assert re.search(r'<path id="night" class="night" fill-rule="evenodd" d="M[\d.]+ [\d.]+L', html)
    state = satellite_state(ELEMENTS(), NOW.timestamp())
    m = marker(html)
    x, y = geo.map_xy(state.lat_deg, state.lon_deg)
    assert m["cx"] == pytest.approx(x, abs=2e-3)
    assert m["cy"] == pytest.approx(y, abs=2e-3)
    assert m["data-lat"] == pytest.approx(state.lat_deg, abs=1e-3)
    assert f"{state.alt_km:.1f} km" in html
    assert ("sunlit" if state.sunlit else "eclipsed") in html
    assert "Proxima-1" in html
    for label, href in (("Home", "/"), ("Passes", "/passes"), ("Timeline", "/timeline"),
                        ("Verify", "/verify"), ("Ask", "/ask")):  # fmt: skip
        assert f'<a href="{href}"' in html and f">{label}</a>" in html
    assert "/static/public/station.js" in html
    assert 'role="alert"' not in html  # elements 22 hours old: no warning


def test_static_files_are_served(client: TestClient) -> None:
    for name in ("station.js", "passes.js", "site.css"):
        r = client.get(f"/static/public/{name}")
        assert r.status_code == 200
        assert len(r.text) > 200


def test_home_warns_when_elements_are_old(client: TestClient, clock: Clock) -> None:
    clock.now = NOW + dt.timedelta(days=9)
    html = client.get("/").text
    assert 'class="warning"' in html
    assert "days old" in html
    assert client.get("/api/station").json()["elements"]["stale"] is True


def test_home_refuses_beyond_the_elements_span(client: TestClient, clock: Clock) -> None:
    clock.now = NOW + dt.timedelta(days=60)
    r = client.get("/")
    assert r.status_code == 503
    assert "epoch" in r.text
    assert client.get("/api/station").status_code == 503


def test_api_station_agrees_with_satellite_state(client: TestClient, clock: Clock) -> None:
    seen = []
    for step in (0.0, 7.0, 95.0):
        clock.now = NOW + dt.timedelta(seconds=step)
        t = clock.now.timestamp()
        data = client.get("/api/station").json()
        state = satellite_state(ELEMENTS(), t)
        assert data["time"] == clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert data["lat"] == pytest.approx(state.lat_deg, abs=1e-4)
        assert data["lon"] == pytest.approx(state.lon_deg, abs=1e-4)
        assert data["alt_km"] == pytest.approx(state.alt_km, abs=0.01)
        assert data["speed_km_s"] == pytest.approx(state.speed_km_s, abs=1e-4)
        assert data["sunlit"] is state.sunlit
        assert data["elements"]["age_days"] == pytest.approx((t - ELEMENTS().epoch_unix) / 86400, abs=1e-3)
        assert data["elements"]["epoch"] == "2026-03-11T20:04:35Z"
        seen.append((data["lat"], data["lon"]))
    # the ground point moves about 6.9 km/s: 95 s later it is several degrees away
    assert math.dist(seen[0], seen[2]) > 3.0


def test_api_station_track_covers_the_next_orbits(client: TestClient) -> None:
    data = client.get("/api/station").json()
    segments = data["track"]["segments"]
    points = [p for seg in segments for p in seg]
    t, lat, lon = ground_track(ELEMENTS(), NOW.timestamp(), orbits=3.0, step_s=60.0)
    assert len(points) >= t.size  # every sample plus the antimeridian crossings
    assert points[0] == pytest.approx([lat[0], lon[0]], abs=1e-3)
    assert points[-1] == pytest.approx([lat[-1], lon[-1]], abs=1e-3)
    assert len(segments) >= 3  # three orbits cross the antimeridian at least twice
    for seg in segments:
        lons = np.array([p[1] for p in seg])
        assert np.all(np.abs(np.diff(lons)) < 180.0)
    assert data["track"]["path"].count("M") == len(segments)
    assert "track" not in client.get("/api/station?track=0").json()


# --------------------------------------------------------------------------------------------
# sightings


def _engine_sightings(
    lat: float, lon: float, tz: str, t0: float, days: float
) -> list[tuple[str, int, int, str, str]]:
    bucket = math.floor(t0 / 3600) * 3600
    table = find_passes(ELEMENTS(), lat, lon, 0.0, t0_unix=bucket, t1_unix=bucket + days * 86400 + 3600,
                        **SPOT_THE_STATION)  # fmt: skip
    zone = zoneinfo.ZoneInfo(tz)

    def offset(t: float) -> float:
        off = dt.datetime.fromtimestamp(t, tz=zone).utcoffset()
        return 0.0 if off is None else off.total_seconds()

    visible = [p for p in table.for_observer(0) if p.visible is not None and p.visible.end.t_unix >= t0
               and p.visible.start.t_unix <= t0 + days * 86400]  # fmt: skip
    return [(s.local_iso, s.minutes_visible, s.max_height_deg, s.appears, s.disappears)
            for s in sightings(visible, offset)]  # fmt: skip


def test_paris_sightings_agree_with_the_engine(client: TestClient) -> None:
    data = client.get("/api/passes", params={"place": "Paris"}).json()
    assert data["place"]["name"] == "Paris"
    assert data["place"]["country"] == "France"
    assert data["place"]["timezone"] == "Europe/Paris"
    expected = _engine_sightings(48.86, 2.35, "Europe/Paris", NOW.timestamp(), 10.0)
    got = [(p["local_iso"], p["minutes_visible"], p["max_height_deg"], p["appears"], p["disappears"])
           for p in data["passes"]]  # fmt: skip
    assert len(expected) >= 5
    assert got == expected
    first = data["passes"][0]
    assert first["local_iso"].endswith("+01:00")  # CET before the switch to summer time
    assert first["start"]["elevation_deg"] >= 9.9
    assert first["max"]["elevation_deg"] == pytest.approx(first["max_height_deg"], abs=0.5)
    start = [first["start"]["azimuth_deg"], first["start"]["elevation_deg"]]
    assert first["sky_path"][0] == pytest.approx(start, abs=0.11)
    # Paris switches to summer time on 29 March: a 20-day listing shows both offsets
    later = client.get("/api/passes", params={"place": "Paris", "days": "20"}).json()["passes"]
    assert {p["local_iso"][-6:] for p in later} >= {"+01:00", "+02:00"}


def test_passes_page_lists_sightings_with_sky_charts(client: TestClient) -> None:
    r = client.get("/passes?place=paris")
    assert r.status_code == 200
    html = r.text
    rows = re.findall(r'<tr class="pass" data-start="([^"]+)">(.*?)</tr>', html, re.S)
    api = client.get("/api/passes?place=Paris").json()["passes"]
    assert len(rows) == len(api) >= 5
    for (start, row), p in zip(rows, api, strict=True):
        assert start == p["local_iso"]
        assert f"<td>{p['time']}</td>" in row
        assert f"<td>{p['max_height_deg']}°</td>" in row
        assert f"<td>{p['appears']}</td>" in row
        chart = re.search(r'<svg class="sky-chart".*?</svg>', row, re.S)
        assert chart is not None
        svg = chart.group(0)
        assert re.search(r'class="visible-path" d="M-?[\d.]+ -?[\d.]+L', svg)
        assert all(f'mark-{k}"' in svg for k in ("start", "max", "end"))
        assert all(f">{c}</text>" in svg for c in "NESW")
    assert "Europe/Paris" in html


def test_place_lookup_ignores_case_and_accents(client: TestClient) -> None:
    for text in ("KÖLN", "koln", "Cologne", "cologne, de", "Köln, Germany"):
        data = client.get("/api/passes", params={"place": text}).json()
        assert data["place"]["name"] == "Cologne", text
        assert data["place"]["timezone"] == "Europe/Berlin"


def test_coordinates_take_the_nearest_city_zone_or_the_browser_zone(client: TestClient) -> None:
    data = client.get("/api/passes", params={"lat": "29.7", "lon": "-95.4"}).json()
    assert data["place"]["timezone"] == "America/Chicago"
    assert "Houston" in data["place"]["note"]
    data = client.get("/api/passes", params={"place": "29.7, -95.4", "tz": "America/Denver"}).json()
    assert data["place"]["timezone"] == "America/Denver"
    assert (data["place"]["lat"], data["place"]["lon"]) == (29.7, -95.4)
    assert all(p["local_iso"][-6:] in ("-07:00", "-06:00") for p in data["passes"])
    mid_ocean = client.get("/api/passes", params={"lat": "-45", "lon": "-130"}).json()
    assert mid_ocean["place"]["timezone"] == "UTC"


def test_ambiguous_place_lists_choices(client: TestClient) -> None:
    r = client.get("/passes", params={"place": "Valencia"})
    assert r.status_code == 200
    assert "Several places are called" in r.text
    assert f'href="/passes?place={quote("Valencia, ES")}"' in r.text
    assert f'href="/passes?place={quote("Valencia, VE")}"' in r.text
    assert '<tr class="pass"' not in r.text
    api = client.get("/api/passes", params={"place": "Valencia"})
    assert api.status_code == 300
    assert {c["country_code"] for c in api.json()["choices"]} == {"ES", "VE"}
    picked = client.get("/api/passes", params={"place": "Valencia, VE"}).json()
    assert picked["place"]["country"] == "Venezuela"
    assert picked["place"]["timezone"] == "America/Caracas"


def test_unknown_place_is_a_404_naming_it(client: TestClient) -> None:
    r = client.get("/passes", params={"place": "Atlantis"})
    assert r.status_code == 404
    assert "no place named &#39;Atlantis&#39;" in r.text
    api = client.get("/api/passes", params={"place": "Atlantis"})
    assert api.status_code == 404
    assert "'Atlantis'" in api.json()["error"]
    assert api.json()["field"] == "place"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"lat": "abc", "lon": "2"}, "lat"),
        ({"lat": "48", "lon": "east"}, "lon"),
        ({"lat": "91", "lon": "2"}, "lat"),
        ({"lat": "48", "lon": "181"}, "lon"),
        ({"lat": "nan", "lon": "2"}, "lat"),
        ({"lat": "48"}, "lon"),
        ({"lon": "2"}, "lat"),
        ({"place": "95, 10"}, "lat"),
        ({"place": "Paris", "days": "0"}, "days"),
        ({"place": "Paris", "tz": "Mars/Olympus"}, "tz"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client: TestClient, query: dict[str, str], field: str) -> None:
    api = client.get("/api/passes", params=query)
    assert api.status_code == 400
    assert api.json()["field"] == field
    assert api.json()["error"].startswith(f"{field}: ")
    page = client.get("/passes", params=query)
    assert page.status_code == 400
    assert f"{field}: " in page.text


def test_api_passes_needs_a_place(client: TestClient) -> None:
    assert client.get("/api/passes").status_code == 400
    form = client.get("/passes")
    assert form.status_code == 200
    assert '<form class="place-form"' in form.text
    assert 'id="locate"' in form.text


def test_script_in_the_place_comes_back_inert(client: TestClient) -> None:
    evil = '<script>alert("x")</script>'
    for path in ("/passes", "/api/passes"):
        r = client.get(path, params={"place": evil})
        assert r.status_code == 404
        assert "<script>alert" not in r.text
    html = client.get("/passes", params={"place": evil}).text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    api = client.get("/api/passes", params={"place": evil})
    assert api.headers["content-type"] == "application/json"
    assert api.headers["x-content-type-options"] == "nosniff"
    assert evil in api.json()["error"]  # named, escaped as \u003c… in the JSON text
    amb = client.get("/passes", params={"place": "Valencia", "tz": "<b>x</b>"}).text
    assert "<b>x</b>" not in amb


def test_passes_are_searched_once_an_hour_per_place(
    client: TestClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import proxima.web.public as public

    calls: list[float] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(float(kwargs["t0_unix"]))
        return find_passes(*args, **kwargs)

    monkeypatch.setattr(public, "find_passes", counting)
    first = client.get("/api/passes", params={"place": "Tokyo"}).json()["passes"]
    clock.now = NOW + dt.timedelta(minutes=5)
    later = client.get("/api/passes", params={"place": "tokyo"}).json()["passes"]
    assert len(calls) == 1
    assert later == first[: len(later)] or later == first[1:]
    clock.now = NOW + dt.timedelta(hours=1)
    client.get("/api/passes", params={"place": "Tokyo"})
    client.get("/passes", params={"place": "Tokyo"})
    assert len(calls) == 2
    client.get("/api/passes", params={"place": "Osaka"})
    assert len(calls) == 3
    ends = [dt.datetime.fromisoformat(p["end"]["time"].replace("Z", "+00:00")) for p in later]
    assert ends
    assert all(end >= NOW for end in ends)


# --------------------------------------------------------------------------------------------
# gazetteer


def test_gazetteer_has_the_places_the_mission_needs() -> None:
    places = default_gazetteer()
    assert len(places.places) >= 300
    for name, country, lat, lon, tz in (
        ("Paris", "FR", 48.86, 2.35, "Europe/Paris"), ("Toulouse", "FR", 43.60, 1.44, "Europe/Paris"),
        ("Cologne", "DE", 50.94, 6.96, "Europe/Berlin"), ("Houston", "US", 29.76, -95.37, "America/Chicago"),
        ("Moscow", "RU", 55.76, 37.62, "Europe/Moscow"), ("Tokyo", "JP", 35.68, 139.69, "Asia/Tokyo"),
        ("Kourou", "GF", 5.16, -52.65, "America/Cayenne"), ("Baikonur", "KZ", 45.62, 63.31, "Asia/Qyzylorda"),
    ):  # fmt: skip
        (p,) = places.search(name)
        assert (p.country, p.lat, p.lon, p.timezone) == (country, lat, lon, tz)
    capitals = (
        "Tirana Andorra-la-Vella Vienna Minsk Brussels Sarajevo Sofia Zagreb Nicosia Prague Copenhagen "
        "Tallinn Helsinki Paris Berlin Athens Budapest Reykjavik Dublin Rome Pristina Riga Vaduz Vilnius "
        "Luxembourg Valletta Chisinau Monaco Podgorica Amsterdam Skopje Oslo Warsaw Lisbon Bucharest Moscow "
        "San-Marino Belgrade Bratislava Ljubljana Madrid Stockholm Bern Kyiv London Vatican-City"
    )
    for capital in capitals.split():
        assert places.search(capital.replace("-", " ")), capital
    continents = {"Europe", "Asia", "Africa", "America", "Australia", "Pacific"}
    assert continents <= {p.timezone.split("/")[0] for p in places.places}


def test_gazetteer_rows_are_sane() -> None:
    zones = zoneinfo.available_timezones()
    places = default_gazetteer().places
    for p in places:
        assert p.timezone in zones, p
        assert -90 <= p.lat <= 90 and -180 <= p.lon <= 180
        assert p.population > 0
        assert p.country_name and p.country_name != p.country, p
    assert len({(p.name, p.country) for p in places}) == len(places)
    # a time zone's UTC offset at the place fits its longitude within a few hours (catches sign slips)
    winter = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)
    for p in places:
        off = winter.astimezone(zoneinfo.ZoneInfo(p.timezone)).utcoffset()
        assert off is not None
        hours = off.total_seconds() / 3600
        assert abs(((hours - p.lon / 15) + 12) % 24 - 12) < 3.5, p


def test_gazetteer_search_rules() -> None:
    places = default_gazetteer()
    assert [p.name for p in places.search("sao paulo")] == ["São Paulo"]
    assert [p.name for p in places.search("SÃO PAULO")] == ["São Paulo"]
    assert [p.name for p in places.search("st petersburg")] == ["Saint Petersburg"]
    assert {p.country for p in places.search("Cordoba")} == {"AR", "ES"}
    assert [p.country for p in places.search("Cordoba, AR")] == ["AR"]
    assert places.search("Atlantis") == []
    assert places.search("   ") == []
    assert geo.parse_latlon("48.85, 2.35") == (48.85, 2.35)
    assert geo.parse_latlon("-33.9 151.2") == (-33.9, 151.2)
    assert geo.parse_latlon("Paris") is None
    near, km = places.nearest(48.9, 2.3)
    assert near.name == "Paris"
    assert km < 10


# --------------------------------------------------------------------------------------------
# geometry


def test_antimeridian_crossing_is_split() -> None:
    segs = geo.split_antimeridian([0.0, 1.0, 2.0, 3.0], [178.0, 179.5, -179.0, -178.0])
    assert len(segs) == 2
    assert segs[0][-1] == pytest.approx((1.0 + 1.0 / 3.0, 180.0))
    assert segs[1][0] == pytest.approx((1.0 + 1.0 / 3.0, -180.0))
    assert segs[0][:2] == [(0.0, 178.0), (1.0, 179.5)]
    assert segs[1][1:] == [(2.0, -179.0), (3.0, -178.0)]
    west = geo.split_antimeridian([10.0, 12.0], [-179.0, 179.0])
    assert [s[-1][1] for s in west] == [-180.0, 179.0]
    assert west[0][-1][0] == pytest.approx(11.0)
    plain = geo.split_antimeridian([0.0, 1.0, 2.0], [10.0, 20.0, 30.0])
    assert plain == [[(0.0, 10.0), (1.0, 20.0), (2.0, 30.0)]]
    path = geo.track_path(segs)
    assert path.count("M") == 2
    assert "L360 " in path and "M0 " in path


def test_ring_across_the_antimeridian_is_drawn_on_both_sides() -> None:
    path = geo.ring_path([179.0, -179.0, -179.0, 179.0, 179.0], [-17.0, -17.0, -18.0, -18.0, -17.0])
    assert path.count("M") == 2  # the ring and its copy shifted by 360°
    xs = [float(v) for v in re.findall(r"[ML](-?[\d.]+) ", path)]
    assert min(xs) < 0 and max(xs) > 360  # each copy sticks out of the map, which clips it
    shapes = {c.code: c for c in geo.country_shapes(countries())}
    assert " 180" in shapes["AQ"].path  # Antarctica is closed along the south pole (y = 180)
    assert shapes["RU"].path.count("M") > shapes["FR"].path.count("M") >= 1


def test_terminator_at_the_equinox() -> None:
    equinox = dt.datetime(2026, 3, 20, 14, 46, tzinfo=dt.UTC).timestamp()
    lat_s, lon_s = geo.subsolar_point(equinox)
    assert abs(lat_s) < 0.05
    # 14:46 UTC is 2h46m after noon at Greenwich: the Sun is near 41.5° W (equation of time -7.5 min)
    assert lon_s == pytest.approx(-(2 * 60 + 46) / 4 + 7.5 / 4, abs=0.5)
    lat, lon = geo.terminator(equinox)
    el = sun_elevation_deg(lat, lon, 0.0, equinox)[:, 0]
    assert np.all(np.abs(el) < 0.3)  # geodetic vs geocentric latitude makes a few tenths
    near_equator = np.abs(lat) < 2.0
    offsets = np.sort(((lon[near_equator] - lon_s + 180.0) % 360.0) - 180.0)
    assert offsets[0] == pytest.approx(-90.0, abs=2.5)
    assert offsets[-1] == pytest.approx(90.0, abs=2.5)
    _night_matches_the_sun(equinox)


def test_night_encloses_the_winter_pole() -> None:
    june = dt.datetime(2026, 6, 21, 12, tzinfo=dt.UTC).timestamp()
    lat, _, pole = geo.night_ring(june)
    assert pole == -90.0
    assert lat.min() == pytest.approx(-90.0 + 23.44, abs=0.1)  # the Antarctic circle
    assert re.search(r"L-?[\d.]+ 180L-?[\d.]+ 180L", geo.night_path(june))  # closed along the south pole
    _night_matches_the_sun(june)
    twilight = geo.night_ring(june, -6.0)
    assert twilight[0].max() < lat.max() - 5.5


def test_sky_chart_geometry() -> None:
    assert geo.sky_xy(123.0, 90.0) == pytest.approx((0.0, 0.0))
    assert geo.sky_xy(0.0, 0.0) == pytest.approx((0.0, -90.0))
    assert geo.sky_xy(90.0, 0.0) == pytest.approx((90.0, 0.0))
    assert geo.sky_xy(180.0, 45.0) == pytest.approx((0.0, 45.0))
    chart = geo.sky_chart([200.0, 180.0, 160.0], [10.0, 40.0, 10.0], [180.0, 160.0], [40.0, 10.0],
                          [("start", 180.0, 40.0), ("max", 180.0, 40.0), ("end", 160.0, 10.0)])  # fmt: skip
    assert chart.pass_path.startswith("M")
    assert [m.kind for m in chart.marks] == ["start", "max", "end"]
    assert chart.marks[2].label == "10° SSE"
    assert {n: (x, y) for n, x, y in chart.compass}["N"] == pytest.approx((0.0, -97.2))


def _night_matches_the_sun(t: float) -> None:
    """Rasterize the drawn night path: on a 2° grid its pixels are dark exactly where the Sun is down
    (away from the line itself)."""
    scale = 4
    image = Image.new("L", (360 * scale, 180 * scale), 0)
    draw = ImageDraw.Draw(image)
    for sub in re.findall(r"M[^M]*", geo.night_path(t)):
        nums = [float(v) for v in re.findall(r"-?[\d.]+", sub)]
        draw.polygon([(nums[i] * scale, nums[i + 1] * scale) for i in range(0, len(nums), 2)], fill=255)
    glat, glon = np.meshgrid(np.arange(-89.0, 90.0, 2.0), np.arange(-179.0, 180.0, 2.0))
    glat, glon = glat.ravel(), glon.ravel()
    el = sun_elevation_deg(glat, glon, 0.0, t)[:, 0]
    pixels = np.asarray(image)
    dark = pixels[((90.0 - glat) * scale).astype(int), ((glon + 180.0) * scale).astype(int)] == 255
    clear = np.abs(el) > 1.0
    assert clear.sum() > 10_000
    assert np.array_equal(dark[clear], el[clear] < 0.0)
