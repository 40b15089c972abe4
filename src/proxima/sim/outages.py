"""Link outages as contact plan edits: cut spans out of the contacts of one node.

Used to model what the geometry alone does not show, such as the ISS's Ku-band antenna being
blocked by the station's own structure at the same phases of every orbit
(:func:`periodic_windows`), or unplanned losses of signal (spans the caller draws from a seed).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from proxima.errors import LocalError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from proxima.routing.contacts import Contact, ContactPlan

__all__ = ["cut_plan", "merge_spans", "periodic_windows"]


def periodic_windows(
    start_ms: int, end_ms: int, period_ms: int, windows: Sequence[tuple[int, int]], *, phase_ms: int = 0
) -> list[tuple[int, int]]:
    """Spans ``(offset, duration)`` repeated every ``period_ms`` from ``start_ms + phase_ms``,
    clipped to [start_ms, end_ms): a deterministic blockage schedule."""
    if period_ms <= 0:
        raise LocalError(f"a blockage period must be > 0 ms, not {period_ms}")
    for offset, duration in windows:
        if offset < 0 or duration <= 0 or offset + duration > period_ms:
            raise LocalError(f"blockage window ({offset}, {duration}) ms must fit in a {period_ms} ms period")
    out: list[tuple[int, int]] = []
    t = start_ms + phase_ms % period_ms - period_ms  # the period that may overlap the start
    while t < end_ms:
        for offset, duration in windows:
            a, b = max(start_ms, t + offset), min(end_ms, t + offset + duration)
            if a < b:
                out.append((a, b))
        t += period_ms
    return merge_spans(out)


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans covering the same time."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _cut(c: Contact, spans: list[tuple[int, int]], starts: list[int]) -> list[Contact]:
    pieces: list[Contact] = []
    t = c.start_ms
    i = max(0, bisect.bisect_right(starts, c.start_ms) - 1)
    while i < len(spans) and spans[i][0] < c.end_ms:
        a, b = spans[i]
        if b > t:
            if a > t:
                pieces.append(c._replace(start_ms=t, end_ms=a))
            t = max(t, b)
        i += 1
    if t < c.end_ms:
        pieces.append(c._replace(start_ms=t, end_ms=c.end_ms))
    return pieces


def cut_plan(plan: ContactPlan, node: int, spans: Iterable[tuple[int, int]]) -> ContactPlan:
    """``plan`` with every contact from or to ``node`` interrupted during ``spans`` (DTN ms).

    A contact is split around each span; pieces of no length are dropped. Ranges are kept (the
    light time does not change when the link is blocked).
    """
    merged = merge_spans(spans)
    if not merged:
        return plan
    starts = [a for a, _ in merged]
    contacts: list[Contact] = []
    for c in plan.contacts:
        if node in (c.from_node, c.to_node):
            contacts.extend(_cut(c, merged, starts))
        else:
            contacts.append(c)
    return plan.replace(contacts=contacts)
