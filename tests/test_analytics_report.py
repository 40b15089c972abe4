"""Charts, campaign reports (JSON, HTML, PDF) and the ``proxima report``/``analytics`` commands.

The commands are run against a small real HTTP server on 127.0.0.1 that answers as the ground
service's analytics routes do (their JSON is :func:`report_to_json`'s), so the whole path from
the request to the written file is exercised without the service itself.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from proxima.analytics import charts
from proxima.analytics.model import AccountActivity, Bucket, CampaignView, PostSample
from proxima.analytics.report import (
    BestTimeRow,
    CampaignReport,
    GrowthRow,
    InfluenceRow,
    TopPost,
    render_html,
    render_pdf,
    report_from_json,
    report_to_json,
)
from proxima.cli import main
from proxima.cli_analytics import default_report_name, parse_time
from proxima.errors import InvalidInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2026, 3, 14, tzinfo=UTC)
HOSTILE = "<script>alert('x')</script>"


def _view(tag: str = "allezthomas") -> CampaignView:
    counts = [0, 2, 5, 40, 120, 60, 30, 10]
    buckets = tuple(
        Bucket(T0 + timedelta(hours=h), n, max(n // 3, 1 if n else 0), n // 2, n // 3, n - n // 2 - n // 3)
        for h, n in enumerate(counts)
    )
    return CampaignView(
        tag=tag,
        start=T0,
        end=T0 + timedelta(hours=len(counts)),
        bucket="hour",
        mentions=sum(counts),
        authors=1234,
        reach=987_654,
        unique_reach=456_789,
        positive=sum(b.positive for b in buckets),
        neutral=sum(b.neutral for b in buckets),
        negative=sum(b.negative for b in buckets),
        buckets=buckets,
        languages=(("fr", 160), ("en", 100), ("und", 7)),
        channels=(("mastodon", 200), ("bluesky", 67)),
        top_accounts=(
            AccountActivity("mastodon", "@cnes@mastodon.example", 14, 52_000),
            AccountActivity("bluesky", "fan.bsky.social", 9, 310),
        ),
    )


def _report(tag: str = "allezthomas", text: str = "Décollage réussi ! Allez Thomas 🚀") -> CampaignReport:
    view = _view(tag)
    return CampaignReport(
        tag=tag,
        start=view.start,
        end=view.end,
        generated_at=T0 + timedelta(days=1, minutes=7),
        metrics_version="1",
        view=view,
        growth=(
            GrowthRow("mastodon", 1000, 1510, 510, 51.0),
            GrowthRow("bluesky", None, 230, None, None),
        ),
        follower_series={
            "mastodon": tuple((T0 + timedelta(hours=h), 1000 + 70 * h) for h in range(8)),
            "bluesky": tuple((T0 + timedelta(hours=h), 200 + 4 * h) for h in range(2, 8)),
        },
        sentiment=tuple((b.start, b.positive, b.neutral, b.negative) for b in view.buckets),
        top_posts=(
            TopPost("mastodon", "post-1", text, "https://mastodon.example/@crew/1", 321, 0.0425),
            TopPost("bluesky", "post-2", "Second post", "javascript:alert(1)", 12, None),
        ),
        influence=(InfluenceRow("mastodon", "@cnes@mastodon.example", 97, 52_000),),
        best_times=(BestTimeRow("mastodon", 2, 18, 4, 0.0312),),
        share_of_voice=(("@crew@mastodon.example", 30, 0.6), ("@esa@mastodon.example", 20, 0.4)),
    )


# ------------------------------------------------------------------------ charts


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def _svg_texts(data: bytes) -> list[str]:
    """Matplotlib draws SVG text as paths and leaves each string in a comment before it."""
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return re.findall(r"<!-- (.*?) -->", data.decode())


def _life(remote_id: str, hours: float, likes: int, reposts: int, replies: int, **kw: Any) -> PostSample:
    return PostSample(
        channel=kw.pop("channel", "mastodon"),
        remote_id=remote_id,
        account="@crew@mastodon.example",
        published_at=T0,
        at=T0 + timedelta(hours=hours),
        likes=likes,
        reposts=reposts,
        replies=replies,
        post_id="post-1",
        **kw,
    )


LIFE = [
    # A two-message thread on Mastodon, the second message sampled seconds after the first.
    *(_life("m1", h, 10 * h, 2 * h, h, quotes=h // 2) for h in range(6)),
    *(_life("m2", h + 0.001, 3 * h, h, 0) for h in range(6)),
    *(_life("b1", h, 4 * h, h, 2, channel="bluesky", quotes=1) for h in range(1, 5)),
]


def _draw_all(fmt: charts.ChartFormat) -> dict[str, bytes]:
    report = _report()
    return {
        "growth": charts.growth_chart(report.follower_series, title="Followers — été", fmt=fmt),
        "campaign": charts.campaign_chart(report.view, fmt=fmt),
        "post_life": charts.post_life_chart(LIFE, fmt=fmt),
        "sentiment": charts.sentiment_chart(report.sentiment, fmt=fmt),
    }


@functools.cache
def _all_charts(fmt: charts.ChartFormat) -> dict[str, bytes]:
    """Every chart of the fixture, drawn once for the module (drawing is the slow part)."""
    return _draw_all(fmt)


@functools.cache
def _html() -> str:
    return render_html(_report())


def _empty_charts(fmt: charts.ChartFormat) -> dict[str, bytes]:
    empty_view = replace(_view(), mentions=0, buckets=(), top_accounts=())
    return {
        "growth": charts.growth_chart({}, title="Followers", fmt=fmt),
        "campaign": charts.campaign_chart(empty_view, fmt=fmt),
        "post_life": charts.post_life_chart([], fmt=fmt),
        "sentiment": charts.sentiment_chart([(T0, 0, 0, 0)], fmt=fmt),
    }


def test_png_charts_have_the_fixed_size_and_are_reproducible() -> None:
    first = _all_charts("png")
    for name, data in first.items():
        assert _png_size(data) == (charts.WIDTH_IN * charts.DPI, charts.HEIGHT_IN * charts.DPI), name
    assert _draw_all("png") == first
    assert len(set(first.values())) == len(first)


def test_svg_charts_parse_are_reproducible_and_label_time_in_utc() -> None:
    first = _all_charts("svg")
    for name, data in first.items():
        texts = _svg_texts(data)
        assert charts.NO_DATA not in texts, name
        assert b"<dc:date>" not in data
        if name != "post_life":
            assert "time (UTC)" in texts, name
    assert "hours since publication (sampled in UTC)" in _svg_texts(first["post_life"])
    assert "#allezthomas: 2026-03-14 00:00 to 2026-03-14 08:00 UTC" in _svg_texts(first["campaign"])
    assert "Followers — été" in _svg_texts(first["growth"])
    assert _draw_all("svg") == first


def test_empty_input_gives_a_no_data_chart() -> None:
    for name, data in _empty_charts("svg").items():
        assert charts.NO_DATA in _svg_texts(data), name
    for name, data in _empty_charts("png").items():
        assert _png_size(data) == (800, 400), name


def test_growth_chart_draws_one_line_per_channel() -> None:
    texts = _svg_texts(_all_charts("svg")["growth"])
    assert {"mastodon", "bluesky", "followers"} <= set(texts)


def test_post_life_sums_the_messages_of_a_post_per_sample_time() -> None:
    """The two-message thread draws exactly as one message carrying the sums, sampled when the
    second message was: the chart adds the thread's counters at each collection round."""
    thread = [s for s in LIFE if s.channel == "mastodon"]
    by_round: dict[int, list[PostSample]] = {}
    for s in thread:
        by_round.setdefault(round((s.at - T0) / timedelta(hours=1)), []).append(s)
    summed = [
        _life(
            "single",
            max((s.at - T0) / timedelta(hours=1) for s in group),
            sum(s.likes for s in group),
            sum(s.reposts for s in group),
            sum(s.replies for s in group),
            quotes=sum(s.quotes or 0 for s in group),
        )
        for _, group in sorted(by_round.items())
    ]
    assert charts.post_life_chart(thread, fmt="svg") == charts.post_life_chart(summed, fmt="svg")
    # A message whose counters change changes the chart: the sum is really drawn.
    changed = [replace(s, likes=s.likes + 5) if s.remote_id == "m2" else s for s in thread]
    assert charts.post_life_chart(changed, fmt="svg") != charts.post_life_chart(thread, fmt="svg")
    labels = set(_svg_texts(charts.post_life_chart(LIFE, fmt="svg")))
    assert {"mastodon likes", "mastodon quotes", "bluesky replies", "bluesky quotes"} <= labels
    no_quotes = [replace(s, quotes=None) for s in LIFE]
    assert "mastodon quotes" not in set(_svg_texts(charts.post_life_chart(no_quotes, fmt="svg")))


def test_charts_refuse_naive_times_negative_counts_and_unknown_formats() -> None:
    with pytest.raises(InvalidInput, match="no time zone"):
        charts.growth_chart({"mastodon": [(datetime(2026, 3, 14), 5)]}, title="x")
    with pytest.raises(InvalidInput, match="negative count"):
        charts.sentiment_chart([(T0, 1, -1, 0)])
    with pytest.raises(InvalidInput, match="gif"):
        charts.sentiment_chart([], fmt="gif")  # type: ignore[arg-type]


def test_charts_can_be_drawn_from_several_threads_at_once() -> None:
    expected = _all_charts("png")["campaign"]
    results: list[bytes] = []
    view = _view()

    def draw() -> None:
        results.append(charts.campaign_chart(view))

    threads = [threading.Thread(target=draw) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [expected] * 3


# ------------------------------------------------------------------------ JSON


def test_json_round_trip_of_a_full_report() -> None:
    report = _report()
    data = report_to_json(report)
    assert data["start"] == "2026-03-14T00:00:00Z"
    assert data["view"]["buckets"][4]["mentions"] == 120
    assert report_from_json(json.loads(json.dumps(data))) == report


def test_json_times_with_another_offset_are_read_as_the_same_instant() -> None:
    data = report_to_json(_report())
    data["start"] = "2026-03-14T01:00:00+01:00"
    loaded = report_from_json(data)
    assert loaded.start == T0
    assert loaded.start.tzinfo == UTC


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        (["tag"], 5, "tag", "a string"),
        (["start"], "yesterday", "start", "ISO-8601"),
        (["end"], "2026-03-14T08:00:00", "end", "offset"),
        (["view", "bucket"], "week", "view.bucket", "'hour' or 'day'"),
        (["view", "buckets", 2, "mentions"], -1, "view.buckets[2].mentions", "0 or more"),
        (["view", "buckets", 2, "mentions"], True, "view.buckets[2].mentions", "a boolean"),
        (["view", "languages", 0], ["fr"], "view.languages[0]", "2 elements"),
        (["growth", 0, "percent"], "51%", "growth[0].percent", "a number"),
        (["follower_series", "mastodon", 1, 0], "noon", "follower_series.mastodon[1][0]", "ISO-8601"),
        (["sentiment"], {}, "sentiment", "an array"),
        (["top_posts", 1, "url"], 3, "top_posts[1].url", "a string"),
        (["influence", 0, "score"], 9.5, "influence[0].score", "an integer"),
        (["best_times", 0, "weekday"], 7, "best_times[0].weekday", "0 (Monday) to 6"),
        (["best_times", 0, "hour"], 24, "best_times[0].hour", "0 to 23"),
        (["share_of_voice", 0, "share"], float("nan"), "share_of_voice[0].share", "finite"),
    ],
)
def test_bad_json_names_the_field(path: list[Any], value: Any, field: str, message: str) -> None:
    data = report_to_json(_report())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
        report_from_json(data)
    assert caught.value.field == field


def test_missing_fields_and_wrong_shapes_are_named() -> None:
    data = report_to_json(_report())
    del data["view"]["top_accounts"][0]["followers"]
    with pytest.raises(InvalidInput, match="missing") as caught:
        report_from_json(data)
    assert caught.value.field == "view.top_accounts[0].followers"
    with pytest.raises(InvalidInput, match="an object"):
        report_from_json([1, 2])


_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_counts = st.integers(min_value=0, max_value=10**12)
_names = st.text(max_size=20)
_floats = st.floats(allow_nan=False, allow_infinity=False)


def _dataclass(cls: type, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cls, **fields)


_views = _dataclass(
    CampaignView,
    tag=_names,
    start=_times,
    end=_times,
    bucket=st.sampled_from(["hour", "day"]),
    mentions=_counts,
    authors=_counts,
    reach=_counts,
    unique_reach=_counts,
    positive=_counts,
    neutral=_counts,
    negative=_counts,
    buckets=st.lists(
        _dataclass(
            Bucket, start=_times, mentions=_counts, authors=_counts,
            positive=_counts, neutral=_counts, negative=_counts,
        ),
        max_size=4,
    ).map(tuple),
    languages=st.lists(st.tuples(_names, _counts), max_size=3).map(tuple),
    channels=st.lists(st.tuples(_names, _counts), max_size=3).map(tuple),
    top_accounts=st.lists(
        _dataclass(AccountActivity, channel=_names, author=_names, mentions=_counts, followers=_counts),
        max_size=3,
    ).map(tuple),
)

_reports = _dataclass(
    CampaignReport,
    tag=_names,
    start=_times,
    end=_times,
    generated_at=_times,
    metrics_version=_names,
    view=_views,
    growth=st.lists(
        _dataclass(
            GrowthRow,
            channel=_names,
            start_followers=st.none() | st.integers(),
            end_followers=st.none() | st.integers(),
            delta=st.none() | st.integers(),
            percent=st.none() | _floats,
        ),
        max_size=3,
    ).map(tuple),
    follower_series=st.dictionaries(
        _names, st.lists(st.tuples(_times, st.integers()), max_size=3).map(tuple), max_size=3
    ),
    sentiment=st.lists(st.tuples(_times, _counts, _counts, _counts), max_size=3).map(tuple),
    top_posts=st.lists(
        _dataclass(
            TopPost,
            channel=_names,
            post_id=_names,
            text=st.text(max_size=200),
            url=st.none() | _names,
            engagement=st.integers(),
            rate=st.none() | _floats,
        ),
        max_size=3,
    ).map(tuple),
    influence=st.lists(
        _dataclass(
            InfluenceRow, channel=_names, account=_names, score=st.integers(1, 100), followers=_counts
        ),
        max_size=3,
    ).map(tuple),
    best_times=st.lists(
        _dataclass(
            BestTimeRow,
            channel=_names,
            weekday=st.integers(0, 6),
            hour=st.integers(0, 23),
            posts=_counts,
            score=_floats,
        ),
        max_size=3,
    ).map(tuple),
    share_of_voice=st.lists(st.tuples(_names, _counts, _floats), max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_reports)
def test_json_round_trip_is_exact(report: CampaignReport) -> None:
    text = json.dumps(report_to_json(report), allow_nan=False)
    back = report_from_json(json.loads(text))
    assert back == report
    assert report_to_json(back) == report_to_json(report)


# ------------------------------------------------------------------------ HTML


def test_html_report_has_the_figures_tables_and_charts() -> None:
    html = _html()
    assert '<div class="value" id="mentions">267</div>' in html
    assert '<div class="value" id="authors">1,234</div>' in html
    assert '<div class="value" id="reach">987,654</div>' in html
    assert '<div class="value" id="unique-reach">456,789</div>' in html
    assert "Décollage réussi ! Allez Thomas 🚀" in html
    assert "+51.0%" in html
    assert "+510" in html
    assert "Proxima influence score (v1)" in html
    assert "@cnes@mastodon.example" in html
    assert "Wednesday 18:00–19:00" in html
    assert "3.1%" in html  # the slot's smoothed engagement rate
    assert "4.2%" in html  # the top post's engagement rate
    assert "60.0%" in html  # share of voice
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', html)
    assert len(images) == 3
    for encoded, alt in images:
        assert _png_size(base64.b64decode(encoded)) == (800, 400)
        assert len(alt) > 20
    # Self-contained: nothing is fetched, the only link is the top post's.
    assert re.findall(r'(?:src|href)="(?!data:image/png;base64,)([^"]*)"', html) == [
        "https://mastodon.example/@crew/1"
    ]


def test_html_escapes_hostile_tags_texts_and_links() -> None:
    html = render_html(_report(tag=HOSTILE, text=f"nice {HOSTILE} post"))
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert "javascript:alert(1)" in html  # shown as text, not as a link
    assert 'href="https://mastodon.example/@crew/1"' in html


def test_html_of_an_empty_campaign_says_so() -> None:
    report = replace(
        _report(),
        view=replace(_view(), mentions=0, authors=0, reach=0, unique_reach=0, positive=0, neutral=0,
                     negative=0, buckets=(), languages=(), channels=(), top_accounts=()),
        growth=(), follower_series={}, sentiment=(), top_posts=(), influence=(), best_times=(),
        share_of_voice=(),
    )
    html = render_html(report)
    assert "No mention in this window." in html
    assert "No post published in this window." in html
    assert len(re.findall(r"<img ", html)) == 3


# ------------------------------------------------------------------------ PDF


def test_pdf_report_is_a4_contains_the_tag_and_is_reproducible() -> None:
    pdf = render_pdf(_report(), compress=False)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert b"(Campaign report: #allezthomas) Tj" in pdf
    assert b"/MediaBox [ 0 0 595.2756 841.8898 ]" in pdf
    # Three charts, drawn once each (their opaque alpha channel is one shared mask image).
    assert pdf.count(b"/ColorSpace /DeviceRGB") == 3
    assert pdf.count(b" Do\n") == 3
    assert b"(Proxima influence score \\(v1\\)) Tj" in pdf
    assert render_pdf(_report(), compress=False) == pdf


def test_pdf_keeps_hostile_text_as_text() -> None:
    pdf = render_pdf(_report(tag=HOSTILE, text=f"nice {HOSTILE} post"), compress=False)
    assert pdf.startswith(b"%PDF-")
    assert b"(script) Tj" in pdf
    assert b"(alert\\('x'\\)) Tj" in pdf


# ------------------------------------------------------------------------ commands


class _Ground(BaseHTTPRequestHandler):
    """The analytics routes of the ground service, answering from fixed data."""

    report_json: ClassVar[dict[str, Any]] = {}
    requests: ClassVar[list[tuple[str, str, dict[str, list[str]], str | None]]] = []

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self) -> tuple[str, dict[str, list[str]]]:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.requests.append((self.command, url.path, query, self.headers.get("Authorization")))
        return url.path, query

    def do_GET(self) -> None:
        path, query = self._record()
        if path == "/api/analytics/report":
            if query.get("campaign") == ["unknown"]:
                self._answer(404, b'{"error": "no campaign unknown"}', "application/json")
                return
            self._answer(200, json.dumps(self.report_json).encode(), "application/json")
        elif path == "/api/analytics/export":
            self._answer(200, b"channel,at,followers\nmastodon,2026-03-14T00:00:00Z,1000\n", "text/csv")
        else:
            self._answer(404, b'{"error": "not found"}', "application/json")

    def do_POST(self) -> None:
        self._record()
        body = {"followers": 2, "posts": 5, "mentions": {"mastodon": 12, "bluesky": 3}}
        self._answer(200, json.dumps(body).encode(), "application/json")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the recorded requests instead."""


@pytest.fixture
def ground() -> Iterator[str]:
    _Ground.report_json = report_to_json(_report())
    _Ground.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ground)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def cli() -> click.Group:
    return main


def _run(cli: click.Group, tmp_path: Path, *args: str) -> Any:
    """Run a command in a new empty directory; its output and the files it wrote there."""
    work = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        result = CliRunner().invoke(cli, list(args), env={"PROXIMA_TOKEN": "t0ken"}, catch_exceptions=False)
    return result, {p.name: p.read_bytes() for p in work.iterdir()}


def test_report_command_writes_html_by_default(cli: click.Group, ground: str, tmp_path: Path) -> None:
    result, files = _run(
        cli, tmp_path, "report", "--campaign", "#AllezThomas", "--from", "2026-03-14", "--to",
        "2026-03-14T08:00:00Z", "--server", ground,
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "report-allezthomas-2026-03-14.html"
    html = files["report-allezthomas-2026-03-14.html"].decode()
    assert html == _html()  # the report read back from the server renders as the original
    method, path, query, auth = _Ground.requests[0]
    assert (method, path, auth) == ("GET", "/api/analytics/report", "Bearer t0ken")
    assert query == {
        "campaign": ["allezthomas"], "from": ["2026-03-14T00:00:00Z"], "to": ["2026-03-14T08:00:00Z"],
        "bucket": ["hour"],
    }


def test_report_command_writes_pdf_and_json(cli: click.Group, ground: str, tmp_path: Path) -> None:
    result, files = _run(
        cli, tmp_path, "report", "--campaign", "allezthomas", "--from", "2026-03-01T09:30+01:00",
        "--to", "2026-03-20", "--pdf", "--output", "out.pdf", "--json", "--server", ground,
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["path"] == "out.pdf"
    assert out["format"] == "pdf"
    assert report_from_json(out["report"]) == _report()
    assert files["out.pdf"].startswith(b"%PDF-")
    assert _Ground.requests[0][2]["bucket"] == ["day"]
    assert _Ground.requests[0][2]["from"] == ["2026-03-01T08:30:00Z"]


def test_report_command_failures_are_one_line(cli: click.Group, ground: str, tmp_path: Path) -> None:
    result, _ = _run(
        cli, tmp_path, "report", "--campaign", "unknown", "--from", "2026-03-14", "--to", "2026-03-15",
        "--server", ground,
    )
    assert result.exit_code == 1
    assert result.output.strip() == "error: no campaign unknown"
    result, _ = _run(
        cli, tmp_path, "report", "--campaign", "x", "--from", "2026-03-15", "--to", "2026-03-14",
        "--server", ground,
    )
    assert result.exit_code == 1
    assert "--to: 2026-03-14T00:00:00Z is not after --from" in result.output
    _Ground.report_json = {**report_to_json(_report()), "view": {}}
    result, files = _run(
        cli, tmp_path, "report", "--campaign", "x", "--from", "2026-03-14", "--to", "2026-03-15",
        "--server", ground,
    )
    assert result.exit_code == 1
    assert "error: view.tag: missing" in result.output
    assert files == {}


def test_analytics_collect_and_export(cli: click.Group, ground: str, tmp_path: Path) -> None:
    result, _ = _run(cli, tmp_path, "analytics", "collect", "--server", ground)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "followers: 2", "posts: 5", "mentions:", "  mastodon: 12", "  bluesky: 3"
    ]
    assert _Ground.requests[-1][:2] == ("POST", "/api/analytics/collect")
    result, files = _run(
        cli, tmp_path, "analytics", "export", "--kind", "followers", "--from", "2026-03-14", "--to",
        "2026-03-15", "--output", "f.csv", "--server", ground,
    )
    assert result.exit_code == 0, result.output
    assert files["f.csv"].startswith(b"channel,at,followers\n")
    assert _Ground.requests[-1][2] == {
        "kind": ["followers"], "from": ["2026-03-14T00:00:00Z"], "to": ["2026-03-15T00:00:00Z"],
        "format": ["csv"],
    }
    result, _ = _run(
        cli, tmp_path, "analytics", "export", "--kind", "mentions", "--from", "2026-03-14", "--to",
        "2026-03-15", "--format", "json", "--server", ground,
    )
    assert result.exit_code == 0
    assert result.output.endswith("mastodon,2026-03-14T00:00:00Z,1000\n")


def test_command_line_times_and_file_names() -> None:
    assert parse_time("2026-03-14", "--from") == T0
    assert parse_time("2026-03-14T02:00+02:00", "--from") == T0
    assert parse_time("2026-03-14T00:00:00Z", "--from").tzinfo == UTC
    with pytest.raises(InvalidInput, match="not an ISO-8601") as caught:
        parse_time("14/03/2026", "--from")
    assert caught.value.field == "--from"
    assert default_report_name("allezthomas", T0, "pdf") == "report-allezthomas-2026-03-14.pdf"
    later = datetime(2026, 3, 14, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    assert default_report_name("été/../x", later, "html") == "report-t_x-2026-03-14T0830Z.html"
