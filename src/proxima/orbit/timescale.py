"""Time conversions for the orbit engine: Unix seconds, Julian dates, ISO 8601 text and GMST.

Every time in the orbit API is float64 seconds since 1970-01-01T00:00:00 UTC, POSIX style (no leap
seconds), as a scalar or a numpy array. UT1 is taken equal to UTC (|UT1 - UTC| < 0.9 s, about
0.004° of Earth rotation), which is what SGP4's own TEME -> Earth-fixed rotation assumes when no
Earth-orientation data is supplied.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proxima.errors import OrbitInputError

__all__ = [
    "J2000_UNIX",
    "SECONDS_PER_DAY",
    "UNIX_EPOCH_JD",
    "gmst_rad",
    "iso_to_unix",
    "jd_to_unix",
    "unix_to_iso",
    "unix_to_jd",
]

SECONDS_PER_DAY = 86400.0
UNIX_EPOCH_JD = 2440587.5
"""Julian date of 1970-01-01T00:00:00 UTC."""
J2000_UNIX = 946728000.0
"""Unix time of J2000.0 (2000-01-01T12:00:00, taken on the UTC scale as SGP4 does)."""

Float = float | NDArray[np.float64]


def _as_f64(t: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(t, dtype=np.float64)


def unix_to_jd(t: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Split Unix seconds into the (jd, fr) pair ``sgp4_array`` takes: jd ends in .5, 0 <= fr < 1.

    The split keeps full precision: jd is a whole day number and fr is computed from the seconds
    within the day, so no digits are lost adding a small fraction to a large Julian date.
    """
    tt = _as_f64(t)
    days = np.floor(tt / SECONDS_PER_DAY)
    fr = (tt - days * SECONDS_PER_DAY) / SECONDS_PER_DAY
    return days + UNIX_EPOCH_JD, fr


def jd_to_unix(jd: ArrayLike, fr: ArrayLike = 0.0) -> NDArray[np.float64]:
    """Unix seconds of a Julian date given whole (or as a jd + fr pair)."""
    return ((_as_f64(jd) - UNIX_EPOCH_JD) + _as_f64(fr)) * SECONDS_PER_DAY


@overload
def iso_to_unix(text: str) -> float: ...
@overload
def iso_to_unix(text: list[str] | tuple[str, ...] | NDArray[np.str_]) -> NDArray[np.float64]: ...
def iso_to_unix(
    text: str | list[str] | tuple[str, ...] | NDArray[np.str_],
) -> float | NDArray[np.float64]:
    """Unix seconds of ISO 8601 UTC text (``2026-03-11T20:04:34.5Z``; a date alone means midnight).

    A trailing ``Z`` or ``+00:00`` is accepted; other offsets are refused because this engine keeps
    every time in UTC (convert local times before calling).
    """
    single = isinstance(text, str)
    items = [text] if isinstance(text, str) else [str(x) for x in text]
    cleaned = []
    for item in items:
        s = item.strip()
        for suffix in ("Z", "z", "+00:00", "+0000", "-00:00"):
            if s.endswith(suffix):
                s = s[: -len(suffix)]
                break
        tail = s[10:]
        if "+" in tail or "-" in tail:
            raise OrbitInputError(f"time {item!r} has a UTC offset; give times in UTC (suffix Z)")
        cleaned.append(s.replace(" ", "T", 1))
    try:
        values = np.array(cleaned, dtype="datetime64[ns]")
    except ValueError as exc:
        raise OrbitInputError(f"not an ISO 8601 time: {exc}") from exc
    out = values.astype(np.int64).astype(np.float64) / 1e9
    if np.isnat(values).any():
        raise OrbitInputError("not an ISO 8601 time: NaT")
    return float(out[0]) if single else out


def unix_to_iso(t: float, *, digits: int = 0) -> str:
    """ISO 8601 UTC text (with ``Z``) for one Unix time, with ``digits`` decimals of seconds (0-6)."""
    if not math.isfinite(t):
        raise OrbitInputError(f"time {t!r} is not finite")
    digits = max(0, min(6, digits))
    if digits == 0:
        text = str(np.datetime64(round(t), "s"))
    elif digits <= 3:
        text = str(np.datetime64(round(t * 1e3), "ms"))[: 20 + digits]
    else:
        text = str(np.datetime64(round(t * 1e6), "us"))[: 20 + digits]
    return text + "Z"


def gmst_rad(t: ArrayLike) -> NDArray[np.float64]:
    """Greenwich mean sidereal time (IAU 1982, as SGP4's ``gstime``) in radians, in [0, 2π).

    The 86400 s/day term is applied to the seconds of the day directly so float64 keeps
    microsecond-level precision for any date (UT1 taken equal to UTC).
    """
    tt = _as_f64(t)
    dt = tt - J2000_UNIX
    tu = dt / (SECONDS_PER_DAY * 36525.0)
    seconds = (
        np.mod(dt, SECONDS_PER_DAY) + 67310.54841 + 8640184.812866 * tu + (0.093104 + -6.2e-6 * tu) * tu * tu
    )
    return np.mod(seconds, SECONDS_PER_DAY) * (2.0 * math.pi / SECONDS_PER_DAY)
