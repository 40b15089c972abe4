"""Element readers and writer: TLE/3LE, Alpha-5, OMM in JSON/XML/KVN/CSV, errors naming line and field."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.errors import ElementsError, OrbitInputError
from proxima.orbit.elements import (
    Elements,
    GeoRelay,
    alpha5_to_int,
    elements_age_days,
    format_tle,
    int_to_alpha5,
    parse_elements,
    parse_omm,
    parse_tle,
)
from proxima.orbit.timescale import iso_to_unix

ISS_3LE = """ISS (ZARYA)             
1 25544U 98067A   26070.83651154  .00008338  00000+0  16153-3 0  9998
2 25544  51.6324  61.7417 0007972 182.2925 177.8028 15.48586968556664
"""  # noqa: W291 - CelesTrak pads names to 24 columns

# The same element set as CCSDS OMM, in CelesTrak's encodings (epoch = 26070.83651154 to the µs).
ISS_EPOCH = "2026-03-11T20:04:34.597056"
ISS_FIELDS = {
    "OBJECT_NAME": "ISS (ZARYA)",
    "OBJECT_ID": "1998-067A",
    "EPOCH": ISS_EPOCH,
    "MEAN_MOTION": "15.48586968",
    "ECCENTRICITY": ".0007972",
    "INCLINATION": "51.6324",
    "RA_OF_ASC_NODE": "61.7417",
    "ARG_OF_PERICENTER": "182.2925",
    "MEAN_ANOMALY": "177.8028",
    "EPHEMERIS_TYPE": "0",
    "CLASSIFICATION_TYPE": "U",
    "NORAD_CAT_ID": "25544",
    "ELEMENT_SET_NO": "999",
    "REV_AT_EPOCH": "55666",
    "BSTAR": ".16153E-3",
    "MEAN_MOTION_DOT": ".8338E-4",
    "MEAN_MOTION_DDOT": "0",
}


def omm_json(fields: dict[str, str] = ISS_FIELDS) -> str:
    record = {
        k: (float(v) if k not in {"OBJECT_NAME", "OBJECT_ID", "EPOCH", "CLASSIFICATION_TYPE"} else v)
        for k, v in fields.items()
    }
    return json.dumps([record], indent=1)


def omm_xml(fields: dict[str, str] = ISS_FIELDS) -> str:
    meta = ["OBJECT_NAME", "OBJECT_ID"]
    mean = [
        "EPOCH",
        "MEAN_MOTION",
        "ECCENTRICITY",
        "INCLINATION",
        "RA_OF_ASC_NODE",
        "ARG_OF_PERICENTER",
        "MEAN_ANOMALY",
    ]
    tle = [k for k in fields if k not in meta and k not in mean]

    def tags(keys: list[str]) -> str:
        return "\n".join(f"        <{k}>{fields[k]}</{k}>" for k in keys if k in fields)

    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ndm xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<omm id="CCSDS_OMM_VERS" version="2.0">
<header><CREATION_DATE/><ORIGINATOR/></header>
<body>
  <segment>
    <metadata>
{tags(meta)}
        <CENTER_NAME>EARTH</CENTER_NAME>
        <REF_FRAME>TEME</REF_FRAME>
        <TIME_SYSTEM>UTC</TIME_SYSTEM>
        <MEAN_ELEMENT_THEORY>SGP4</MEAN_ELEMENT_THEORY>
    </metadata>
    <data>
      <meanElements>
{tags(mean)}
      </meanElements>
      <tleParameters>
{tags(tle)}
      </tleParameters>
    </data>
  </segment>
</body>
</omm>
</ndm>
"""


def omm_kvn(fields: dict[str, str] = ISS_FIELDS) -> str:
    lines = ["CCSDS_OMM_VERS = 2.0", "COMMENT produced for a test", "CREATION_DATE = 2026-03-12T00:00:00"]
    lines += [f"{k:<20} = {v}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def omm_csv(fields: dict[str, str] = ISS_FIELDS) -> str:
    return ",".join(fields) + "\n" + ",".join(fields.values()) + "\n"


ENCODERS = {"json": omm_json, "xml": omm_xml, "kvn": omm_kvn, "csv": omm_csv}


def states(e: Elements, minutes: np.ndarray) -> np.ndarray:
    sat = e.satrec()
    jd = np.full(minutes.shape, sat.jdsatepoch)
    fr = sat.jdsatepochF + minutes / 1440.0
    err, r, _ = sat.sgp4_array(jd, fr)
    assert not err.any()
    return np.asarray(r)


# ---------------------------------------------------------------- TLE


def test_parse_3le_fields() -> None:
    (e,) = parse_tle(ISS_3LE, "iss.tle")
    assert e.name == "ISS (ZARYA)"
    assert e.catalog == "25544" and e.catalog_number == 25544
    assert e.intl_designator == "98067A"
    assert e.epoch_unix == pytest.approx(iso_to_unix(ISS_EPOCH), abs=1e-6)
    assert (e.inclination_deg, e.raan_deg, e.eccentricity) == (51.6324, 61.7417, 0.0007972)
    assert e.mean_motion_rev_day == 15.48586968
    assert e.bstar == pytest.approx(0.16153e-3)
    assert e.mean_motion_dot == pytest.approx(0.00008338)
    assert e.rev_at_epoch == 55666 and e.element_set_no == 999


def test_two_line_and_zero_prefixed_names_and_blank_lines() -> None:
    lines = ISS_3LE.splitlines()
    two = parse_tle("\n".join(lines[1:]))
    assert two[0].name == "25544"
    zero = parse_tle("\n\n0 ISS (ZARYA)\n\n" + "\n".join(lines[1:]) + "\n\n" + ISS_3LE)
    assert [e.name for e in zero] == ["ISS (ZARYA)", "ISS (ZARYA)"]


def test_format_reproduces_the_published_lines() -> None:
    (e,) = parse_tle(ISS_3LE)
    name, l1, l2 = format_tle(e)
    assert (l1, l2) == tuple(ISS_3LE.splitlines()[1:])
    assert name == "ISS (ZARYA)"


def test_satrec_matches_sgp4s_own_tle_reader() -> None:
    from sgp4.api import Satrec

    (e,) = parse_tle(ISS_3LE)
    theirs = Satrec.twoline2rv(*ISS_3LE.splitlines()[1:])
    ours = e.satrec()
    assert ours.jdsatepoch + ours.jdsatepochF == pytest.approx(
        theirs.jdsatepoch + theirs.jdsatepochF, abs=1e-11
    )
    for minutes in (0.0, 90.0, 1440.0):
        assert np.allclose(ours.sgp4_tsince(minutes)[1], theirs.sgp4_tsince(minutes)[1], atol=1e-6)


@st.composite
def element_sets(draw: st.DrawFn) -> Elements:
    def fixed(lo: int, hi: int, scale: float) -> float:
        return draw(st.integers(lo, hi)) / scale

    def implied() -> float:
        m = draw(st.integers(0, 99999))
        ex = draw(st.integers(-9, 5))
        if m == 0:
            return 0.0
        return float(f"{draw(st.sampled_from(['', '-']))}0.{m:05d}e{ex}")

    year = draw(st.integers(1957, 2056))
    day = draw(st.integers(100_000_000, 365_99999999)) / 1e8
    from proxima.orbit.elements import _epoch_from_tle

    catalog = draw(st.integers(0, 339999))
    ndot = draw(st.integers(-99999999, 99999999)) / 1e8
    return Elements(
        name=draw(st.text("ABC0129 ()-", min_size=1, max_size=24)).strip() or "X",
        catalog=int_to_alpha5(catalog),
        intl_designator=draw(st.from_regex(r"\d{5}[A-Z]{1,3}", fullmatch=True)),
        epoch_unix=_epoch_from_tle(year % 100, day),
        inclination_deg=fixed(0, 1800000, 1e4),
        raan_deg=fixed(0, 3599999, 1e4),
        eccentricity=fixed(0, 9999999, 1e7),
        arg_perigee_deg=fixed(0, 3599999, 1e4),
        mean_anomaly_deg=fixed(0, 3599999, 1e4),
        mean_motion_rev_day=fixed(1, 1799999999, 1e8),
        mean_motion_dot=ndot,
        mean_motion_ddot=implied(),
        bstar=implied(),
        classification=draw(st.sampled_from("UCS")),
        ephemeris_type=draw(st.integers(0, 9)),
        element_set_no=draw(st.integers(0, 9999)),
        rev_at_epoch=draw(st.integers(0, 99999)),
    )


@settings(max_examples=300, deadline=None)
@given(element_sets())
def test_tle_round_trip(e: Elements) -> None:
    name, l1, l2 = format_tle(e)
    assert len(l1) == len(l2) == 69
    (back,) = parse_tle(f"{name}\n{l1}\n{l2}\n")
    assert back.epoch_unix == pytest.approx(e.epoch_unix, abs=1e-5)
    assert back == Elements(**{**_fields(e), "epoch_unix": back.epoch_unix})
    assert format_tle(back) == (name, l1, l2)


def _fields(e: Elements) -> dict[str, object]:
    return {f: getattr(e, f) for f in e.__dataclass_fields__}


def test_alpha5() -> None:
    assert alpha5_to_int("A0001") == 100001
    assert alpha5_to_int("Z9999") == 339999
    assert alpha5_to_int("J0000") == 180000  # I is skipped
    assert int_to_alpha5(100001) == "A0001"
    assert int_to_alpha5(25544) == "25544"
    with pytest.raises(OrbitInputError):
        int_to_alpha5(340000)
    for n in (100000, 123456, 234567, 339999):
        assert alpha5_to_int(int_to_alpha5(n)) == n
    lines = ISS_3LE.splitlines()[1:]
    l1 = lines[0][:2] + "A0001" + lines[0][7:68]
    l2 = lines[1][:2] + "A0001" + lines[1][7:68]
    from proxima.orbit.elements import _checksum

    text = f"{l1}{_checksum(l1)}\n{l2}{_checksum(l2)}\n"
    (e,) = parse_tle(text)
    assert e.catalog == "A0001" and e.catalog_number == 100001
    assert e.satrec().satnum == 100001
    assert format_tle(e)[1] == text.splitlines()[0]


# ---------------------------------------------------------------- TLE errors


def test_checksum_error_names_line_and_field() -> None:
    bad = ISS_3LE.replace("15.48586968556664", "15.48586968556665")
    with pytest.raises(ElementsError) as info:
        parse_tle(bad, "iss.tle")
    err = info.value
    assert (err.source, err.line, err.field) == ("iss.tle", 3, "checksum")
    assert str(err) == "iss.tle line 3 (checksum): checksum is 5, the line sums to 4"


def test_bad_field_is_named() -> None:
    bad = ISS_3LE.replace(" 51.6324 ", " 51.6X24 ")
    from proxima.orbit.elements import _checksum

    l0, l1, l2 = bad.splitlines()
    l2 = l2[:68] + str(_checksum(l2))
    with pytest.raises(ElementsError) as info:
        parse_tle(f"{l0}\n{l1}\n{l2}\n", "x.tle")
    assert (info.value.line, info.value.field) == (3, "inclination")


def test_short_line_and_mismatched_catalog() -> None:
    with pytest.raises(ElementsError, match=r"line 2 .*68 characters") as info:
        parse_tle(ISS_3LE.replace("0  9998", "0 9998"))
    assert info.value.field == "length"
    l0, l1, l2 = ISS_3LE.splitlines()
    from proxima.orbit.elements import _checksum

    l2 = l2.replace("2 25544", "2 25545")[:68]
    with pytest.raises(ElementsError) as info:
        parse_tle(f"{l0}\n{l1}\n{l2}{_checksum(l2)}\n")
    assert (info.value.line, info.value.field) == (3, "catalog number")


@pytest.mark.parametrize("fmt", ["tle", "json", "xml", "kvn", "csv"])
def test_every_parser_reads_whole_text_and_names_a_trailing_garbage_line(fmt: str) -> None:
    text = ISS_3LE if fmt == "tle" else ENCODERS[fmt]()
    (e,) = parse_elements(text, f"iss.{fmt}")
    assert e.catalog_number == 25544
    garbage = text + "this is not an element line\n"
    n = len(garbage.splitlines())
    with pytest.raises(ElementsError) as info:
        parse_elements(garbage, f"iss.{fmt}")
    assert info.value.line == n, str(info.value)
    assert str(info.value).startswith(f"iss.{fmt} line {n}")


# ---------------------------------------------------------------- OMM


@pytest.mark.parametrize("fmt", ["json", "xml", "kvn", "csv"])
def test_omm_gives_the_same_orbit_as_the_tle(fmt: str) -> None:
    (tle,) = parse_tle(ISS_3LE)
    (omm,) = parse_omm(ENCODERS[fmt](), f"iss.{fmt}", None)
    (forced,) = parse_omm(ENCODERS[fmt](), f"iss.{fmt}", fmt)  # type: ignore[arg-type]
    assert omm == forced
    assert omm.name == "ISS (ZARYA)" and omm.intl_designator == "98067A" and omm.catalog == "25544"
    assert omm.rev_at_epoch == 55666
    # The OMM epoch is printed to the microsecond: 0.5 µs at 7.7 km/s is 4 mm.
    minutes = np.linspace(-1440.0, 1440.0, 97)
    assert np.abs(states(omm, minutes) - states(tle, minutes)).max() < 1e-5


def test_celestrak_json_numbers_and_several_records() -> None:
    record = json.loads(omm_json())[0]
    two = json.dumps([record, {**record, "OBJECT_NAME": "COPY", "NORAD_CAT_ID": 400000}])
    a, b = parse_omm(two)
    assert a.catalog_number == 25544
    assert b.name == "COPY" and b.catalog == "400000" and b.catalog_number == 400000
    with pytest.raises(OrbitInputError):
        format_tle(b)


@pytest.mark.parametrize("fmt", ["json", "xml", "kvn", "csv"])
@pytest.mark.parametrize("missing", ["BSTAR", "EPOCH", "MEAN_MOTION"])
def test_missing_omm_field_is_named(fmt: str, missing: str) -> None:
    fields = {k: v for k, v in ISS_FIELDS.items() if k != missing}
    with pytest.raises(ElementsError) as info:
        parse_omm(ENCODERS[fmt](fields), f"iss.{fmt}")
    assert info.value.field == missing
    assert f"OMM field {missing} is missing" in str(info.value)
    assert info.value.line is not None


def test_omm_bad_values() -> None:
    with pytest.raises(ElementsError, match="ECCENTRICITY"):
        parse_omm(omm_kvn({**ISS_FIELDS, "ECCENTRICITY": "1.5"}))
    with pytest.raises(ElementsError, match="EPOCH") as info:
        parse_omm(omm_kvn({**ISS_FIELDS, "EPOCH": "yesterday"}), "x.kvn")
    assert info.value.field == "EPOCH"
    with pytest.raises(ElementsError, match="not valid JSON"):
        parse_omm("[{]", "x.json")
    with pytest.raises(ElementsError, match="is it a TLE"):
        parse_omm(ISS_3LE, "x.tle", None)


def test_kvn_units_in_brackets_are_ignored() -> None:
    text = omm_kvn().replace("INCLINATION          = 51.6324", "INCLINATION = 51.6324 [deg]")
    assert parse_omm(text)[0].inclination_deg == 51.6324


# ---------------------------------------------------------------- small things


def test_geo_relay_and_age() -> None:
    assert GeoRelay("TDRS West", 189.0).longitude_deg == pytest.approx(-171.0)
    with pytest.raises(OrbitInputError):
        GeoRelay("bad", 400.0)
    (e,) = parse_tle(ISS_3LE)
    assert elements_age_days(e, e.epoch_unix + 1.5 * 86400) == pytest.approx(1.5)
    assert elements_age_days(e, e.epoch_unix - 86400) == pytest.approx(-1.0)
