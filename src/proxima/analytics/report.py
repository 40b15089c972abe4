"""A campaign report: what a communication head forwards after a campaign, as HTML or PDF.

:class:`CampaignReport` gathers the figures the ground service computed for one tag over one
window (its :class:`~proxima.analytics.model.CampaignView`, follower growth, sentiment over time,
top posts, influence scores, best times to post, share of voice). The service sends it as JSON
(:func:`report_to_json`); ``proxima report`` reads it back (:func:`report_from_json`, which
names the first wrong field) and renders it here, on the reader's machine:

- :func:`render_html`: one self-contained file (charts inlined as PNG, styles inline, nothing
  fetched), safe to open whatever the posts and mentions say (every text is escaped);
- :func:`render_pdf`: an A4 document with the same figures, charts and tables.

Both are deterministic: the same report gives the same bytes.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from xml.sax.saxutils import escape

import jinja2

from proxima.analytics import charts
from proxima.analytics.model import AccountActivity, Bucket, CampaignView
from proxima.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "WEEKDAYS",
    "BestTimeRow",
    "CampaignReport",
    "GrowthRow",
    "InfluenceRow",
    "TopPost",
    "render_html",
    "render_pdf",
    "report_from_json",
    "report_to_json",
]

TEMPLATES_DIR: Final = Path(__file__).parent / "templates"

WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
"""Names of :attr:`BestTimeRow.weekday` (0 is Monday, as in Python)."""


@dataclass(frozen=True, slots=True)
class GrowthRow:
    """Followers of one channel at the window's start and end; ``None`` where no sample says."""

    channel: str
    start_followers: int | None
    end_followers: int | None
    delta: int | None
    percent: float | None
    """Growth in percent of the start (``51.0`` for +51%); None when the start is unknown or 0."""


@dataclass(frozen=True, slots=True)
class TopPost:
    """One of the mission's posts that engaged most in the window."""

    channel: str
    post_id: str
    text: str
    url: str | None
    engagement: int
    rate: float | None
    """Engagement rate as a fraction (0.05 is 5%); None when the denominator is unknown."""


@dataclass(frozen=True, slots=True)
class InfluenceRow:
    """An account and its Proxima influence score (1 to 100) among the accounts scored."""

    channel: str
    account: str
    score: int
    followers: int


@dataclass(frozen=True, slots=True)
class BestTimeRow:
    """A good slot to post on a channel: ``weekday`` 0 is Monday, ``hour`` 0-23 in the editorial
    calendar's time zone, ``posts`` the posts it is based on, ``score`` the slot's engagement rate
    smoothed toward the channel's mean (a fraction: 0.034 is 3.4%)."""

    channel: str
    weekday: int
    hour: int
    posts: int
    score: float


@dataclass(frozen=True, slots=True)
class CampaignReport:
    """Everything a campaign report shows; every datetime is timezone-aware UTC.

    ``sentiment`` rows are ``(bucket start, positive, neutral, negative)`` counts;
    ``share_of_voice`` rows are ``(account, mentions, share)`` with ``share`` a fraction of 1.
    """

    tag: str
    start: datetime
    end: datetime
    generated_at: datetime
    metrics_version: str
    view: CampaignView
    growth: tuple[GrowthRow, ...]
    follower_series: Mapping[str, tuple[tuple[datetime, int], ...]]
    sentiment: tuple[tuple[datetime, int, int, int], ...]
    top_posts: tuple[TopPost, ...]
    influence: tuple[InfluenceRow, ...]
    best_times: tuple[BestTimeRow, ...]
    share_of_voice: tuple[tuple[str, int, float], ...]


# ------------------------------------------------------------------------ JSON


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _bucket_json(b: Bucket) -> dict[str, Any]:
    return {
        "start": _time(b.start), "mentions": b.mentions, "authors": b.authors,
        "positive": b.positive, "neutral": b.neutral, "negative": b.negative,
    }


def _view_json(v: CampaignView) -> dict[str, Any]:
    return {
        "tag": v.tag, "start": _time(v.start), "end": _time(v.end), "bucket": v.bucket,
        "mentions": v.mentions, "authors": v.authors, "reach": v.reach, "unique_reach": v.unique_reach,
        "positive": v.positive, "neutral": v.neutral, "negative": v.negative,
        "buckets": [_bucket_json(b) for b in v.buckets],
        "languages": [[lang, n] for lang, n in v.languages],
        "channels": [[channel, n] for channel, n in v.channels],
        "top_accounts": [
            {"channel": a.channel, "author": a.author, "mentions": a.mentions, "followers": a.followers}
            for a in v.top_accounts
        ],
    }


def report_to_json(report: CampaignReport) -> dict[str, Any]:
    """The report as JSON-ready values (times as ISO-8601 UTC with ``Z``); the API's answer."""
    return {
        "tag": report.tag,
        "start": _time(report.start),
        "end": _time(report.end),
        "generated_at": _time(report.generated_at),
        "metrics_version": report.metrics_version,
        "view": _view_json(report.view),
        "growth": [
            {"channel": g.channel, "start_followers": g.start_followers, "end_followers": g.end_followers,
             "delta": g.delta, "percent": g.percent}
            for g in report.growth
        ],
        "follower_series": {
            channel: [[_time(at), n] for at, n in points]
            for channel, points in report.follower_series.items()
        },
        "sentiment": [[_time(at), p, n, g] for at, p, n, g in report.sentiment],
        "top_posts": [
            {"channel": t.channel, "post_id": t.post_id, "text": t.text, "url": t.url,
             "engagement": t.engagement, "rate": t.rate}
            for t in report.top_posts
        ],
        "influence": [
            {"channel": i.channel, "account": i.account, "score": i.score, "followers": i.followers}
            for i in report.influence
        ],
        "best_times": [
            {"channel": b.channel, "weekday": b.weekday, "hour": b.hour, "posts": b.posts, "score": b.score}
            for b in report.best_times
        ],
        "share_of_voice": [
            {"account": account, "mentions": n, "share": share} for account, n, share in report.share_of_voice
        ],
    }


class _Reader:
    """Typed access to parsed JSON that names the wrong field (``view.buckets[2].start``)."""

    def __init__(self, value: Any, path: str) -> None:
        self.value = value
        self.path = path

    def _wrong(self, expected: str, path: str | None = None, value: Any = None) -> InvalidInput:
        shown = self.value if path is None else value
        return InvalidInput(f"expected {expected}, got {_describe(shown)}", field=path or self.path)

    def _field(self, key: str) -> _Reader:
        if not isinstance(self.value, dict):
            raise self._wrong("an object")
        path = f"{self.path}.{key}" if self.path else key
        if key not in self.value:
            raise InvalidInput("missing", field=path)
        return _Reader(self.value[key], path)

    def __getitem__(self, key: str) -> _Reader:
        return self._field(key)

    def items(self) -> list[_Reader]:
        """The elements of a JSON array."""
        if not isinstance(self.value, list):
            raise self._wrong("an array")
        return [_Reader(v, f"{self.path}[{i}]") for i, v in enumerate(self.value)]

    def entries(self) -> list[tuple[str, _Reader]]:
        """The members of a JSON object, in order."""
        if not isinstance(self.value, dict):
            raise self._wrong("an object")
        return [(str(k), _Reader(v, f"{self.path}.{k}")) for k, v in self.value.items()]

    def tuple_of(self, size: int) -> list[_Reader]:
        """The elements of an array of exactly ``size`` elements."""
        items = self.items()
        if len(items) != size:
            raise self._wrong(f"an array of {size} elements")
        return items

    def text(self) -> str:
        if not isinstance(self.value, str):
            raise self._wrong("a string")
        return self.value

    def opt_text(self) -> str | None:
        return None if self.value is None else self.text()

    def integer(self) -> int:
        value = self.value
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self._wrong("an integer")

    def count(self) -> int:
        n = self.integer()
        if n < 0:
            raise self._wrong("a count (0 or more)")
        return n

    def opt_integer(self) -> int | None:
        return None if self.value is None else self.integer()

    def number(self) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise self._wrong("a number")
        if not math.isfinite(self.value):
            raise self._wrong("a finite number")
        return float(self.value)

    def opt_number(self) -> float | None:
        return None if self.value is None else self.number()

    def time(self) -> datetime:
        text = self.text()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self._wrong("an ISO-8601 time") from None
        if moment.tzinfo is None:
            raise self._wrong("an ISO-8601 time with its offset (Z for UTC)")
        return moment.astimezone(UTC)

    def choice(self, allowed: tuple[str, ...]) -> str:
        text = self.text()
        if text not in allowed:
            raise self._wrong(" or ".join(repr(a) for a in allowed))
        return text


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _view_from(r: _Reader) -> CampaignView:
    return CampaignView(
        tag=r["tag"].text(),
        start=r["start"].time(),
        end=r["end"].time(),
        bucket=cast("Literal['hour', 'day']", r["bucket"].choice(("hour", "day"))),
        mentions=r["mentions"].count(),
        authors=r["authors"].count(),
        reach=r["reach"].count(),
        unique_reach=r["unique_reach"].count(),
        positive=r["positive"].count(),
        neutral=r["neutral"].count(),
        negative=r["negative"].count(),
        buckets=tuple(
            Bucket(
                start=b["start"].time(), mentions=b["mentions"].count(), authors=b["authors"].count(),
                positive=b["positive"].count(), neutral=b["neutral"].count(), negative=b["negative"].count(),
            )
            for b in r["buckets"].items()
        ),
        languages=tuple((p[0].text(), p[1].count()) for p in (x.tuple_of(2) for x in r["languages"].items())),
        channels=tuple((p[0].text(), p[1].count()) for p in (x.tuple_of(2) for x in r["channels"].items())),
        top_accounts=tuple(
            AccountActivity(
                channel=a["channel"].text(), author=a["author"].text(),
                mentions=a["mentions"].count(), followers=a["followers"].count(),
            )
            for a in r["top_accounts"].items()
        ),
    )


def report_from_json(data: Any) -> CampaignReport:
    """The report :func:`report_to_json` gave (``data`` as parsed by :func:`json.loads`).

    Raises :class:`~proxima.errors.InvalidInput` whose ``field`` names the first wrong or missing
    field, so a server and client of different versions fail with a clear message.
    """
    r = _Reader(data, "")
    return CampaignReport(
        tag=r["tag"].text(),
        start=r["start"].time(),
        end=r["end"].time(),
        generated_at=r["generated_at"].time(),
        metrics_version=r["metrics_version"].text(),
        view=_view_from(r["view"]),
        growth=tuple(
            GrowthRow(
                channel=g["channel"].text(), start_followers=g["start_followers"].opt_integer(),
                end_followers=g["end_followers"].opt_integer(), delta=g["delta"].opt_integer(),
                percent=g["percent"].opt_number(),
            )
            for g in r["growth"].items()
        ),
        follower_series={
            channel: tuple((p[0].time(), p[1].integer()) for p in (x.tuple_of(2) for x in points.items()))
            for channel, points in r["follower_series"].entries()
        },
        sentiment=tuple(
            (row[0].time(), row[1].count(), row[2].count(), row[3].count())
            for row in (x.tuple_of(4) for x in r["sentiment"].items())
        ),
        top_posts=tuple(
            TopPost(
                channel=t["channel"].text(), post_id=t["post_id"].text(), text=t["text"].text(),
                url=t["url"].opt_text(), engagement=t["engagement"].integer(), rate=t["rate"].opt_number(),
            )
            for t in r["top_posts"].items()
        ),
        influence=tuple(
            InfluenceRow(
                channel=i["channel"].text(), account=i["account"].text(),
                score=i["score"].integer(), followers=i["followers"].count(),
            )
            for i in r["influence"].items()
        ),
        best_times=tuple(
            BestTimeRow(
                channel=b["channel"].text(), weekday=_weekday(b["weekday"]), hour=_hour(b["hour"]),
                posts=b["posts"].count(), score=b["score"].number(),
            )
            for b in r["best_times"].items()
        ),
        share_of_voice=tuple(
            (s["account"].text(), s["mentions"].count(), s["share"].number())
            for s in r["share_of_voice"].items()
        ),
    )


def _weekday(r: _Reader) -> int:
    day = r.integer()
    if not 0 <= day <= 6:
        raise InvalidInput(f"expected a weekday 0 (Monday) to 6, got {day}", field=r.path)
    return day


def _hour(r: _Reader) -> int:
    hour = r.integer()
    if not 0 <= hour <= 23:
        raise InvalidInput(f"expected an hour 0 to 23, got {hour}", field=r.path)
    return hour


# ------------------------------------------------------------------------ shared by HTML and PDF


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}"


def _signed(value: int | None) -> str:
    return "–" if value is None else f"{value:+,}"


def _percent(value: float | None, *, signed: bool = False) -> str:
    """``value`` already in percent (``51.0`` → ``+51.0%``)."""
    if value is None:
        return "–"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def _fraction(value: float | None) -> str:
    """``value`` a fraction of 1 (``0.051`` → ``5.1%``)."""
    return "–" if value is None else f"{100 * value:.1f}%"


def _share(part: int, whole: int) -> str:
    return "–" if whole == 0 else f"{100 * part / whole:.1f}%"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _slot(row: BestTimeRow) -> str:
    return f"{WEEKDAYS[row.weekday]} {row.hour:02d}:00–{(row.hour + 1) % 24:02d}:00"


@dataclass(frozen=True, slots=True)
class _Chart:
    title: str
    alt: str
    png: bytes


def _charts(report: CampaignReport) -> list[_Chart]:
    v = report.view
    series = {channel: tuple(points) for channel, points in report.follower_series.items()}
    channels = ", ".join(sorted(series)) or "no channel"
    return [
        _Chart(
            f"Mentions of #{report.tag}",
            f"Bar chart of mentions of #{report.tag} per {v.bucket} from {_stamp(v.start)} to {_stamp(v.end)}"
            f" ({v.mentions:,} mentions in all), with a line of distinct authors per {v.bucket}"
            f" ({v.authors:,} in all).",
            charts.campaign_chart(v),
        ),
        _Chart(
            "Followers per network",
            f"Line chart of followers over time for {channels}.",
            charts.growth_chart(series, title="Followers per network"),
        ),
        _Chart(
            "Sentiment of mentions",
            "Stacked bar chart of the share of positive, neutral and negative mentions over time"
            f" ({v.positive:,} positive, {v.neutral:,} neutral, {v.negative:,} negative in all).",
            charts.sentiment_chart(report.sentiment),
        ),
    ]


def _key_figures(report: CampaignReport) -> list[tuple[str, str]]:
    v = report.view
    labelled = v.positive + v.neutral + v.negative
    return [
        ("Mentions", _number(v.mentions)),
        ("Distinct authors", _number(v.authors)),
        ("Reach (followers of the author of each mention, summed)", _number(v.reach)),
        ("Unique reach (each author counted once)", _number(v.unique_reach)),
        ("Positive", f"{_number(v.positive)} ({_share(v.positive, labelled)})"),
        ("Neutral", f"{_number(v.neutral)} ({_share(v.neutral, labelled)})"),
        ("Negative", f"{_number(v.negative)} ({_share(v.negative, labelled)})"),
        ("Languages", ", ".join(f"{lang} {n:,}" for lang, n in v.languages) or "–"),
        ("Channels", ", ".join(f"{channel} {n:,}" for channel, n in v.channels) or "–"),
    ]


INFLUENCE_EXPLAINED: Final = (
    "The Proxima influence score ranks the accounts scored from 1 to 100, within that group only. "
    "Four components are put on a logarithmic scale and divided by the group's largest: followers "
    "(weight 0.4), engagement per post (0.3), amplification, that is reposts per post (0.2), and "
    "mentions received (0.1). Their weighted sum is turned into a percentile rank in the group, "
    "and the score is 1 + 99 × that percentile, so 90 means ahead of about 90% of the group and a "
    "lone account scores 50. Full definition in docs/analytics.md, metrics version {version}."
)


def _influence_title(report: CampaignReport) -> str:
    return f"Proxima influence score (v{report.metrics_version})"


# ------------------------------------------------------------------------ HTML


def _web_url(value: object) -> bool:
    """Whether ``value`` may be a link: only http(s), never ``javascript:`` or ``data:``."""
    return isinstance(value, str) and value.lower().startswith(("https://", "http://"))


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    filters: dict[str, Callable[..., str]] = {
        "number": _number, "signed": _signed, "percent": _percent, "fraction": _fraction,
        "stamp": _stamp, "slot": _slot,
    }
    env.filters.update(filters)
    env.tests["web_url"] = _web_url
    return env


def render_html(report: CampaignReport) -> str:
    """The report as one self-contained HTML page (charts as inline PNG, every text escaped)."""
    template = _environment().get_template("report.html")
    images = [
        {"title": c.title, "alt": c.alt, "src": "data:image/png;base64," + base64.b64encode(c.png).decode()}
        for c in _charts(report)
    ]
    labelled = report.view.positive + report.view.neutral + report.view.negative
    return template.render(
        report=report,
        view=report.view,
        figures=_key_figures(report),
        charts=images,
        influence_title=_influence_title(report),
        influence_explained=INFLUENCE_EXPLAINED.format(version=report.metrics_version),
        sentiment_rows=[
            {"label": label, "count": n, "share": _share(n, labelled)}
            for label, n in (
                ("positive", report.view.positive),
                ("neutral", report.view.neutral),
                ("negative", report.view.negative),
            )
        ],
    )


# ------------------------------------------------------------------------ PDF


@functools.cache
def _pdf_fonts() -> tuple[str, str]:
    """DejaVu Sans (shipped with matplotlib) registered with reportlab: French accents, dashes
    and most scripts render, which reportlab's built-in Helvetica cannot promise."""
    import matplotlib
    from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
    from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont("ProximaSans", str(fonts / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont("ProximaSans-Bold", str(fonts / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(
        "ProximaSans", normal="ProximaSans", bold="ProximaSans-Bold",
        italic="ProximaSans", boldItalic="ProximaSans-Bold",
    )
    return "ProximaSans", "ProximaSans-Bold"


def render_pdf(report: CampaignReport, *, compress: bool = True) -> bytes:
    """The report as an A4 PDF: title, key figures, the charts and the tables of the HTML page.

    The document is invariant (no creation date or random id), so the same report gives the
    same bytes; ``compress=False`` leaves page streams readable (for tests and diffing).
    """
    from reportlab.lib import colors  # type: ignore[import-untyped]
    from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
    from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
    from reportlab.lib.units import cm  # type: ignore[import-untyped]
    from reportlab.platypus import (  # type: ignore[import-untyped]
        Image,
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    regular, bold = _pdf_fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=9, leading=12)
    cell = ParagraphStyle("cell", parent=body, fontSize=8, leading=10)
    head = ParagraphStyle("head", parent=cell, fontName=bold)
    h1 = ParagraphStyle("h1", parent=body, fontName=bold, fontSize=18, leading=22, spaceAfter=6)
    h2 = ParagraphStyle(
        "h2", parent=body, fontName=bold, fontSize=12, leading=15, spaceBefore=10, spaceAfter=4
    )
    width = A4[0] - 4 * cm

    def text(value: str, style: Any = body) -> Any:
        return Paragraph(escape(value).replace("\n", "<br/>"), style)

    def table(header: list[str], rows: list[list[str]], widths: list[float] | None = None) -> Any:
        if not rows:
            return text("None in this window.")
        data = [[text(h, head) for h in header], *[[text(c, cell) for c in row] for row in rows]]
        t = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
        t.setStyle(TableStyle([
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3ecf7")),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9e9e9e")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]))
        return t

    v = report.view
    story: list[Any] = [
        text(f"Campaign report: #{report.tag}", h1),
        text(
            f"From {_stamp(report.start)} to {_stamp(report.end)}. Generated {_stamp(report.generated_at)},"
            f" metrics version {report.metrics_version}."
        ),
        text("Key figures", h2),
        table(["Figure", "Value"], [[k, val] for k, val in _key_figures(report)], [width * 0.6, width * 0.4]),
    ]
    for chart in _charts(report):
        image = Image(io.BytesIO(chart.png), width=width, height=width / 2)
        story.append(KeepTogether([text(chart.title, h2), image, text(chart.alt, cell)]))
    story += [
        text("Follower growth per network", h2),
        table(
            ["Channel", "Followers at start", "Followers at end", "Change", "Growth"],
            [[g.channel, _number(g.start_followers), _number(g.end_followers), _signed(g.delta),
              _percent(g.percent, signed=True)] for g in report.growth],
        ),
        text("Top posts", h2),
        table(
            ["Channel", "Post", "Engagement", "Rate"],
            [[t.channel, t.text + (f"\n{t.url}" if t.url else ""), _number(t.engagement), _fraction(t.rate)]
             for t in report.top_posts],
            [width * 0.15, width * 0.55, width * 0.15, width * 0.15],
        ),
        text("Top mentioning accounts", h2),
        table(
            ["Channel", "Account", "Mentions", "Followers"],
            [[a.channel, a.author, _number(a.mentions), _number(a.followers)] for a in v.top_accounts],
        ),
        text(_influence_title(report), h2),
        text(INFLUENCE_EXPLAINED.format(version=report.metrics_version)),
        Spacer(1, 4),
        table(
            ["Channel", "Account", "Score (1-100)", "Followers"],
            [[i.channel, i.account, str(i.score), _number(i.followers)] for i in report.influence],
        ),
        text("Share of voice", h2),
        table(
            ["Account", "Mentions", "Share"],
            [[account, _number(n), _fraction(share)] for account, n, share in report.share_of_voice],
        ),
        text("Best times to post", h2),
        table(
            ["Channel", "Slot (calendar time zone)", "Posts", "Smoothed engagement rate"],
            [[b.channel, _slot(b), _number(b.posts), _fraction(b.score)] for b in report.best_times],
        ),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm, topMargin=2 * cm, bottomMargin=2 * cm,
        title=f"Campaign report #{report.tag}", author="Proxima", subject=f"#{report.tag}",
        creator="Proxima", invariant=1, pageCompression=1 if compress else 0,
    )
    doc.build(story)
    return out.getvalue()
