"""Fitting crew media to a channel: real type checked, metadata gone, upright, small enough."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageSequence

from proxima.errors import MediaError
from proxima.ground.channels.base import Limits, MediaFile
from proxima.ground.media import describe, fit_media, strip_metadata

JPEG, PNG, WEBP, GIF = "image/jpeg", "image/png", "image/webp", "image/gif"
EVERYTHING = frozenset({JPEG, PNG, WEBP, GIF, "video/mp4"})
NO_WEBP = frozenset({JPEG, PNG, GIF, "video/mp4"})
SECRET_XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">crew-cabin-7</x:xmpmeta>'
SECRET_COMMENT = b"taken by the flight engineer"


def limits(types: frozenset[str] = EVERYTHING, max_bytes: int = 5_000_000) -> Limits:
    return Limits(max_chars=500, max_media=4, max_media_bytes=max_bytes, media_types=types)


def noise(mode: str, size: tuple[int, int], seed: int = 1) -> Image.Image:
    """An image of random pixels: incompressible, so its encoded size follows its pixel count."""
    rng = random.Random(seed)
    bands = len(Image.new(mode, (1, 1)).getbands())
    width = {"I;16": 2, "I": 4, "F": 4}.get(mode, bands)
    if mode == "1":
        return Image.frombytes("L", size, rng.randbytes(size[0] * size[1])).convert("1")
    raw = rng.randbytes(size[0] * size[1] * width)
    return Image.frombytes(mode, size, raw)


def gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Nikon"  # Make
    exif[0x0131] = "cabin camera 3"  # Software
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 24.0)
    gps[3] = "E"
    gps[4] = (2.0, 21.0, 7.0)
    return exif


def save(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def camera_jpeg(size: tuple[int, int] = (200, 100), orientation: int = 1) -> bytes:
    """A JPEG the way a camera writes one: EXIF with GPS and orientation, XMP, a comment; red top-left."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 40, 40))
    return save(image, "JPEG", exif=gps_exif(orientation), xmp=SECRET_XMP, comment=SECRET_COMMENT)


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def assert_no_metadata(data: bytes) -> None:
    image = reopen(data)
    assert "exif" not in image.info
    assert "xmp" not in image.info
    assert "comment" not in image.info
    assert len(image.getexif()) == 0
    assert len(image.getexif().get_ifd(0x8825)) == 0
    assert b"crew-cabin-7" not in data
    assert SECRET_COMMENT not in data
    assert b"Nikon" not in data
    assert b"Exif\x00\x00" not in data


def test_a_camera_jpeg_loses_gps_exif_xmp_and_comment() -> None:
    data = camera_jpeg()
    before = reopen(data)
    assert before.getexif().get_ifd(0x8825)[1] == "N"  # the fixture really carries a position
    fitted = fit_media(MediaFile("selfie.jpg", JPEG, data, {"en": "Earth"}), limits())
    assert fitted.content_type == JPEG
    assert fitted.name == "selfie.jpg"
    assert fitted.alt == {"en": "Earth"}
    assert_no_metadata(fitted.data)
    assert reopen(fitted.data).size == (200, 100)


def test_the_colour_profile_is_the_one_metadata_kept() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = save(Image.new("RGB", (40, 30), (200, 100, 50)), "JPEG", icc_profile=icc, exif=gps_exif())
    for types in (EVERYTHING, frozenset({PNG})):
        fitted = fit_media(MediaFile("tinted.jpg", JPEG, data), limits(types))
        assert reopen(fitted.data).info.get("icc_profile") == icc
        assert_no_metadata(fitted.data)


def test_orientation_is_applied_before_exif_is_dropped() -> None:
    data = camera_jpeg((200, 100), orientation=6)  # stored landscape, shown rotated 90° clockwise
    fitted = fit_media(MediaFile("window.jpg", JPEG, data), limits())
    image = reopen(fitted.data).convert("RGB")
    assert image.size == (100, 200)
    assert_no_metadata(fitted.data)
    red, _, blue = image.getpixel((95, 5))  # type: ignore[misc]
    assert red > 200 and blue < 60  # the stored top-left corner is now top-right
    red, _, blue = image.getpixel((5, 5))  # type: ignore[misc]
    assert blue > 200 and red < 60


def test_an_oversized_photo_shrinks_under_the_limit() -> None:
    data = save(noise("RGB", (900, 600)), "JPEG", quality=95)
    assert len(data) > 300_000
    fitted = fit_media(MediaFile("aurora.jpg", JPEG, data), limits(max_bytes=60_000))
    assert len(fitted.data) <= 60_000
    image = reopen(fitted.data)
    assert image.format == "JPEG"
    assert image.width / image.height == pytest.approx(1.5, rel=0.02)


def test_the_long_side_is_capped_and_the_cap_is_overridable() -> None:
    data = save(Image.new("RGB", (1200, 300), (10, 20, 30)), "PNG")
    fitted = fit_media(MediaFile("strip.png", PNG, data), limits(), max_side=400)
    assert reopen(fitted.data).size == (400, 100)
    untouched = fit_media(MediaFile("strip.png", PNG, data), limits())
    assert reopen(untouched.data).size == (1200, 300)


def test_webp_becomes_jpeg_for_a_channel_without_webp() -> None:
    data = save(noise("RGB", (64, 48)), "WEBP", exif=gps_exif())
    fitted = fit_media(MediaFile("moon.webp", WEBP, data), limits(NO_WEBP))
    assert fitted.content_type == JPEG
    assert fitted.name == "moon.jpg"
    assert reopen(fitted.data).format == "JPEG"
    assert_no_metadata(fitted.data)
    kept = fit_media(MediaFile("moon.webp", WEBP, data), limits())
    assert kept.content_type == WEBP
    assert reopen(kept.data).format == "WEBP"
    assert_no_metadata(kept.data)


def test_png_with_transparency_stays_png_and_keeps_its_alpha() -> None:
    image = Image.new("RGBA", (32, 32), (0, 255, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 16, 16))
    data = save(image, "PNG", exif=gps_exif())
    fitted = fit_media(MediaFile("badge.png", PNG, data), limits(frozenset({JPEG, PNG})))
    assert fitted.content_type == PNG
    out = reopen(fitted.data)
    assert out.mode == "RGBA"
    assert out.getpixel((20, 20))[3] == 0  # type: ignore[index]
    assert out.getpixel((2, 2)) == (255, 0, 0, 255)
    assert_no_metadata(fitted.data)


def test_transparency_is_flattened_on_white_when_only_jpeg_is_taken() -> None:
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    fitted = fit_media(MediaFile("badge.png", PNG, save(image, "PNG")), limits(frozenset({JPEG})))
    assert (fitted.content_type, fitted.name) == (JPEG, "badge.jpg")
    red, green, blue = reopen(fitted.data).convert("RGB").getpixel((10, 10))  # type: ignore[misc]
    assert min(red, green, blue) > 245


def test_an_animated_gif_keeps_its_frames_only_where_gifs_are_taken() -> None:
    frames = [Image.new("RGB", (20, 20), (i * 80, 0, 0)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=120, comment=b"x" * 9)
    file = MediaFile("spin.gif", GIF, out.getvalue())
    assert reopen(file.data).n_frames == 3  # type: ignore[attr-defined]
    fitted = fit_media(file, limits())
    assert b"xxxxxxxxx" not in fitted.data
    kept = reopen(fitted.data)
    assert kept.format == "GIF"
    assert sum(1 for _ in ImageSequence.Iterator(kept)) == 3
    flat = fit_media(file, limits(frozenset({JPEG})))
    assert flat.content_type == JPEG
    assert reopen(flat.data).size == (20, 20)


def test_a_png_named_jpeg_is_refused_naming_the_file_and_its_real_type() -> None:
    data = save(Image.new("RGB", (8, 8)), "PNG")
    with pytest.raises(MediaError) as caught:
        fit_media(MediaFile("selfie.jpg", JPEG, data), limits())
    assert caught.value.name == "selfie.jpg"
    assert "selfie.jpg" in str(caught.value)
    assert "image/png" in str(caught.value)
    with pytest.raises(MediaError, match=r"really image/png"):
        strip_metadata(data, JPEG)


def test_random_bytes_are_refused_naming_the_file() -> None:
    garbage = random.Random(7).randbytes(5000)
    with pytest.raises(MediaError, match=r"^noise\.jpg: not an image"):
        fit_media(MediaFile("noise.jpg", JPEG, garbage), limits())
    truncated = camera_jpeg()[:300]
    with pytest.raises(MediaError, match=r"^cut\.jpg: "):
        fit_media(MediaFile("cut.jpg", JPEG, truncated), limits())


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` × ``height`` pixels, with a few bytes of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = png_header_only(100_000, 100_000)
    with pytest.raises(MediaError, match=r"^bomb\.png: refused as a decompression bomb"):
        fit_media(MediaFile("bomb.png", PNG, bomb), limits())
    between = png_header_only(10_000, 10_000)  # over the default cap, under Pillow's hard error
    with pytest.raises(MediaError, match="decompression bomb"):
        fit_media(MediaFile("big.png", PNG, between), limits())
    small_cap = save(Image.new("L", (200, 200)), "PNG")
    with pytest.raises(MediaError, match=r"200 × 200 pixels, at most 10000"):
        fit_media(MediaFile("tile.png", PNG, small_cap), limits(), max_pixels=10_000)


def test_video_and_audio_pass_through_or_are_refused_with_the_reason() -> None:
    clip = MediaFile("launch.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    assert fit_media(clip, limits(max_bytes=5000)) is clip
    with pytest.raises(MediaError, match=r"^launch\.mp4: 2012 bytes of video/mp4, .* at most 1000"):
        fit_media(clip, limits(max_bytes=1000))
    voice = MediaFile("hello.ogg", "audio/ogg", b"OggS" + bytes(100))
    with pytest.raises(MediaError, match=r"audio/ogg is not accepted by this channel"):
        fit_media(voice, limits())
    with pytest.raises(MediaError, match="not an image, video or audio"):
        fit_media(MediaFile("notes.txt", "text/plain", b"hi"), limits())


def test_strip_metadata_keeps_pixels_and_drops_gps() -> None:
    data = camera_jpeg((120, 80))
    stripped = strip_metadata(data, JPEG)
    assert_no_metadata(stripped)
    assert reopen(stripped).size == (120, 80)
    rotated = strip_metadata(camera_jpeg((120, 80), orientation=8), JPEG)
    assert_no_metadata(rotated)
    assert reopen(rotated).size == (80, 120)
    png = strip_metadata(save(Image.new("RGB", (9, 9)), "PNG", exif=gps_exif()), PNG)
    assert_no_metadata(png)
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(10)
    assert strip_metadata(video, "video/mp4") == video


def test_describe_reads_the_real_type_and_size() -> None:
    assert describe(camera_jpeg((30, 20))) == (JPEG, 30, 20)
    assert describe(save(Image.new("RGBA", (5, 7)), "WEBP")) == (WEBP, 5, 7)
    with pytest.raises(MediaError):
        describe(b"GIF89a but not really")


SOURCES = {
    "PNG": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"],
    "TIFF": ["I", "F", "CMYK", "RGB", "LA"],
    "JPEG": ["L", "RGB", "CMYK"],
    "WEBP": ["RGB", "RGBA"],
    "GIF": ["P", "L"],
}
TYPE_SETS = [EVERYTHING, NO_WEBP, frozenset({JPEG}), frozenset({PNG}), frozenset({WEBP, PNG})]


@st.composite
def images(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(sorted(SOURCES)))
    mode = draw(st.sampled_from(SOURCES[fmt]))
    size = (draw(st.integers(1, 96)), draw(st.integers(1, 96)))
    seed = draw(st.integers(0, 2**16))
    # Random bits as floats include NaNs: float pictures are made from grey levels instead.
    image = noise("L", size, seed).convert("F") if mode == "F" else noise(mode, size, seed)
    return {"PNG": PNG, "JPEG": JPEG, "WEBP": WEBP, "GIF": GIF, "TIFF": "image/tiff"}[fmt], save(image, fmt)


@settings(max_examples=60, deadline=None)
@given(images(), st.sampled_from(TYPE_SETS), st.integers(6_000, 40_000), st.integers(16, 200))
def test_any_small_image_fits_and_decodes(
    source: tuple[str, bytes], types: frozenset[str], max_bytes: int, max_side: int
) -> None:
    ctype, data = source
    fitted = fit_media(MediaFile("in", ctype, data), limits(types, max_bytes), max_side=max_side)
    assert fitted.content_type in types
    assert len(fitted.data) <= max_bytes
    image = reopen(fitted.data)
    assert {"JPEG": JPEG, "PNG": PNG, "WEBP": WEBP, "GIF": GIF}[image.format or ""] == fitted.content_type
    assert max(image.size) <= max_side
    assert "exif" not in image.info
