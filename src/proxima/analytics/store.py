"""Where analytics samples and mentions are kept: one DuckDB file beside the ground database.

One process (the ground service) owns the file. Every sample is kept with its time; nothing is
overwritten. Times are stored as int64 microseconds since the Unix epoch (UTC) and converted at
the edges: every datetime given must be timezone-aware, every datetime returned is aware UTC.

Tables (schema version :data:`SCHEMA_VERSION`, kept in ``meta``):

- ``followers``, ``post_samples``: the time series, one row per sample; an exact duplicate
  (same channel, account or message, and time) is ignored.
- ``mentions``: one row per mention, unique on ``(channel, uri)`` (``ukey`` is a 64-bit hash of
  the pair, checked first; the strings are compared too). ``author_id`` points into ``authors``,
  the dictionary of ``(channel, author)`` pairs, so distinct-author counts run on integers.
- ``mention_tags``: one row per (mention, distinct tag), with what the campaign dashboard needs
  (time, author id, followers, sentiment label, language, channel). Each ingested batch is written
  sorted by ``(tag, ts)``, so DuckDB's per-row-group min/max (zone maps) skip the row groups of
  other tags and other times: a dashboard reads only the rows of its tag and window.
- ``mention_accounts``: one row per (mention, distinct tracked account it mentions), the same way,
  for share of voice.
- ``cursors``: collectors' paging state per (channel, name).

Each batch is written once from its columns into ``mentions`` (in time order); the derived tables
are then filled from the stored rows, and the day rollup is summed from the batch's hour rollup.
The campaign dashboard (:meth:`AnalyticsStore.campaign`) reads raw rows only at the window's
edges, hour rollups for whole hours and day rollups for whole days (per author, always); its answer
equals the pure reference ``proxima.analytics.metrics.campaign_view`` on the same
mentions.
"""

# ruff: noqa: S608 - SQL text is assembled from this module's constants (tables, columns,
# placeholders); every value is a bound parameter.
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Self, get_args

import duckdb
import numpy as np

from proxima.analytics.metrics import normalize_tag
from proxima.analytics.model import (
    SENTIMENT_THRESHOLD,
    AccountActivity,
    Bucket,
    CampaignView,
    FollowerSample,
    Mention,
    MentionKind,
    PostSample,
)
from proxima.errors import ConfigError, InvalidInput, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from types import TracebackType

    import numpy.typing as npt

__all__ = [
    "MENTION_COLUMNS",
    "SCHEMA_VERSION",
    "AnalyticsStore",
    "MentionAuthor",
]

SCHEMA_VERSION: Final = 1
"""Version of the table layout below; a file written by a newer Proxima is refused."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_WIDTH: Final = {"hour": 3_600_000_000, "day": 86_400_000_000}
_SEP: Final = "\x1f"
"""Joins the tags (accounts, keywords) of one mention on their way into DuckDB: far cheaper than
handing DuckDB Python lists, and split again in SQL."""
_KINDS: Final = frozenset(get_args(MentionKind))

MENTION_COLUMNS: Final = (
    "channel",
    "uri",
    "author",
    "at",
    "text",
    "sentiment",
    "lang",
    "lang_detected",
    "author_followers",
    "tags",
    "accounts",
    "keywords",
    "kind",
    "in_reply_to",
    "url",
    "likes",
    "reposts",
    "replies",
)
"""The columns :meth:`AnalyticsStore.add_mention_columns` takes: the fields of :class:`Mention`."""
_REQUIRED: Final = ("channel", "uri", "author", "at", "text", "sentiment")

_SCHEMA: Final = """
create table if not exists meta (key varchar primary key, value varchar not null);
create table if not exists cursors (
    channel varchar not null, name varchar not null, value varchar not null,
    primary key (channel, name));
create table if not exists followers (
    channel varchar not null, account varchar not null, ts bigint not null,
    followers bigint not null, following bigint, posts bigint);
create table if not exists post_samples (
    channel varchar not null, remote_id varchar not null, account varchar not null,
    published_ts bigint not null, ts bigint not null, likes bigint not null, reposts bigint not null,
    replies bigint not null, quotes bigint, views bigint, followers bigint, post_id varchar,
    tags varchar[] not null, lang varchar);
create table if not exists authors (id integer not null, channel varchar not null, author varchar not null);
create table if not exists mentions (
    id bigint not null, ukey ubigint not null, channel varchar not null, uri varchar not null,
    author_id integer not null, ts bigint not null, text varchar not null, sentiment double not null,
    label tinyint not null, lang varchar, lang_detected boolean not null, author_followers bigint,
    tags varchar[] not null, accounts varchar[] not null, keywords varchar[] not null,
    kind varchar not null, in_reply_to varchar, url varchar,
    likes bigint not null, reposts bigint not null, replies bigint not null);
create table if not exists mention_tags (
    tag varchar not null, ts bigint not null, author_id integer not null, followers bigint not null,
    label tinyint not null, lang varchar not null, channel varchar not null, mention_id bigint not null);
create table if not exists tag_hour_authors (
    tag varchar not null, ts bigint not null, author_id integer not null, n bigint not null,
    fmax bigint not null, fsum bigint not null,
    pos bigint not null, neu bigint not null, neg bigint not null);
create table if not exists tag_day_authors (
    tag varchar not null, ts bigint not null, author_id integer not null, n bigint not null,
    fmax bigint not null, fsum bigint not null,
    pos bigint not null, neu bigint not null, neg bigint not null);
create table if not exists tag_hour_counts (
    tag varchar not null, ts bigint not null, lang varchar not null,
    channel varchar not null, n bigint not null);
create table if not exists mention_accounts (
    account varchar not null, ts bigint not null, mention_id bigint not null);
"""


@dataclass(frozen=True, slots=True)
class MentionAuthor:
    """An account that wrote mentions in a window: the inputs of its influence score.

    ``followers`` is the most seen in the window (0 when never known); ``engagement`` the likes,
    reposts and replies its mentions received; ``reposts`` the reposts alone (amplification).
    """

    channel: str
    author: str
    mentions: int
    followers: int
    engagement: int
    reposts: int


def _us(value: datetime, name: str) -> int:
    """Microseconds since the epoch of an aware datetime; a naive one is refused."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"must be a datetime, not {type(value).__name__}", field=name)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{value.isoformat()} has no timezone; give an aware UTC time", field=name)
    return (value - _EPOCH) // _US


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _iso(us: int | None) -> str | None:
    return None if us is None else _dt(us).isoformat()


def _bucket_width(bucket: str) -> int:
    try:
        return _WIDTH[bucket]
    except KeyError:
        raise InvalidInput(f"must be 'hour' or 'day', not {bucket!r}", field="bucket") from None


def _window(start: datetime | None, end: datetime | None, column: str = "ts") -> tuple[str, list[object]]:
    """SQL condition on ``column`` for ``[start, end)`` (either side open when None)."""
    conds: list[str] = []
    params: list[object] = []
    if start is not None:
        conds.append(f"{column} >= ?")
        params.append(_us(start, "start"))
    if end is not None:
        conds.append(f"{column} < ?")
        params.append(_us(end, "end"))
    return " and ".join(conds) or "true", params


def _joined(values: object, name: str, n: int) -> npt.NDArray[np.object_]:
    """An object array of tuples or lists of strings -> one string per row, joined by ``_SEP``."""
    out = np.empty(n, dtype=object)
    try:
        out[:] = [_SEP.join(v) for v in values]  # type: ignore[attr-defined]
    except TypeError as exc:
        raise InvalidInput(f"each row must be a tuple or list of strings ({exc})", field=name) from None
    return out


def _int_column(values: object, name: str, n: int, *, unknown: int | None = None) -> npt.NDArray[np.int64]:
    """An int64 column; with ``unknown`` set, None (object arrays) becomes that value."""
    arr = np.asarray(values)
    if arr.dtype == object:
        if unknown is None:
            raise InvalidInput("must hold integers", field=name)
        arr = np.array([unknown if v is None else v for v in arr], dtype=np.int64)
    if arr.dtype.kind not in "iub":
        raise InvalidInput(f"must hold integers, not {arr.dtype}", field=name)
    if arr.shape != (n,):
        raise InvalidInput(f"has {arr.shape[0] if arr.ndim else 0} rows, expected {n}", field=name)
    return arr.astype(np.int64, copy=False)


def _str_column(values: object, name: str, n: int) -> npt.NDArray[np.object_]:
    arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if arr.dtype.kind == "U":
        arr = arr.astype(object)
    if arr.dtype != object:
        raise InvalidInput(f"must hold strings, not {arr.dtype}", field=name)
    if arr.shape != (n,):
        raise InvalidInput(f"has {arr.shape[0] if arr.ndim else 0} rows, expected {n}", field=name)
    return arr


def _time_column(values: object, n: int) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        arr = arr.astype("datetime64[us]").view(np.int64)
    elif arr.dtype == object:
        arr = np.array([_us(v, "at") for v in arr], dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise InvalidInput(
            f"must be datetime64, int64 microseconds or datetimes, not {arr.dtype}", field="at"
        )
    if arr.shape != (n,):
        raise InvalidInput(f"has {arr.shape[0] if arr.ndim else 0} rows, expected {n}", field="at")
    return arr.astype(np.int64, copy=False)


_AUTHOR_SOURCE: Final = {
    "raw": "(select tag, ts, author_id, 1 as n, followers as "
    "fmax, followers as fsum, (label = 1)::int as pos, "
    "(label = 0)::int as neu, (label = -1)::int as neg from mention_tags)",
    "hour": "tag_hour_authors",
    "day": "tag_day_authors",
}
_COUNT_SOURCE: Final = {"raw": "mention_tags", "hour": "tag_hour_counts"}


def _segments(lo: int, hi: int, *, use_days: bool) -> list[tuple[str, int, int]]:
    """Split ``[lo, hi)`` into raw, whole-hour and (with ``use_days``) whole-day parts.

    Each part is ``(kind, start, end)``; a rollup row's ``ts`` is its hour's or day's start, so a
    part ``[a, b)`` of kind hour or day takes exactly the rows whose time falls inside it.
    """
    if hi <= lo:
        return []
    hour, day = _WIDTH["hour"], _WIDTH["day"]
    h1, h2 = -(-lo // hour) * hour, hi // hour * hour
    if h1 >= h2:
        return [("raw", lo, hi)]
    parts = [("raw", lo, h1), ("raw", h2, hi)]
    d1, d2 = -(-h1 // day) * day, h2 // day * day
    if use_days and d1 < d2:
        parts += [("hour", h1, d1), ("day", d1, d2), ("hour", d2, h2)]
    else:
        parts.append(("hour", h1, h2))
    return [p for p in parts if p[1] < p[2]]


def _split(column: str) -> str:
    """SQL turning a ``_SEP``-joined column back into a list (an empty string is no element)."""
    return f"case when {column} = '' then []::varchar[] else string_split({column}, chr(31)) end"


class AnalyticsStore:
    """Analytics samples and mentions in DuckDB (a file, or memory when ``path`` is None).

    ``threads`` caps DuckDB's worker threads (default: one per core). The store is not safe for
    concurrent use from several threads without a lock around it; one process owns the file.
    """

    def __init__(self, path: str | Path | None = None, *, threads: int | None = None) -> None:
        self.path = None if path is None else Path(path)
        where = ":memory:" if self.path is None else str(self.path)
        config: dict[str, str | bool | int | float | list[str]] = {}
        if threads is not None:
            if threads < 1:
                raise InvalidInput(f"must be at least 1, not {threads}", field="threads")
            config["threads"] = threads
        try:
            self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(where, config=config)
        except duckdb.Error as exc:
            raise ConfigError(f"{where}: cannot open the analytics database: {exc}") from exc
        try:
            self._open_schema(where)
        except BaseException:
            self._con.close()
            self._con = None
            raise
        self._next_mention = int(self._one("select coalesce(max(id) + 1, 0) from mentions"))
        self._next_author = int(self._one("select coalesce(max(id) + 1, 0) from authors"))

    def _open_schema(self, where: str) -> None:
        con = self._db
        has_meta = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'main' and table_name = 'meta'"
        ).fetchall()
        if has_meta and has_meta[0][0]:
            row = con.execute("select value from meta where key = 'schema_version'").fetchall()
            version = int(row[0][0]) if row and str(row[0][0]).isdigit() else None
            if version is None:
                raise ConfigError(f"{where}: meta.schema_version is missing or unreadable")
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"{where}: analytics schema version {version} is newer than this Proxima's "
                    f"{SCHEMA_VERSION}; upgrade Proxima to read it"
                )
        con.execute("begin")
        con.execute(_SCHEMA)
        con.execute(
            "insert into meta values ('schema_version', ?) on conflict do nothing", [str(SCHEMA_VERSION)]
        )
        con.execute("commit")

    # -- lifetime ---------------------------------------------------------------------------

    @property
    def _db(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreError("the analytics store is closed")
        return self._con

    def close(self) -> None:
        """Write everything out and release the file; closing twice does nothing."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _one(self, sql: str, params: Sequence[object] = ()) -> Any:
        rows = self._db.execute(sql, list(params)).fetchall()
        return rows[0][0] if rows else None

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, list(params)).fetchall()

    def _transaction(self, work: Any) -> int:
        """Run ``work()`` (returning a count) in one transaction, rolled back on any error."""
        con = self._db
        con.execute("begin")
        try:
            result = int(work())
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
        return result

    # -- cursors ----------------------------------------------------------------------------

    def get_cursor(self, channel: str, name: str) -> str | None:
        """A collector's saved paging state for ``(channel, name)``, or None."""
        value = self._one("select value from cursors where channel = ? and name = ?", [channel, name])
        return None if value is None else str(value)

    def set_cursor(self, channel: str, name: str, value: str) -> None:
        """Save (replace) a collector's paging state."""
        self._db.execute("insert or replace into cursors values (?, ?, ?)", [channel, name, value])

    # -- writes -----------------------------------------------------------------------------

    def add_followers(self, samples: Iterable[FollowerSample]) -> int:
        """Store follower samples; one already stored for (channel, account, at) is ignored.

        Returns how many were new.
        """
        rows = [(s.channel, s.account, _us(s.at, "at"), s.followers, s.following, s.posts) for s in samples]
        if not rows:
            return 0

        def work() -> int:
            con = self._db
            con.execute(
                "create or replace temp table _f (channel varchar, account varchar, ts bigint, "
                "followers bigint, following bigint, posts bigint)"
            )
            con.executemany("insert into _f values (?, ?, ?, ?, ?, ?)", rows)
            n = con.execute(
                "insert into followers select distinct on (channel, account, ts) * from _f n "
                "where not exists (select 1 from followers f where f.channel = n.channel "
                "and f.account = n.account and f.ts = n.ts) order by ts"
            ).fetchall()
            con.execute("drop table _f")
            return int(n[0][0]) if n else 0

        return self._transaction(work)

    def add_post_samples(self, samples: Iterable[PostSample]) -> int:
        """Store post samples (every one kept); an exact duplicate (channel, remote_id, at) is ignored.

        Returns how many were new.
        """
        rows = [
            (
                s.channel,
                s.remote_id,
                s.account,
                _us(s.published_at, "published_at"),
                _us(s.at, "at"),
                s.likes,
                s.reposts,
                s.replies,
                s.quotes,
                s.views,
                s.followers,
                s.post_id,
                list(s.tags),
                s.lang,
            )
            for s in samples
        ]
        if not rows:
            return 0

        def work() -> int:
            con = self._db
            con.execute("create or replace temp table _p as select * from post_samples limit 0")
            con.executemany("insert into _p values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            n = con.execute(
                "insert into post_samples select distinct on (channel, remote_id, ts) * from _p n "
                "where not exists (select 1 from post_samples p where p.channel = n.channel "
                "and p.remote_id = n.remote_id and p.ts = n.ts) order by ts"
            ).fetchall()
            con.execute("drop table _p")
            return int(n[0][0]) if n else 0

        return self._transaction(work)

    def add_mentions(self, mentions: Iterable[Mention]) -> int:
        """Store mentions not seen before (unique on (channel, uri)); returns how many were new.

        A mention already stored, or repeated in ``mentions``, is kept once (its first version).
        """
        items = list(mentions)
        if not items:
            return 0
        columns: dict[str, object] = {
            name: np.array([getattr(m, name) for m in items], dtype=object) for name in MENTION_COLUMNS
        }
        columns["sentiment"] = np.array([m.sentiment for m in items], dtype=np.float64)
        columns["lang_detected"] = np.array([m.lang_detected for m in items], dtype=bool)
        for name in ("likes", "reposts", "replies"):
            columns[name] = np.array([getattr(m, name) for m in items], dtype=np.int64)
        columns["author_followers"] = np.array(
            [-1 if m.author_followers is None else m.author_followers for m in items], dtype=np.int64
        )
        return self.add_mention_columns(columns)  # type: ignore[arg-type]

    def add_mention_columns(self, columns: Mapping[str, npt.NDArray[Any]]) -> int:
        """Store mentions given as columns (the bulk path); returns how many were new.

        Keys are the fields of :class:`Mention` (:data:`MENTION_COLUMNS`), each a 1-D numpy array
        of the same length:

        - required: ``channel``, ``uri``, ``author``, ``text`` (object or ``str_`` arrays of
          ``str``); ``at`` (``datetime64`` of any unit read as UTC, int64 microseconds since the
          epoch, or an object array of aware datetimes); ``sentiment`` (float, the VADER compound).
        - optional: ``lang``, ``in_reply_to``, ``url`` (object arrays, None for unknown; default
          all None); ``lang_detected`` (bool, default False); ``author_followers`` (int64, a
          negative value for unknown, or an object array with None; default unknown); ``tags``,
          ``accounts``, ``keywords`` (object arrays whose items are tuples or lists of ``str``,
          lower case, no ``#``; default empty); ``kind`` (object array of ``"post"``, ``"reply"``,
          ``"quote"``, ``"repost"``; default ``"post"``); ``likes``, ``reposts``, ``replies``
          (int, default 0).

        The same dedupe as :meth:`add_mentions`: on (channel, uri), against what is stored and
        within the columns (the first row wins). One transaction.
        """
        unknown = set(columns) - set(MENTION_COLUMNS)
        if unknown:
            raise InvalidInput(f"unknown mention columns {sorted(unknown)}", field="columns")
        missing = [c for c in _REQUIRED if c not in columns]
        if missing:
            raise InvalidInput(f"missing mention columns {missing}", field="columns")
        n = len(columns["uri"])
        if n == 0:
            return 0
        batch = self._mention_batch(columns, n)
        return self._transaction(lambda: self._ingest(batch, n))

    def _mention_batch(self, columns: Mapping[str, npt.NDArray[Any]], n: int) -> dict[str, Any]:
        """The columns as DuckDB will scan them: validated, lists joined, defaults filled."""
        none = np.full(n, None, dtype=object)
        batch: dict[str, Any] = {"rn": np.arange(n, dtype=np.int64)}
        for name in ("channel", "uri", "author", "text"):
            batch[name] = _str_column(columns[name], name, n)
        for name in ("lang", "in_reply_to", "url"):
            batch[name] = _str_column(columns[name], name, n) if name in columns else none
        batch["kind"] = (
            _str_column(columns["kind"], "kind", n) if "kind" in columns else np.full(n, "post", dtype=object)
        )
        batch["ts"] = _time_column(columns["at"], n)
        sentiment = np.asarray(columns["sentiment"], dtype=np.float64)
        if sentiment.shape != (n,):
            raise InvalidInput(f"has {sentiment.shape} rows, expected {n}", field="sentiment")
        batch["sentiment"] = sentiment
        batch["label"] = np.where(
            sentiment >= SENTIMENT_THRESHOLD, 1, np.where(sentiment <= -SENTIMENT_THRESHOLD, -1, 0)
        ).astype(np.int8)
        detected = columns.get("lang_detected")
        batch["lang_detected"] = (
            np.zeros(n, dtype=bool) if detected is None else np.asarray(detected, dtype=bool)
        )
        if batch["lang_detected"].shape != (n,):
            raise InvalidInput(f"expected {n} rows", field="lang_detected")
        batch["author_followers"] = (
            _int_column(columns["author_followers"], "author_followers", n, unknown=-1)
            if "author_followers" in columns
            else np.full(n, -1, dtype=np.int64)
        )
        for name in ("likes", "reposts", "replies"):
            batch[name] = (
                _int_column(columns[name], name, n) if name in columns else np.zeros(n, dtype=np.int64)
            )
        empty = np.full(n, "", dtype=object)
        for name in ("tags", "accounts", "keywords"):
            batch[name] = _joined(columns[name], name, n) if name in columns else empty
        return batch

    def _ingest(self, batch: dict[str, Any], n: int) -> int:
        con = self._db
        con.register("_batch", batch)
        try:
            bad = con.execute(
                "select rn, channel is null or uri is null or author is null or text is null, kind "
                "from _batch where channel is null or uri is null or author is null or text is null "
                f"or kind not in ({', '.join(repr(k) for k in sorted(_KINDS))}) limit 1"
            ).fetchall()
            if bad:
                rn, missing, kind = bad[0]
                what = "channel, uri, author and text are required" if missing else f"unknown kind {kind!r}"
                raise InvalidInput(f"row {rn}: {what}", field="columns")
            keys = con.execute("select rn, hash(channel, uri) as k from _batch").fetchnumpy()
        finally:
            con.unregister("_batch")
        ukey = np.empty(n, dtype=np.uint64)
        ukey[keys["rn"]] = keys["k"]
        keep = self._first_unseen(batch, ukey)
        # Stored in time order (ties in given order): ids follow time, and so do row groups.
        rows = np.flatnonzero(keep)
        rows = rows[np.argsort(batch["ts"][rows], kind="stable")]
        fresh = len(rows)
        if fresh == 0:
            return 0
        base = self._next_mention
        new = {name: column[rows] for name, column in batch.items()}
        new["ukey"] = ukey[rows]
        new["id"] = np.arange(base, base + fresh, dtype=np.int64)
        new["rn"] = np.arange(fresh, dtype=np.int64)
        con.register("_new", new)
        try:
            added_authors = con.execute(
                "insert into authors select ? + row_number() over "
                "(order by channel, author) - 1, channel, author "
                "from (select distinct channel, author from _new) n where not exists "
                "(select 1 from authors a where a.channel = n.channel and a.author = n.author)",
                [self._next_author],
            ).fetchall()
            found = con.execute(
                "select n.rn, a.id from _new n join authors a "
                "on a.channel = n.channel and a.author = n.author"
            ).fetchnumpy()
        finally:
            con.unregister("_new")
        author_id = np.empty(fresh, dtype=np.int32)
        author_id[found["rn"]] = found["id"]
        new["author_id"] = author_id
        con.register("_new", new)
        try:
            self._write_new(con, base)
        finally:
            con.unregister("_new")
        self._next_author += int(added_authors[0][0]) if added_authors else 0
        self._next_mention += fresh
        return fresh

    def _first_unseen(self, batch: dict[str, Any], ukey: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        """Which rows to store: the first of each (channel, uri) in the batch, if not stored yet.

        Works on the 64-bit key; the strings are compared only for rows whose key is shared
        (within the batch or with a stored mention), so a hash collision never drops a mention.
        """
        n = len(ukey)
        channel, uri = batch["channel"], batch["uri"]
        keep = np.ones(n, dtype=bool)
        order = np.argsort(ukey, kind="stable")
        ordered = ukey[order]
        same = ordered[1:] == ordered[:-1]
        if same.any():
            shared = np.zeros(n, dtype=bool)
            shared[1:] |= same
            shared[:-1] |= same
            seen: set[tuple[object, object, object]] = set()
            for i in order[shared].tolist():
                pair = (ukey[i], channel[i], uri[i])
                if pair in seen:
                    keep[i] = False
                seen.add(pair)
        con = self._db
        con.register("_keys", {"ukey": np.concatenate((ordered[:1], ordered[1:][~same]))})
        try:
            hits = con.execute(
                "select m.id from mentions m semi join _keys k on m.ukey = k.ukey"
            ).fetchnumpy()
        finally:
            con.unregister("_keys")
        if len(hits["id"]):
            con.register("_hits", {"id": hits["id"]})
            try:
                stored = {
                    (np.uint64(k), c, u)
                    for k, c, u in con.execute(
                        "select m.ukey, m.channel, m.uri from mentions m semi join _hits h on m.id = h.id"
                    ).fetchall()
                }
            finally:
                con.unregister("_hits")
            hit_keys = np.fromiter((k for k, _, _ in stored), dtype=np.uint64, count=len(stored))
            for i in np.flatnonzero(np.isin(ukey, hit_keys) & keep).tolist():
                if (ukey[i], channel[i], uri[i]) in stored:
                    keep[i] = False
        return keep

    def _write_new(self, con: duckdb.DuckDBPyConnection, base: int) -> None:
        """Append the registered ``_new`` rows (id order) to mentions and the tables derived from it."""
        con.execute(
            "insert into mentions select id, ukey, channel, uri, "
            "author_id, ts, text, sentiment, label, lang, "
            "lang_detected, case when author_followers < 0 then null else author_followers end, "
            f"{_split('tags')}, {_split('accounts')}, {_split('keywords')}, kind, in_reply_to, url, "
            "likes, reposts, replies from _new"
        )
        # The derived tables read the rows just written (native, parallel), not the Python columns.
        con.execute(
            "insert into mention_tags select tag, ts, author_id, coalesce(author_followers, 0), "
            "label, coalesce(lang, 'und'), channel, id from "
            "(select unnest(list_distinct(tags)) as tag, * from mentions where id >= ? and len(tags) > 0) "
            "order by tag, ts, id",
            [base],
        )
        hour, day = _WIDTH["hour"], _WIDTH["day"]
        con.execute(
            f"create or replace temp table _hours as select tag, ts - ts % {hour} as ts, author_id, "
            "count(*) as n, max(followers) as fmax, sum(followers) as fsum, count_if(label = 1) as pos, "
            "count_if(label = 0) as neu, count_if(label = -1) as neg "
            "from mention_tags where mention_id >= ? group by all",
            [base],
        )
        con.execute("insert into tag_hour_authors select * from _hours order by tag, ts")
        con.execute(
            f"insert into tag_day_authors select tag, ts - ts % {day} as t, author_id, sum(n), max(fmax), "
            "sum(fsum), sum(pos), sum(neu), sum(neg) from _hours group by tag, t, author_id order by tag, t"
        )
        con.execute("drop table _hours")
        con.execute(
            f"insert into tag_hour_counts select tag, ts - ts % {hour} as t, lang, channel, count(*) "
            "from mention_tags where mention_id >= ? group by tag, t, lang, channel order by tag, t",
            [base],
        )
        con.execute(
            "insert into mention_accounts select account, ts, id from "
            "(select unnest(list_distinct(accounts)) as account, ts, id from mentions "
            "where id >= ? and len(accounts) > 0) order by account, ts, id",
            [base],
        )

    # -- reads: samples ---------------------------------------------------------------------

    def follower_series(
        self,
        *,
        channel: str | None = None,
        account: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[FollowerSample]:
        """Follower samples in ``[start, end)``, in time order (then channel, account)."""
        where, params = _window(start, end)
        for name, value in (("channel", channel), ("account", account)):
            if value is not None:
                where += f" and {name} = ?"
                params.append(value)
        return [
            FollowerSample(
                channel=r[0], account=r[1], at=_dt(r[2]), followers=r[3], following=r[4], posts=r[5]
            )
            for r in self._rows(
                f"select * from followers where {where} order by ts, channel, account", params
            )
        ]

    def post_samples(
        self,
        *,
        channel: str | None = None,
        remote_id: str | None = None,
        post_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[PostSample]:
        """Post samples taken in ``[start, end)``, by sample time (then channel, remote id)."""
        where, params = _window(start, end)
        for name, value in (("channel", channel), ("remote_id", remote_id), ("post_id", post_id)):
            if value is not None:
                where += f" and {name} = ?"
                params.append(value)
        return [
            _post_sample(r)
            for r in self._rows(
                f"select * from post_samples where {where} order by ts, channel, remote_id", params
            )
        ]

    def latest_post_samples(
        self,
        *,
        channel: str | None = None,
        published_from: datetime | None = None,
        published_to: datetime | None = None,
    ) -> list[PostSample]:
        """The last sample of each message (channel, remote_id) published in ``[from, to)``.

        Ordered by publication time, then channel and remote id.
        """
        conds: list[str] = ["true"]
        params: list[object] = []
        if channel is not None:
            conds.append("channel = ?")
            params.append(channel)
        if published_from is not None:
            conds.append("published_ts >= ?")
            params.append(_us(published_from, "published_from"))
        if published_to is not None:
            conds.append("published_ts < ?")
            params.append(_us(published_to, "published_to"))
        return [
            _post_sample(r)
            for r in self._rows(
                f"select * from post_samples where {' and '.join(conds)} "
                "qualify row_number() over (partition by channel, remote_id order by ts desc) = 1 "
                "order by published_ts, channel, remote_id",
                params,
            )
        ]

    # -- reads: mentions --------------------------------------------------------------------

    def _mention_filter(
        self, tag: str | None, account: str | None, start: datetime | None, end: datetime | None
    ) -> tuple[str, list[object]]:
        where, params = _window(start, end)
        if tag is not None:
            sub, sub_params = _window(start, end)
            where += f" and id in (select mention_id from mention_tags where tag = ? and {sub})"
            params += [tag, *sub_params]
        if account is not None:
            sub, sub_params = _window(start, end)
            where += f" and id in (select mention_id from mention_accounts where account = ? and {sub})"
            params += [account, *sub_params]
        return where, params

    def mentions(
        self,
        *,
        tag: str | None = None,
        account: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Mention]:
        """Mentions in ``[start, end)`` with that tag and/or tracked account, newest first.

        Ties in time come newest stored first. ``limit`` and ``offset`` page through them.
        """
        if limit < 0 or offset < 0:
            raise InvalidInput(f"limit {limit} and offset {offset} must be >= 0", field="limit")
        where, params = self._mention_filter(tag, account, start, end)
        rows = self._rows(
            "select m.channel, m.uri, a.author, m.ts, m.text, m.sentiment, m.lang, m.lang_detected, "
            "m.author_followers, m.tags, m.accounts, m.keywords, m.kind, m.in_reply_to, m.url, m.likes, "
            f"m.reposts, m.replies from (select * from mentions where {where} "
            "order by ts desc, id desc limit ? offset ?) m join authors a on a.id = m.author_id "
            "order by m.ts desc, m.id desc",
            [*params, limit, offset],
        )
        return [
            Mention(
                channel=r[0],
                uri=r[1],
                author=r[2],
                at=_dt(r[3]),
                text=r[4],
                sentiment=r[5],
                lang=r[6],
                lang_detected=r[7],
                author_followers=r[8],
                tags=tuple(r[9]),
                accounts=tuple(r[10]),
                keywords=tuple(r[11]),
                kind=r[12],
                in_reply_to=r[13],
                url=r[14],
                likes=r[15],
                reposts=r[16],
                replies=r[17],
            )
            for r in rows
        ]

    def mention_count(
        self,
        *,
        tag: str | None = None,
        account: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> int:
        """How many mentions :meth:`mentions` would give without a limit."""
        where, params = self._mention_filter(tag, account, start, end)
        return int(self._one(f"select count(*) from mentions where {where}", params))

    def campaign(
        self,
        tag: str,
        start: datetime,
        end: datetime,
        *,
        bucket: Literal["hour", "day"] = "hour",
        top: int = 10,
    ) -> CampaignView:
        """The campaign dashboard of ``tag`` over ``[start, end)``, computed in SQL.

        Equal to ``metrics.campaign_view`` over the stored mentions (see :class:`CampaignView`);
        the tag is read as :func:`~proxima.analytics.metrics.normalize_tag` reads it (``#AllezThomas``).
        """
        tag = normalize_tag(tag)
        width = _bucket_width(bucket)
        if top < 0:
            raise InvalidInput(f"must be >= 0, not {top}", field="top")
        lo, hi = _us(start, "start"), _us(end, "end")
        origin = lo - lo % width
        # Rows per (bucket, author) from the coarsest rollup that fits each part of the window:
        # raw rows for partial hours at the edges, hourly rollups for whole hours, daily ones
        # for whole days (day buckets only: an hour bucket cannot come from a day's row).
        parts = _segments(lo, hi, use_days=bucket == "day")
        by_author = " union all ".join(
            f"select ts, author_id, n, fmax, fsum, pos, neu, neg from {_AUTHOR_SOURCE[kind]} "
            "where tag = ? and ts >= ? and ts < ?"
            for kind, _, _ in parts
        )
        part_params = [v for _, a, b in parts for v in (tag, a, b)]
        if not parts:
            by_author = "select * from tag_day_authors where false"
        # Per author (authors, unique reach, top accounts) only whole days matter, whatever the
        # bucket: day rollups serve every whole day, which is far fewer rows than its hours.
        day_parts = _segments(lo, hi, use_days=True)
        by_author_days = " union all ".join(
            f"select author_id, n, fmax from {_AUTHOR_SOURCE[kind]} where tag = ? and ts >= ? and ts < ?"
            for kind, _, _ in day_parts
        ) or "select author_id, n, fmax from tag_day_authors where false"
        per_bucket = {
            int(r[0]): r[1:]
            for r in self._rows(
                "select (ts - ?) // ? as b, sum(n), count(distinct author_id), sum(pos), sum(neu), sum(neg), "
                f"sum(fsum) from ({by_author}) group by b",
                [origin, width, *part_params],
            )
        }
        # One pass per author; the top is picked among the authors tied with the top-th by
        # (mentions, followers) only, so names are looked up for a handful of rows.
        summary = self._rows(
            "with a as (select author_id, sum(n) as n, max(fmax) as f "
            f"from ({by_author_days}) group by author_id), "
            "cut as (select n, f from a order by n desc, f desc limit 1 offset ?), "
            "best as (select a.* from a where not exists (select 1 from cut) or (a.n, a.f) >= "
            "(select (n, f) from cut)) "
            "select 0 as part, null as author, null as channel, count(*), sum(f) from a "
            "union all (select 1, au.author, au.channel, best.n, best.f from best "
            "join authors au on au.id = best.author_id order by best.n desc, best.f desc, au.author, "
            "au.channel limit ?) order by part",
            [*[v for _, a, b in day_parts for v in (tag, a, b)], max(top - 1, 0), top],
        )
        authors, unique_reach = int(summary[0][3]), int(summary[0][4] or 0)
        candidates = [
            AccountActivity(channel=r[2], author=r[1], mentions=int(r[3]), followers=int(r[4]))
            for r in summary[1:]
        ]
        hour_parts = _segments(lo, hi, use_days=False)
        by_count = (
            " union all ".join(
                f"select lang, channel, {'count(*)' if kind == 'raw' else 'sum(n)'} as n from "
                f"{_COUNT_SOURCE[kind]} where tag = ? and ts >= ? and ts < ? group by lang, channel"
                for kind, _, _ in hour_parts
            )
            or "select null as lang, null as channel, 0 as n where false"
        )
        counts = self._rows(
            f"select lang, channel, sum(n) from ({by_count}) group by grouping sets ((lang), (channel))",
            [v for _, a, b in hour_parts for v in (tag, a, b)],
        )
        languages = sorted(
            ((r[0], int(r[2])) for r in counts if r[0] is not None), key=lambda x: (-x[1], x[0])
        )
        channels = sorted(
            ((r[1], int(r[2])) for r in counts if r[1] is not None), key=lambda x: (-x[1], x[0])
        )
        buckets = []
        for k in range((max(hi - origin, 0) + width - 1) // width):
            row = per_bucket.get(k)
            buckets.append(
                Bucket(
                    start=_dt(origin + k * width), mentions=0, authors=0, positive=0, neutral=0, negative=0
                )
                if row is None
                else Bucket(
                    start=_dt(origin + k * width),
                    mentions=int(row[0]),
                    authors=int(row[1]),
                    positive=int(row[2]),
                    neutral=int(row[3]),
                    negative=int(row[4]),
                )
            )
        return CampaignView(
            tag=tag,
            start=start.astimezone(UTC),
            end=end.astimezone(UTC),
            bucket=bucket,
            mentions=sum(int(r[0]) for r in per_bucket.values()),
            authors=authors,
            reach=sum(int(r[5]) for r in per_bucket.values()),
            unique_reach=unique_reach,
            positive=sum(int(r[2]) for r in per_bucket.values()),
            neutral=sum(int(r[3]) for r in per_bucket.values()),
            negative=sum(int(r[4]) for r in per_bucket.values()),
            buckets=tuple(buckets),
            languages=tuple(languages),
            channels=tuple(channels),
            top_accounts=tuple(candidates),
        )

    def account_mentions(self, accounts: Iterable[str], start: datetime, end: datetime) -> dict[str, int]:
        """How many mentions in ``[start, end)`` name each tracked account (0 when none): share of voice."""
        wanted = list(dict.fromkeys(accounts))
        result = dict.fromkeys(wanted, 0)
        if not wanted:
            return result
        where, params = _window(start, end)
        for account, count in self._rows(
            f"select account, count(*) from mention_accounts where {where} and account in "
            f"({', '.join('?' * len(wanted))}) group by account",
            [*params, *wanted],
        ):
            result[account] = int(count)
        return result

    def sentiment_counts(
        self,
        start: datetime,
        end: datetime,
        *,
        bucket: Literal["hour", "day"] = "day",
        tag: str | None = None,
    ) -> list[tuple[datetime, int, int, int]]:
        """(bucket start, positive, neutral, negative) over ``[start, end)``, every bucket included.

        Buckets are aligned to the UTC hour or day like the campaign's; with ``tag``, only that
        tag's mentions.
        """
        width = _bucket_width(bucket)
        lo, hi = _us(start, "start"), _us(end, "end")
        origin = lo - lo % width
        table, cond = "mentions", ""
        params: list[object] = [origin, width, lo, hi]
        if tag is not None:
            table, cond = "mention_tags", " and tag = ?"
            params.append(tag)
        found = {
            int(r[0]): (int(r[1]), int(r[2]), int(r[3]))
            for r in self._rows(
                "select (ts - ?) // ? as b, count_if(label = 1), count_if(label = 0), count_if(label = -1) "
                f"from {table} where ts >= ? and ts < ?{cond} group by b",
                params,
            )
        }
        return [
            (_dt(origin + k * width), *found.get(k, (0, 0, 0)))
            for k in range((max(hi - origin, 0) + width - 1) // width)
        ]

    def mention_authors(self, start: datetime, end: datetime, *, top: int = 100) -> list[MentionAuthor]:
        """The ``top`` accounts that wrote most mentions in ``[start, end)`` (influence inputs).

        Ordered by mentions, then followers (both descending), then author and channel.
        """
        where, params = _window(start, end)
        rows = self._rows(
            "select a.channel, a.author, m.n, m.f, m.e, m.r from (select author_id, count(*) as n, "
            "coalesce(max(author_followers), 0) as f, sum(likes + reposts + replies) as e, sum(reposts) as r "
            f"from mentions where {where} group by author_id) m join authors a on a.id = m.author_id "
            "order by m.n desc, m.f desc, a.author, a.channel limit ?",
            [*params, top],
        )
        return [MentionAuthor(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows]

    # -- export -----------------------------------------------------------------------------

    def export(
        self, kind: Literal["followers", "posts", "mentions"], start: datetime, end: datetime
    ) -> Iterator[dict[str, object]]:
        """Flat rows for CSV or JSON export of one kind of record taken in ``[start, end)``.

        Keys are the model's field names; datetimes are ISO-8601 UTC strings; tags, accounts and
        keywords are joined by a single space. Rows come in time order, fetched in chunks.
        """
        where, params = _window(start, end)
        if kind == "followers":
            sql = (
                "select channel, account, ts, followers, following, posts from followers "
                f"where {where} order by ts, channel, account"
            )
            names: tuple[str, ...] = ("channel", "account", "at", "followers", "following", "posts")
        elif kind == "posts":
            sql = (
                "select channel, remote_id, account, published_ts, "
                "ts, likes, reposts, replies, quotes, views, "
                f"followers, post_id, array_to_string(tags, ' '), lang from post_samples where {where} "
                "order by ts, channel, remote_id"
            )
            names = (
                "channel",
                "remote_id",
                "account",
                "published_at",
                "at",
                "likes",
                "reposts",
                "replies",
                "quotes",
                "views",
                "followers",
                "post_id",
                "tags",
                "lang",
            )
        elif kind == "mentions":
            mwhere, params = _window(start, end, "m.ts")
            sql = (
                "select m.channel, m.uri, a.author, m.ts, m.text, m.sentiment, m.lang, m.lang_detected, "
                "m.author_followers, array_to_string(m.tags, ' '), array_to_string(m.accounts, ' '), "
                "array_to_string(m.keywords, ' '), m.kind, m.in_reply_to, "
                "m.url, m.likes, m.reposts, m.replies "
                f"from mentions m join authors a on a.id = m.author_id where {mwhere} "
                "order by m.ts, m.id"
            )
            names = MENTION_COLUMNS
        else:
            raise InvalidInput(f"must be followers, posts or mentions, not {kind!r}", field="kind")
        times = {"at", "published_at"}
        cur = self._db.cursor()
        try:
            cur.execute(sql, params)
            while chunk := cur.fetchmany(10_000):
                for row in chunk:
                    yield {
                        name: _iso(value) if name in times else value
                        for name, value in zip(names, row, strict=True)
                    }
        finally:
            cur.close()


def _post_sample(r: tuple[Any, ...]) -> PostSample:
    return PostSample(
        channel=r[0],
        remote_id=r[1],
        account=r[2],
        published_at=_dt(r[3]),
        at=_dt(r[4]),
        likes=r[5],
        reposts=r[6],
        replies=r[7],
        quotes=r[8],
        views=r[9],
        followers=r[10],
        post_id=r[11],
        tags=tuple(r[12]),
        lang=r[13],
    )
