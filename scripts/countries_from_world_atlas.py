#!/usr/bin/env python3
"""Rebuild ``src/proxima/data/countries/countries-110m.geojson`` from two pinned npm packages.

Inputs (unpacked with ``npm pack world-atlas@2.0.2 i18n-iso-countries@7.14.0`` and ``tar xzf``):

* ``world-atlas`` 2.0.2: ``countries-110m.json``, Natural Earth 4.1.0 admin-0 countries at 1:110m as
  quantized TopoJSON; each country carries its Natural Earth name and its ISO 3166-1 numeric code.
* ``i18n-iso-countries`` 7.14.0: ``codes.json`` (numeric to alpha-2) and ``langs/en.json`` (English names).

Output: a GeoJSON FeatureCollection, one Feature per country, coordinates rounded to 0.01°, properties
``code`` (ISO 3166-1 alpha-2, or a documented stand-in), ``name`` and ``aliases``. The geometry keeps
world-atlas's spherical convention: rings that cross the antimeridian are stitched (a longitude jump of
about 360° between two vertices) and Antarctica is one ring around the South Pole.

Usage: ``python3 scripts/countries_from_world_atlas.py WORLD_ATLAS_DIR I18N_ISO_COUNTRIES_DIR OUT``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Natural Earth countries without an ISO 3166-1 code: Kosovo gets the user-assigned code XK that the
# EU and IMF use; the other two keep Natural Earth's ADM0_A3 code (three letters, cannot clash).
NO_ISO_CODE = {"Kosovo": "XK", "N. Cyprus": "CYN", "Somaliland": "SOL"}


def decode_arcs(topology: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """Undo TopoJSON delta encoding and quantization: one list of (lon, lat) per arc."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[list[float]]:
    """Join a ring's arcs (a negative index means the arc reversed), round to 0.01°, drop repeats."""
    points: list[tuple[float, float]] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if not points else arc[1:])
    out: list[list[float]] = []
    for lon, lat in points:
        p = [round(lon, 2), round(lat, 2)]
        if not out or p != out[-1]:
            out.append(p)
    if out[0] != out[-1]:
        out.append(out[0])
    return out


def main(atlas_dir: Path, iso_dir: Path, out_path: Path) -> None:
    """Convert, check every country got a code, and write compact JSON."""
    topology = json.loads((atlas_dir / "countries-110m.json").read_text(encoding="utf-8"))
    codes = json.loads((iso_dir / "codes.json").read_text(encoding="utf-8"))
    english = json.loads((iso_dir / "langs" / "en.json").read_text(encoding="utf-8"))["countries"]
    alpha2_of_numeric = {numeric: alpha2 for alpha2, _alpha3, numeric, *_ in codes}
    arcs = decode_arcs(topology)
    features = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        ne_name = geometry["properties"]["name"]
        numeric = geometry.get("id")
        code = alpha2_of_numeric[numeric] if numeric is not None else NO_ISO_CODE[ne_name]
        names = english.get(code, [])
        names = [names] if isinstance(names, str) else list(names)
        # Natural Earth's short names read well ("Russia", "Taiwan") unless abbreviated ("Dem. Rep. Congo").
        name = ne_name if "." not in ne_name or not names else names[0]
        aliases = sorted({n for n in [ne_name, *names] if n != name})
        polygons = [geometry["arcs"]] if geometry["type"] == "Polygon" else geometry["arcs"]
        coordinates = [[ring(arcs, r) for r in polygon] for polygon in polygons]
        coordinates = [[r for r in polygon if len(r) >= 4] for polygon in coordinates]
        coordinates = [polygon for polygon in coordinates if polygon]
        features.append({
            "type": "Feature",
            "id": code,
            "properties": {"code": code, "name": name, "aliases": aliases},
            "geometry": {"type": "MultiPolygon", "coordinates": coordinates},
        })
    features.sort(key=lambda f: f["id"])
    if len({f["id"] for f in features}) != len(features):
        raise SystemExit("duplicate country code")
    collection = {
        "type": "FeatureCollection",
        "source": "Natural Earth 4.1.0 admin-0 countries 1:110m, via npm world-atlas@2.0.2",
        "features": features,
    }
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    # One feature per line keeps diffs readable.
    text = text.replace(',{"type":"Feature"', ',\n{"type":"Feature"')
    out_path.write_text(text + "\n", encoding="utf-8")
    print(f"{len(features)} countries, {out_path.stat().st_size} bytes -> {out_path}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
