"""Loading element sets from the shipped snapshot, files and directories, with ages and warnings."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING

import pytest

from proxima.errors import ElementsError, OrbitInputError
from proxima.orbit.elements import format_tle
from proxima.orbit.propagate import propagate
from proxima.orbit.timescale import iso_to_unix
from proxima.runtime.elements import StaleElementsWarning, load_elements

if TYPE_CHECKING:
    from pathlib import Path

SNAPSHOT_EPOCH = iso_to_unix("2026-03-11T20:04:34.597056Z")  # the ISS set in the snapshot


def test_snapshot_loads_with_ages() -> None:
    now = SNAPSHOT_EPOCH + 86400.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_elements(now_unix=now, max_age_days=10.0)  # TDRS 3 is 6 days older
    names = [e.name for e in loaded.elements]
    assert names[0] == "ISS (ZARYA)" and {"TDRS 3", "TDRS 5", "TDRS 6", "TDRS 7", "TDRS 8"} <= set(names)
    assert loaded.age_days[0] == pytest.approx(1.0, abs=1e-9)
    assert loaded.oldest_age_days == pytest.approx(loaded.age_days[names.index("TDRS 3")])
    assert all(s == "proxima:data/elements/stations-2026-03-11.tle" for s in loaded.sources)
    iss = loaded.find("iss (zarya)")
    assert loaded.find("25544") is iss and loaded.find("ISS") is iss
    with pytest.raises(OrbitInputError, match="no element set named 'HUBBLE'"):
        loaded.find("HUBBLE")
    # The relays really are geosynchronous: about 35,786 km up, within their inclination.
    for e in loaded.elements[1:]:
        lat, _, alt = propagate(e, [e.epoch_unix]).geodetic()
        assert abs(float(alt[0, 0]) - 35786.0) < 300.0
        assert abs(float(lat[0, 0])) <= e.inclination_deg + 0.1


def test_stale_snapshot_warns() -> None:
    with pytest.warns(StaleElementsWarning, match=r"ISS|TDRS.* days old \(limit 7\)"):
        loaded = load_elements(now_unix=SNAPSHOT_EPOCH + 30 * 86400.0)
    assert loaded.age_days[0] == pytest.approx(30.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_elements(now_unix=SNAPSHOT_EPOCH + 30 * 86400.0, max_age_days=None)
        load_elements(now_unix=SNAPSHOT_EPOCH + 30 * 86400.0, max_age_days=40.0)


def test_user_file_and_directory(tmp_path: Path) -> None:
    snapshot = load_elements(now_unix=SNAPSHOT_EPOCH, max_age_days=None)
    iss = snapshot.elements[0]
    tle = tmp_path / "iss.tle"
    tle.write_text("\n".join(format_tle(iss)) + "\n", encoding="utf-8")
    one = load_elements(tle, now_unix=SNAPSHOT_EPOCH + 3600.0)
    assert one.elements == (iss,) and one.sources == (str(tle),)
    assert one.age_days[0] == pytest.approx(1 / 24)

    omm = tmp_path / "tdrs.json"
    tdrs = snapshot.elements[1]
    omm.write_text(
        json.dumps(
            [
                {
                    "OBJECT_NAME": tdrs.name,
                    "OBJECT_ID": "1988-091B",
                    "EPOCH": "2026-03-05T19:09:20.611872",
                    "MEAN_MOTION": tdrs.mean_motion_rev_day,
                    "ECCENTRICITY": tdrs.eccentricity,
                    "INCLINATION": tdrs.inclination_deg,
                    "RA_OF_ASC_NODE": tdrs.raan_deg,
                    "ARG_OF_PERICENTER": tdrs.arg_perigee_deg,
                    "MEAN_ANOMALY": tdrs.mean_anomaly_deg,
                    "NORAD_CAT_ID": 19548,
                    "BSTAR": 0,
                    "MEAN_MOTION_DOT": tdrs.mean_motion_dot,
                    "MEAN_MOTION_DDOT": 0,
                }
            ]
        ),
        encoding="utf-8",
    )
    (tmp_path / "README.md").write_text("not elements", encoding="utf-8")
    both = load_elements(tmp_path, now_unix=SNAPSHOT_EPOCH, max_age_days=30.0)
    assert [e.name for e in both.elements] == ["ISS (ZARYA)", "TDRS 3"]  # sorted by file name
    assert both.sources == (str(tle), str(omm))
    assert both.elements[1].epoch_unix == pytest.approx(tdrs.epoch_unix, abs=1e-3)


def test_bad_files_give_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tle"
    good = "\n".join(format_tle(load_elements(now_unix=SNAPSHOT_EPOCH, max_age_days=None).elements[0]))
    bad.write_text(good[:-1] + ("0" if good[-1] != "0" else "1") + "\n", encoding="utf-8")
    with pytest.raises(ElementsError) as info:
        load_elements(bad, now_unix=SNAPSHOT_EPOCH)
    message = str(info.value)
    assert message.startswith(f"{bad} line 3 (checksum): checksum is ")
    assert "\n" not in message
    with pytest.raises(OrbitInputError, match="does not exist"):
        load_elements(tmp_path / "missing.tle", now_unix=SNAPSHOT_EPOCH)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OrbitInputError, match="no element files"):
        load_elements(empty, now_unix=SNAPSHOT_EPOCH)
    blank = tmp_path / "blank.tle"
    blank.write_text("\n\n", encoding="utf-8")
    with pytest.raises(OrbitInputError, match="no element sets"):
        load_elements(blank, now_unix=SNAPSHOT_EPOCH)
    binary = tmp_path / "binary.tle"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ElementsError, match="not UTF-8"):
        load_elements(binary, now_unix=SNAPSHOT_EPOCH)
