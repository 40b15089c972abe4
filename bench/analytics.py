"""Social listening at scale: ingest millions of mentions into the analytics store, then query.

Run: ``.venv/bin/python bench/analytics.py [--mentions N] [--batch N] [--repeats N] [--json]``

A synthetic but realistic corpus, generated in columns (numpy, seeded): 30 days of mentions with a
launch-day spike (a fifth of all mentions in the hours around the launch) over a daily rhythm;
300,000 authors whose activity is heavy-tailed (a few write thousands of mentions, most one or
two) and whose followers are log-normal (median about 150, a few in the millions, 10 % unknown);
four channels; 60 % French, 30 % English, the rest other or undeclared; hashtags among
allezthomas, proxima, iss, esa, thomaspesquet, space (0-3 per mention), tracked accounts mentioned
in about a third; about 1 % of the records are collected twice (the store must keep them once).

1. Ingest: the corpus in time order, ``--batch`` rows at a time (default 1,000,000), through
   ``AnalyticsStore.add_mention_columns`` into a file store in a temporary directory. Only those
   calls are timed: generating a batch's columns (Python strings for uris and authors) takes about
   as long as ingesting it and is kept outside the timing, which the printout says. Printed:
   ingest seconds and rows/s against the 60 s target, file size, peak RSS of the process.
2. Dashboard: ``AnalyticsStore.campaign`` for several tags and windows (the launch day by hour,
   an unaligned half day by hour, a week and the whole 30 days by day), each ``--repeats`` times
   (default 20) after one warm-up, on the reopened file; p50 and p99 (nearest rank) in ms against
   the 200 ms target.

Prints machine information and figures; checks nothing (no exit status for missed targets).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchinfo import machine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from proxima.analytics.store import AnalyticsStore

TARGET_INGEST_S = 60.0
TARGET_DASHBOARD_MS = 200.0
START = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30
LAUNCH = START + timedelta(days=9, hours=14, minutes=20)
AUTHORS = 300_000
CHANNELS = np.array(["mastodon", "bluesky", "activitypub", "mastodon-en"], dtype=object)
CHANNEL_HOSTS = ["mastodon.social", "bsky.app", "piaille.fr", "mastodon.online"]
TAG_SETS: list[tuple[str, ...]] = [
    ("allezthomas",),
    ("allezthomas", "proxima"),
    ("allezthomas", "iss", "esa"),
    ("iss",),
    ("esa", "iss"),
    ("proxima",),
    ("thomaspesquet", "allezthomas"),
    ("space",),
    (),
]
TAG_WEIGHTS = [0.22, 0.10, 0.06, 0.16, 0.08, 0.08, 0.08, 0.07, 0.15]
ACCOUNT_SETS: list[tuple[str, ...]] = [
    (),
    ("@thom_astro@mastodon.social",),
    ("@esa@esa.int",),
    ("@thom_astro@mastodon.social", "@esa@esa.int"),
    ("@cnes@mastodon.social",),
]
ACCOUNT_WEIGHTS = [0.66, 0.18, 0.07, 0.04, 0.05]
TEXTS = {
    "fr": [
        "Allez Thomas ! Magnifique décollage ce matin, bravo à toute l'équipe",
        "Quelle émotion de voir la fusée partir, on est tous avec vous",
        "Je n'arrive pas à croire qu'on puisse suivre la station en direct",
        "Retard du lancement encore une fois, c'est décevant",
        "Les photos de la Terre depuis l'ISS sont incroyables",
    ],
    "en": [
        "Amazing launch this morning, go Thomas!",
        "Watching the ISS pass over tonight, absolutely beautiful",
        "Another delay, this is frustrating",
        "Great science coming from the station this week",
    ],
    "de": ["Toller Start heute, viel Erfolg an die Crew"],
}


def _objects(items: list[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


class Corpus:
    """Seeded generator of the synthetic mention columns, batch by batch in time order."""

    def __init__(self, total: int, seed: int = 20261101) -> None:
        self.total = total
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        # Heavy-tailed activity: author rank r writes with weight 1 / (r + 20)^1.1.
        weights = 1.0 / (np.arange(AUTHORS) + 20.0) ** 1.1
        self.author_p = weights / weights.sum()
        self.author_channel = rng.choice(len(CHANNELS), AUTHORS, p=[0.45, 0.3, 0.15, 0.1])
        self.author_names = _objects(
            [f"user{i}@{CHANNEL_HOSTS[c]}" for i, c in enumerate(self.author_channel.tolist())]
        )
        followers = np.exp(rng.normal(5.0, 1.8, AUTHORS)).astype(np.int64)
        followers[rng.random(AUTHORS) < 0.10] = -1
        self.author_followers = followers
        # All timestamps at once (sorted), so batches are consecutive time slices.
        base = rng.random(total) * DAYS * 86_400
        # Daily rhythm: accept-reject, keeping fewer mentions at night (UTC+1 audience).
        hour = ((base / 3600) + 1) % 24
        keep = rng.random(total) < 0.35 + 0.65 * np.sin(np.pi * np.clip(hour - 6, 0, 18) / 18)
        base = np.where(keep, base, rng.random(total) * DAYS * 86_400)
        spike = rng.random(total) < 0.2
        launch_s = (LAUNCH - START).total_seconds()
        base[spike] = launch_s + np.abs(rng.normal(0, 4 * 3600, int(spike.sum()))) - 1800
        base = np.clip(base, 0, DAYS * 86_400 - 1)
        start_us = (START - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        self.ts = np.sort((base * 1e6).astype(np.int64) + start_us)
        self.tag_sets = _objects(TAG_SETS)
        self.account_sets = _objects(ACCOUNT_SETS)
        self.texts = {lang: _objects(t) for lang, t in TEXTS.items()}
        self.made = 0

    def batch(self, n: int) -> dict[str, np.ndarray]:
        """The next ``n`` mentions as columns (about 1 % repeat an earlier record)."""
        rng = self.rng
        lo, hi = self.made, min(self.made + n, self.total)
        n = hi - lo
        ids = np.arange(lo, hi)
        again = (rng.random(n) < 0.01) & (ids > 1000)
        ids[again] -= rng.integers(1, 1000, int(again.sum()))
        author = rng.choice(AUTHORS, n, p=self.author_p)
        chan = self.author_channel[author]
        hosts = [CHANNEL_HOSTS[c] for c in chan.tolist()]
        uris = _objects([f"https://{h}/notes/{i}" for h, i in zip(hosts, ids.tolist(), strict=True)])
        lang_pick = rng.choice(5, n, p=[0.6, 0.3, 0.03, 0.02, 0.05])
        lang = np.array(["fr", "en", "de", "es", None], dtype=object)[lang_pick]
        text = np.empty(n, dtype=object)
        for code, pool in (("fr", "fr"), ("en", "en"), ("de", "de"), ("es", "en"), (None, "fr")):
            mask = lang == code
            text[mask] = self.texts[pool][rng.integers(0, len(self.texts[pool]), int(mask.sum()))]
        sentiment = np.clip(rng.normal(0.25, 0.45, n), -1, 1).round(4)
        kind = np.array(["post", "reply", "quote", "repost"], dtype=object)[
            rng.choice(4, n, p=[0.7, 0.2, 0.05, 0.05])
        ]
        cols: dict[str, np.ndarray] = {
            "channel": CHANNELS[chan],
            "uri": uris,
            "author": self.author_names[author],
            "at": self.ts[lo:hi],
            "text": text,
            "sentiment": sentiment,
            "lang": lang,
            "lang_detected": rng.random(n) < 0.3,
            "author_followers": self.author_followers[author],
            "tags": self.tag_sets[rng.choice(len(TAG_SETS), n, p=TAG_WEIGHTS)],
            "accounts": self.account_sets[rng.choice(len(ACCOUNT_SETS), n, p=ACCOUNT_WEIGHTS)],
            "kind": kind,
            "likes": rng.geometric(0.3, n) - 1,
            "reposts": rng.geometric(0.6, n) - 1,
            "replies": rng.geometric(0.7, n) - 1,
        }
        self.made = hi
        return cols


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(np.ceil(p / 100 * len(ordered))) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mentions", type=int, default=10_000_000)
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {"machine": machine(), "mentions_generated": args.mentions}
    info = out["machine"]
    if not args.json:
        print(
            f"machine: {info['cpu_model']}, {info['nproc']} cores, "
            f"Python {info['python']}, {info['platform']}"
        )
    with tempfile.TemporaryDirectory(prefix="proxima-bench-analytics-") as tmp:
        path = Path(tmp) / "analytics.duckdb"
        t = time.perf_counter()
        corpus = Corpus(args.mentions)
        gen_s = time.perf_counter() - t
        ingest_s = 0.0
        stored = 0
        with AnalyticsStore(path, threads=os.cpu_count() or 1) as store:
            while corpus.made < corpus.total:
                t = time.perf_counter()
                cols = corpus.batch(args.batch)
                gen_s += time.perf_counter() - t
                t = time.perf_counter()
                stored += store.add_mention_columns(cols)
                ingest_s += time.perf_counter() - t
                if not args.json:
                    print(
                        f"  {corpus.made:>11,} generated, {stored:>11,} stored, ingest {ingest_s:6.1f} s",
                        flush=True,
                    )
            t = time.perf_counter()
        close_s = time.perf_counter() - t
        ingest_s += close_s
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
        out["ingest"] = {
            "stored": stored,
            "seconds": round(ingest_s, 2),
            "rows_per_s": round(args.mentions / ingest_s),
            "close_checkpoint_s": round(close_s, 2),
            "generation_s_untimed": round(gen_s, 2),
            "file_mb": round(size / 1e6, 1),
            "peak_rss_mb": round(_rss_peak_mb(), 1),
            "target_s": TARGET_INGEST_S,
            "pass": ingest_s < TARGET_INGEST_S,
        }
        if not args.json:
            i = out["ingest"]
            print(
                f"ingest: {args.mentions:,} records ({stored:,} new, the rest collected twice) in "
                f"{i['seconds']} s = {i['rows_per_s']:,} rows/s "
                f"(checkpoint at close {i['close_checkpoint_s']} s); "
                f"target < {TARGET_INGEST_S:.0f} s: {'PASS' if i['pass'] else 'FAIL'}"
            )
            print(f"  generating the columns took {i['generation_s_untimed']} s more, outside the timing")
            print(
                f"  file {i['file_mb']} MB, peak RSS of this process "
                f"{i['peak_rss_mb']} MB (generator included)"
            )
        day = LAUNCH.replace(hour=0, minute=20)
        cases = [
            ("allezthomas", day, day + timedelta(days=1), "hour"),
            ("allezthomas", LAUNCH - timedelta(hours=2, minutes=13), LAUNCH + timedelta(hours=10), "hour"),
            ("allezthomas", START, START + timedelta(days=DAYS), "day"),
            ("allezthomas", LAUNCH - timedelta(days=3), LAUNCH + timedelta(days=4), "day"),
            ("iss", START, START + timedelta(days=DAYS), "day"),
            ("iss", day, day + timedelta(days=1), "hour"),
            ("proxima", START, START + timedelta(days=DAYS), "hour"),
            ("esa", START + timedelta(days=20), START + timedelta(days=27), "day"),
            ("nosuchtag", START, START + timedelta(days=DAYS), "day"),
        ]
        out["dashboard"] = []
        with AnalyticsStore(path, threads=os.cpu_count() or 1) as store:
            if not args.json:
                print(
                    f"dashboard (campaign), {args.repeats} runs each after a "
                    f"warm-up, target p99 < {TARGET_DASHBOARD_MS:.0f} ms:"
                )
            for tag, start, end, bucket in cases:
                view = store.campaign(tag, start, end, bucket=bucket)  # type: ignore[arg-type]
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    store.campaign(tag, start, end, bucket=bucket)  # type: ignore[arg-type]
                    times.append((time.perf_counter() - t) * 1000)
                row = {
                    "tag": tag,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "bucket": bucket,
                    "mentions": view.mentions,
                    "authors": view.authors,
                    "p50_ms": round(_pct(times, 50), 1),
                    "p99_ms": round(_pct(times, 99), 1),
                    "pass": _pct(times, 99) < TARGET_DASHBOARD_MS,
                }
                out["dashboard"].append(row)
                if not args.json:
                    span = f"{start:%m-%d %H:%M} → {end:%m-%d %H:%M}"
                    print(
                        f"  #{tag:<12} {span} by {bucket:<4} {view.mentions:>10,} mentions "
                        f"{view.authors:>8,} authors  "
                        f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
                        f"{'PASS' if row['pass'] else 'FAIL'}"
                    )
        out["peak_rss_mb"] = round(_rss_peak_mb(), 1)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
