"""Charts of audience and listening figures, as PNG or SVG bytes.

Drawn with matplotlib's Agg canvas on a :class:`~matplotlib.figure.Figure` made here, never
through ``pyplot``: no global figure state, so charts can be drawn from several threads at once
(the console and a report being rendered together). Output is deterministic: a fixed size and
resolution, no creation date in the file's metadata, and a fixed salt for SVG element ids, so the
same figures always give the same bytes (reports can be compared and cached). Text uses DejaVu
Sans, which matplotlib ships and which has every French accent. Times are drawn in UTC.
"""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from proxima.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy.typing as npt
    from matplotlib.axes import Axes

    from proxima.analytics.model import CampaignView, PostSample

__all__ = [
    "ChartFormat",
    "campaign_chart",
    "growth_chart",
    "post_life_chart",
    "sentiment_chart",
]

ChartFormat = Literal["png", "svg"]

WIDTH_IN: Final = 8.0
HEIGHT_IN: Final = 4.0
DPI: Final = 100
FONT: Final = "DejaVu Sans"
NO_DATA: Final = "no data"

POSITIVE_COLOUR: Final = "#2e7d32"
NEUTRAL_COLOUR: Final = "#9e9e9e"
NEGATIVE_COLOUR: Final = "#c62828"
BAR_COLOUR: Final = "#1565c0"
LINE_COLOUR: Final = "#ef6c00"

# SVG element ids are hashes salted with this rcParam, a random UUID when unset: set once here,
# never per call, so that drawing stays free of shared mutable state.
if matplotlib.rcParams["svg.hashsalt"] is None:
    matplotlib.rcParams["svg.hashsalt"] = "proxima-analytics"

_METADATA: Final[dict[str, dict[str, str | None]]] = {
    "png": {"Software": "Proxima"},
    "svg": {"Date": None, "Creator": "Proxima"},
}


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _render(fig: Figure, fmt: ChartFormat) -> bytes:
    if fmt not in _METADATA:
        raise InvalidInput(f"chart format {fmt!r} is not png or svg", field="fmt")
    out = io.BytesIO()
    fig.savefig(out, format=fmt, dpi=DPI, metadata=_METADATA[fmt])
    return out.getvalue()


def _no_data(ax: Axes) -> None:
    ax.text(
        0.5, 0.5, NO_DATA, transform=ax.transAxes, ha="center", va="center",
        fontsize=14, color="#757575", family=FONT,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _time_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_xlabel("time (UTC)", family=FONT)


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput(f"{moment.isoformat()} has no time zone (UTC expected)", field=what)
    return moment.astimezone(UTC)


def _times(moments: Sequence[datetime]) -> npt.NDArray[np.datetime64]:
    """UTC instants as naive ``datetime64`` values, which matplotlib draws on a date axis."""
    return np.array([m.astimezone(UTC).replace(tzinfo=None) for m in moments], dtype="datetime64[us]")


def _title(ax: Axes, text: str) -> None:
    ax.set_title(text, family=FONT, fontsize=12)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def growth_chart(
    series: Mapping[str, Sequence[tuple[datetime, int]]], *, title: str, fmt: ChartFormat = "png"
) -> bytes:
    """Followers per network over time: one line per channel, channels in name order."""
    fig, ax = _figure()
    _title(ax, title)
    drawn = False
    for channel in sorted(series):
        points = sorted((_utc(at, f"series[{channel}]"), n) for at, n in series[channel])
        if not points:
            continue
        ax.plot(
            _times([at for at, _ in points]), [n for _, n in points],
            marker="o", markersize=3, linewidth=1.5, label=channel,
        )
        drawn = True
    if drawn:
        _time_axis(ax)
        ax.set_ylabel("followers", family=FONT)
        ax.grid(visible=True, alpha=0.3)
        fig.legend(loc="outside right upper", prop={"family": FONT})
    else:
        _no_data(ax)
    return _render(fig, fmt)


def campaign_chart(view: CampaignView, *, fmt: ChartFormat = "png") -> bytes:
    """A campaign's window: mentions per bucket as bars, distinct authors per bucket as a line."""
    fig, ax = _figure()
    _title(ax, f"#{view.tag}: {_stamp(view.start)} to {_stamp(view.end)} UTC")
    if not view.buckets or view.mentions == 0:
        _no_data(ax)
        return _render(fig, fmt)
    step = timedelta(hours=1) if view.bucket == "hour" else timedelta(days=1)
    starts = [_utc(b.start, "view.buckets") for b in view.buckets]
    # Matplotlib's date unit is the day; bars fill 80% of their bucket, from its start.
    width = step / timedelta(days=1) * 0.8
    ax.bar(
        _times(starts), [b.mentions for b in view.buckets], width=width, align="edge",
        color=BAR_COLOUR, label=f"mentions per {view.bucket}",
    )
    ax.set_ylabel(f"mentions per {view.bucket}", family=FONT)
    ax.grid(visible=True, axis="y", alpha=0.3)
    authors = ax.twinx()
    half = step / 2
    authors.plot(
        _times([at + half for at in starts]), [b.authors for b in view.buckets],
        color=LINE_COLOUR, marker="o", markersize=3, linewidth=1.5, label="distinct authors",
    )
    authors.set_ylabel("distinct authors", family=FONT)
    authors.set_ylim(bottom=0)
    _time_axis(ax)
    handles = [*ax.get_legend_handles_labels()[0], *authors.get_legend_handles_labels()[0]]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, prop={"family": FONT})
    return _render(fig, fmt)


COLLECTION_ROUND: Final = timedelta(minutes=1)
"""Samples of one channel this close together were taken by one collection."""

_COUNTERS: Final = (("likes", "-"), ("reposts", "--"), ("replies", ":"), ("quotes", "-."))


def _post_life(samples: Sequence[PostSample]) -> dict[str, list[tuple[float, dict[str, int | None]]]]:
    """Per channel, at each sample time: hours since the channel first published the post, and
    each counter summed over the post's messages.

    Each message counts with its latest sample at or before that time, so a message missing
    from one collection does not make the sum dip; samples less than :data:`COLLECTION_ROUND`
    after the first of a round are one point (the messages of a thread are sampled one after
    the other, seconds apart), drawn at the round's last sample.
    """
    curves: dict[str, list[tuple[float, dict[str, int | None]]]] = {}
    for channel in sorted({s.channel for s in samples}):
        mine = sorted(
            (s for s in samples if s.channel == channel),
            key=lambda s: (_utc(s.at, "samples.at"), s.remote_id),
        )
        published = min(_utc(s.published_at, "samples.published_at") for s in mine)
        current: dict[str, PostSample] = {}
        points: list[tuple[float, dict[str, int | None]]] = []
        round_start: datetime | None = None
        for i, sample in enumerate(mine):
            current[sample.remote_id] = sample
            if round_start is None:
                round_start = sample.at
            if i + 1 < len(mine) and mine[i + 1].at - round_start < COLLECTION_ROUND:
                continue
            round_start = None
            quotes = [s.quotes for s in current.values() if s.quotes is not None]
            totals: dict[str, int | None] = {
                "likes": sum(s.likes for s in current.values()),
                "reposts": sum(s.reposts for s in current.values()),
                "replies": sum(s.replies for s in current.values()),
                "quotes": sum(quotes) if quotes else None,
            }
            points.append(((_utc(sample.at, "samples.at") - published) / timedelta(hours=1), totals))
        curves[channel] = points
    return curves


def post_life_chart(samples: Sequence[PostSample], *, fmt: ChartFormat = "png") -> bytes:
    """A post's life: likes, reposts, replies (and quotes where the network gives them) against
    hours since publication, one colour per channel, one line style per counter."""
    fig, ax = _figure()
    _title(ax, "Post life")
    curves = _post_life(samples)
    if not curves:
        _no_data(ax)
        return _render(fig, fmt)
    colours = matplotlib.color_sequences["tab10"]
    for index, (channel, points) in enumerate(curves.items()):
        colour = colours[index % len(colours)]
        for counter, style in _COUNTERS:
            given = [(h, value) for h, totals in points if (value := totals[counter]) is not None]
            xs = [h for h, _ in given]
            ys = [value for _, value in given]
            if xs:
                ax.plot(
                    xs, ys, linestyle=style, color=colour, marker="o", markersize=2.5,
                    linewidth=1.4, label=f"{channel} {counter}",
                )
    ax.set_xlabel("hours since publication (sampled in UTC)", family=FONT)
    ax.set_ylabel("count", family=FONT)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(visible=True, alpha=0.3)
    fig.legend(loc="outside right upper", prop={"family": FONT, "size": 8})
    return _render(fig, fmt)


def sentiment_chart(rows: Sequence[tuple[datetime, int, int, int]], *, fmt: ChartFormat = "png") -> bytes:
    """Share of positive, neutral and negative mentions per bucket, stacked to 100%.

    ``rows`` are ``(bucket start, positive, neutral, negative)``; buckets without mentions are
    left blank (a share of nothing is undefined). Bars span to the next bucket's start.
    """
    fig, ax = _figure()
    _title(ax, "Sentiment of mentions")
    ordered = sorted((_utc(at, "rows"), p, n, g) for at, p, n, g in rows)
    for at, *counts in ordered:
        if min(counts) < 0:
            raise InvalidInput(f"negative count in the sentiment row of {at.isoformat()}", field="rows")
    times = [row[0] for row in ordered]
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    step = min(gaps, default=timedelta(days=1))
    shown = [(at, p, n, g) for at, p, n, g in ordered if p + n + g > 0]
    if not shown:
        _no_data(ax)
        return _render(fig, fmt)
    when = [at for at, *_ in shown]
    shares = [[100.0 * c / (p + n + g) for c in (p, n, g)] for _, p, n, g in shown]
    width = step / timedelta(days=1) * 0.9
    bottom = [0.0] * len(shown)
    for column, (label, colour) in enumerate(
        (("positive", POSITIVE_COLOUR), ("neutral", NEUTRAL_COLOUR), ("negative", NEGATIVE_COLOUR))
    ):
        heights = [share[column] for share in shares]
        ax.bar(_times(when), heights, width=width, bottom=bottom, align="edge", color=colour, label=label)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of mentions (%)", family=FONT)
    _time_axis(ax)
    fig.legend(loc="outside lower center", ncols=3, prop={"family": FONT})
    return _render(fig, fmt)
