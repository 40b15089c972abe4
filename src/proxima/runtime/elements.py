"""Read element sets from disk: the dated snapshot shipped in the package, a file, or a directory.

The orbit engine is pure; this is where its input files are read. Each element set's age is
reported, and a :class:`StaleElementsWarning` is issued when any is older than the limit, because
SGP4 predictions for low orbits drift by kilometres a day.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from proxima.errors import ElementsError, OrbitInputError
from proxima.orbit.elements import Elements, elements_age_days, parse_elements

__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "ELEMENT_SUFFIXES",
    "SNAPSHOT_RESOURCE",
    "LoadedElements",
    "StaleElementsWarning",
    "load_elements",
]

DEFAULT_MAX_AGE_DAYS = 7.0
"""Older elements trigger a warning: a week-old ISS TLE is already off by tens of kilometres."""
SNAPSHOT_RESOURCE = ("data", "elements", "stations-2026-03-11.tle")
"""Where the shipped snapshot lives inside the ``proxima`` package (see the README beside it)."""
ELEMENT_SUFFIXES = frozenset({".tle", ".3le", ".2le", ".txt", ".json", ".xml", ".kvn", ".omm", ".csv"})
"""File suffixes read when a directory is given (anything else, e.g. a README.md, is skipped)."""


class StaleElementsWarning(UserWarning):
    """Element sets older than the configured limit were loaded; predictions will be off."""


@dataclass(frozen=True, slots=True)
class LoadedElements:
    """Element sets with where they came from and how old they are at ``now_unix``.

    ``sources[i]`` and ``age_days[i]`` belong to ``elements[i]``; ages are negative for epochs in
    the future.
    """

    elements: tuple[Elements, ...]
    sources: tuple[str, ...]
    age_days: tuple[float, ...]
    now_unix: float

    @property
    def oldest_age_days(self) -> float:
        """Age of the oldest element set, in days."""
        return max(self.age_days)

    def find(self, name_or_catalog: str) -> Elements:
        """The element set whose name (case-insensitive) or catalog number matches."""
        key = name_or_catalog.strip().upper()
        for e in self.elements:
            if e.name.upper() == key or e.catalog == key or str(e.catalog_number) == key:
                return e
        for e in self.elements:
            if e.name.upper().startswith(key):
                return e
        names = ", ".join(e.name for e in self.elements)
        raise OrbitInputError(f"no element set named {name_or_catalog!r} (have: {names})")


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OrbitInputError(f"cannot read elements file {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ElementsError(f"not UTF-8 text (byte {exc.start})", source=str(path)) from exc


def _from_path(path: Path) -> list[tuple[Elements, str]]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in ELEMENT_SUFFIXES)
        if not files:
            raise OrbitInputError(f"no element files ({', '.join(sorted(ELEMENT_SUFFIXES))}) in {path}")
        out: list[tuple[Elements, str]] = []
        for f in files:
            out.extend(_from_path(f))
        return out
    if not path.exists():
        raise OrbitInputError(f"elements file {path} does not exist")
    source = str(path)
    return [(e, source) for e in parse_elements(_read_text(path), source)]


def load_elements(
    path: str | Path | None = None,
    *,
    now_unix: float,
    max_age_days: float | None = DEFAULT_MAX_AGE_DAYS,
) -> LoadedElements:
    """Element sets from ``path`` (a TLE/3LE/OMM file, or a directory of them) or the snapshot.

    The format of each file is recognised from its content. ``now_unix`` (the caller's clock)
    gives the ages; when any exceeds ``max_age_days`` (None: never) a
    :class:`StaleElementsWarning` names the oldest set and its age.
    """
    if path is None:
        resource = resources.files("proxima").joinpath(*SNAPSHOT_RESOURCE)
        source = "proxima:" + "/".join(SNAPSHOT_RESOURCE)
        pairs = [(e, source) for e in parse_elements(resource.read_text(encoding="utf-8"), source)]
    else:
        pairs = _from_path(Path(path))
    if not pairs:
        where = "the shipped snapshot" if path is None else str(path)
        raise OrbitInputError(f"no element sets in {where}")
    ages = tuple(elements_age_days(e, now_unix) for e, _ in pairs)
    loaded = LoadedElements(
        elements=tuple(e for e, _ in pairs),
        sources=tuple(s for _, s in pairs),
        age_days=ages,
        now_unix=now_unix,
    )
    if max_age_days is not None and loaded.oldest_age_days > max_age_days:
        oldest = max(range(len(ages)), key=ages.__getitem__)
        e = loaded.elements[oldest]
        warnings.warn(
            f"elements for {e.name} from {loaded.sources[oldest]} are {ages[oldest]:.1f} days old "
            f"(limit {max_age_days:g}); predictions may be off by many kilometres - use newer elements",
            StaleElementsWarning,
            stacklevel=2,
        )
    return loaded
