"""Make a crew media file fit one channel: real format checked, metadata dropped, size reduced.

Images are decoded with Pillow, which lets us check what a file really is (a ``.jpg`` that is a
PNG, or bytes that are no image at all, are refused by name), refuse decompression bombs before
decoding, apply the EXIF orientation, and re-encode without metadata: EXIF (GPS position, camera
serial numbers, times), XMP, IPTC and comments are dropped; only the ICC colour profile is kept.
When the channel does not take the file's type (WebP, AVIF, GIF, TIFF...), the picture becomes a
PNG if it has transparency and the channel takes PNG, else a JPEG. A picture too heavy for the
channel first loses JPEG/WebP quality in steps, then pixels, until it fits.

Video and audio are never transcoded: the ground segment ships no ffmpeg. They are passed through
as they are when the channel takes their type and size, refused with a :class:`MediaError` saying
why otherwise, and their container metadata is left untouched.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Final

from PIL import Image, ImageOps, ImageSequence

from proxima.errors import MediaError
from proxima.ground.channels.base import Limits, MediaFile

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "MAX_PIXELS",
    "MAX_SIDE",
    "describe",
    "fit_media",
    "strip_metadata",
]

MAX_SIDE: Final = 4096
"""Longest side, in pixels, of an image handed to a channel (no network shows more)."""

MAX_PIXELS: Final = 89_478_485
"""Images with more pixels are refused before decoding (Pillow's own bomb threshold, ~ 9500 × 9500)."""

MIN_SIDE: Final = 16
"""Shrinking stops here: an image that does not fit at this size is refused."""

_QUALITIES: Final = (90, 82, 74, 66, 58, 50, 42)
"""JPEG/WebP quality steps tried at one size before the size is reduced."""

_FORMAT_TYPES: Final = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # a camera JPEG with a second (depth or preview) picture appended
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "AVIF": "image/avif",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
}
"""Pillow formats Proxima reads, and their media types."""

_WRITABLE: Final = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
"""Media types Proxima writes, and the Pillow format that writes each."""

_ALIASES: Final = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}

_EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
}

_DECODE_ERRORS: Final = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error)
"""What Pillow raises on broken or hostile input (UnidentifiedImageError is an OSError)."""


def _normal_type(content_type: str) -> str:
    ctype = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(ctype, ctype)


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Open ``data`` (header only), refusing what is no image or too many pixels to decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"refused as a decompression bomb ({exc})", name=name) from exc
    except _DECODE_ERRORS as exc:
        raise MediaError(f"not an image Proxima can read ({exc})", name=name) from exc
    if image.width * image.height > max_pixels:
        image.close()
        raise MediaError(
            f"refused as a decompression bomb: {image.width} × {image.height} pixels, "
            f"at most {max_pixels} are decoded",
            name=name,
        )
    return image


def _real_type(image: Image.Image, name: str) -> str:
    real = _FORMAT_TYPES.get(image.format or "")
    if real is None:
        raise MediaError(f"is a {image.format} image, not a format Proxima accepts", name=name)
    return real


def describe(data: bytes) -> tuple[str, int, int]:
    """The real media type, width and height of an image, read from its header only."""
    with _open(data, "<image>", MAX_PIXELS) as image:
        return _real_type(image, "<image>"), image.width, image.height


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )


def _animated(image: Image.Image) -> bool:
    """Whether ``image`` is an animation whose frames are worth keeping (not an MPO's preview)."""
    return image.format in ("GIF", "WEBP", "PNG") and getattr(image, "n_frames", 1) > 1


def _for_format(image: Image.Image, fmt: str) -> Image.Image:
    """``image`` in a mode that ``fmt`` can store (transparency flattened on white for JPEG)."""
    mode = image.mode
    if fmt == "JPEG":
        if mode in ("L", "RGB"):
            return image
        if mode == "1":
            return image.convert("L")
        if _has_alpha(image):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        if mode.startswith("I") or mode == "F":
            return _to_8bit(image).convert("RGB")
        return image.convert("RGB")
    if fmt == "PNG":
        if mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
            return image
        if mode.startswith("I") or mode == "F":
            return _to_8bit(image)
        return image.convert("RGBA" if _has_alpha(image) else "RGB")
    if fmt == "GIF":
        return image if mode in ("P", "L", "1") else image.convert("RGBA" if _has_alpha(image) else "RGB")
    # WEBP
    if mode in ("RGB", "RGBA"):
        return image
    if mode.startswith("I") or mode == "F":
        return _to_8bit(image).convert("RGB")
    return image.convert("RGBA" if _has_alpha(image) else "RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale a 16/32-bit integer or float image to 8-bit grey by its own range."""
    low, high = 0.0, 255.0
    match image.getextrema():
        case (int() | float() as lo, int() | float() as hi):
            low, high = float(lo), float(hi)
    span = high - low or 1.0
    return image.point(lambda v: (v - low) * 255.0 / span, "F").convert("L")


def _encode(
    frames: list[Image.Image], fmt: str, quality: int | None, icc: bytes | None, durations: list[int]
) -> bytes:
    """Encode ``frames`` as ``fmt`` with nothing but pixels (and the ICC profile)."""
    out = io.BytesIO()
    first = frames[0]
    params: dict[str, object] = {}
    if icc and fmt in ("JPEG", "PNG", "WEBP"):
        params["icc_profile"] = icc
    if fmt == "JPEG":
        params.update(quality=quality or 90, optimize=True, progressive=True)
    elif fmt == "WEBP":
        params.update(quality=quality or 90, method=4)
    elif fmt == "PNG":
        params.update(optimize=True)
        if first.mode == "P" and "transparency" in first.info:
            params["transparency"] = first.info["transparency"]
    if len(frames) > 1 and fmt in ("GIF", "WEBP", "PNG"):
        params.update(save_all=True, append_images=frames[1:], duration=durations, loop=0)
    first.save(out, format=fmt, **params)
    return out.getvalue()


def _scaled(frames: Iterable[Image.Image], size: tuple[int, int]) -> list[Image.Image]:
    return [f if f.size == size else f.resize(size, Image.Resampling.LANCZOS) for f in frames]


def _clean(image: Image.Image) -> Image.Image:
    """A copy of ``image`` whose metadata is gone (transparency of palette images kept)."""
    keep = {k: v for k, v in image.info.items() if k == "transparency"}
    image.info.clear()
    image.info.update(keep)
    return image


def _decode(image: Image.Image, name: str, animated: bool) -> tuple[list[Image.Image], list[int]]:
    """All frames (or the first only), oriented upright and stripped, with their durations."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    try:
        sources = ImageSequence.Iterator(image) if animated else [image]
        for frame in sources:
            durations.append(int(frame.info.get("duration", 100)))
            frame.load()
            upright = ImageOps.exif_transpose(frame.copy())
            frames.append(_clean(upright))
    except _DECODE_ERRORS as exc:
        raise MediaError(f"the image data is damaged ({exc})", name=name) from exc
    return frames, durations


def _choose_type(declared: str, alpha: bool, animated: bool, accepted: frozenset[str], name: str) -> str:
    if declared in accepted and declared in _WRITABLE:
        return declared
    if animated and "image/gif" in accepted and declared in ("image/gif", "image/webp", "image/png"):
        return "image/gif"
    order = ("image/png", "image/jpeg", "image/webp") if alpha else ("image/jpeg", "image/png", "image/webp")
    for ctype in order:
        if ctype in accepted:
            return ctype
    raise MediaError(
        f"is {declared}, and the channel takes no image type Proxima writes ({', '.join(sorted(accepted))})",
        name=name,
    )


def _renamed(name: str, ctype: str) -> str:
    path = PurePosixPath(name)
    ext = _EXTENSIONS[ctype]
    if path.suffix.lower() in (ext, ".jpeg" if ext == ".jpg" else ext):
        return name
    return f"{path.stem or 'image'}{ext}"


def _fit_image(file: MediaFile, limits: Limits, declared: str, max_side: int, max_pixels: int) -> MediaFile:
    with _open(file.data, file.name, max_pixels) as image:
        real = _real_type(image, file.name)
        if real != declared:
            raise MediaError(f"declared {declared}, but it is really {real}", name=file.name)
        animated = _animated(image)
        icc = image.info.get("icc_profile")
        frames, durations = _decode(image, file.name, animated)
    target = _choose_type(declared, _has_alpha(frames[0]), animated, limits.media_types, file.name)
    fmt = _WRITABLE[target]
    if len(frames) > 1 and fmt not in ("GIF", "WEBP", "PNG"):
        frames, durations = frames[:1], durations[:1]
    frames = [_for_format(f, fmt) for f in frames]
    width, height = frames[0].size
    scale = min(1.0, max_side / max(width, height))
    qualities: tuple[int | None, ...] = _QUALITIES if fmt in ("JPEG", "WEBP") else (None,)
    while True:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        scaled = _scaled(frames, size)
        data = b""
        for quality in qualities:
            data = _encode(scaled, fmt, quality, icc if isinstance(icc, bytes) else None, durations)
            if len(data) <= limits.max_media_bytes:
                return MediaFile(_renamed(file.name, target), target, data, file.alt)
        if max(size) <= MIN_SIDE:
            raise MediaError(
                f"cannot be made to fit {limits.max_media_bytes} bytes: still {len(data)} bytes "
                f"at {size[0]} × {size[1]} pixels",
                name=file.name,
            )
        shrink = min(0.9, max(0.5, math.sqrt(limits.max_media_bytes / len(data)) * 0.95))
        scale = max(scale * shrink, MIN_SIDE / max(width, height))


def fit_media(
    file: MediaFile, limits: Limits, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS
) -> MediaFile:
    """``file`` made to fit a channel's ``limits``, as a new :class:`MediaFile`.

    Images come back re-encoded without metadata, upright, at most ``max_side`` pixels on their
    long side and ``limits.max_media_bytes`` bytes, in a type the channel takes (the name's
    extension follows). Video and audio are not transcoded (no ffmpeg here): they are returned
    unchanged when the channel takes their type and size.

    Raises :class:`MediaError` naming the file: not what its type says, unreadable, a
    decompression bomb, an unsupported type, or too large.
    """
    declared = _normal_type(file.content_type)
    kind = declared.partition("/")[0]
    if kind == "image":
        return _fit_image(file, limits, declared, max_side, max_pixels)
    if kind not in ("video", "audio"):
        raise MediaError(f"{file.content_type!r} is not an image, video or audio type", name=file.name)
    if declared not in limits.media_types:
        raise MediaError(
            f"{declared} is not accepted by this channel (it takes {', '.join(sorted(limits.media_types))}); "
            "video and audio are not converted",
            name=file.name,
        )
    if len(file.data) > limits.max_media_bytes:
        raise MediaError(
            f"{len(file.data)} bytes of {declared}, the channel takes at most {limits.max_media_bytes}; "
            "video and audio are not re-encoded",
            name=file.name,
        )
    if declared != file.content_type:
        return MediaFile(file.name, declared, file.data, file.alt)
    return file


def strip_metadata(data: bytes, content_type: str) -> bytes:
    """``data`` without EXIF, XMP, IPTC or comments, upright, for public copies of crew images.

    A JPEG needing no rotation keeps its quantisation tables (``quality="keep"``), so stripping
    costs almost nothing in quality. Video and audio come back unchanged (no ffmpeg here).
    """
    declared = _normal_type(content_type)
    if not declared.startswith("image/"):
        return data
    name = f"<{declared}>"
    with _open(data, name, MAX_PIXELS) as image:
        real = _real_type(image, name)
        if real != declared:
            raise MediaError(f"declared {declared}, but it is really {real}", name=name)
        fmt = _WRITABLE.get(real)
        if fmt is None:
            raise MediaError(f"{real} images cannot be rewritten; convert with fit_media", name=name)
        icc = image.info.get("icc_profile")
        icc_bytes = icc if isinstance(icc, bytes) else None
        upright = image.getexif().get(0x0112, 1) in (None, 1)
        if image.format == "JPEG" and upright:
            try:
                image.load()
                _clean(image)
                out = io.BytesIO()
                params: dict[str, object] = {"quality": "keep", "subsampling": "keep"}
                if icc_bytes:
                    params["icc_profile"] = icc_bytes
                image.save(out, format="JPEG", **params)
                return out.getvalue()
            except _DECODE_ERRORS as exc:
                raise MediaError(f"the image data is damaged ({exc})", name=name) from exc
        frames, durations = _decode(image, name, _animated(image))
    frames = [_for_format(f, fmt) for f in frames]
    return _encode(frames, fmt, 92, icc_bytes, durations)
