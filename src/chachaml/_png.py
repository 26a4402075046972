"""PNG bytes of images, for ``log_image`` (``chachaml.images``): backend-neutral, no store.

The PNG encoder is written with the stdlib (``zlib`` + ``struct``), so logging a numpy array
needs no Pillow; a PIL image is saved by Pillow itself. Stored with content type ``image/png``,
so the run page previews it (SPEC section 9.3).
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from chachaml.errors import InvalidValueError

__all__ = ["encode_png", "image_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# channels -> PNG colour type: greyscale, RGB, RGBA (PNG spec section 11.2.2)
_COLOUR_TYPE = {1: 0, 3: 2, 4: 6}


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels: bytes, width: int, height: int, channels: int) -> bytes:
    """A PNG file of 8-bit pixels given row by row (``height`` rows of ``width * channels`` bytes).

    Args:
        pixels: the samples, row-major, one byte each (grey; R, G, B; or R, G, B, A).
        width, height: the image size in pixels (each at least 1).
        channels: 1 (greyscale), 3 (RGB) or 4 (RGBA).

    Returns:
        the bytes of a valid PNG (no filtering, zlib level 6), readable by any decoder.

    Raises:
        InvalidValueError: the size, channels and number of bytes do not agree.
    """
    if channels not in _COLOUR_TYPE:
        raise InvalidValueError(f"a PNG has 1, 3 or 4 channels, got {channels}")
    stride = width * channels
    if width < 1 or height < 1 or len(pixels) != stride * height:
        raise InvalidValueError(
            f"{len(pixels)} bytes do not make a {width}x{height} image of {channels} channel(s)"
        )
    # Each row starts with its filter type; 0 (None) keeps the encoder trivial, zlib compresses.
    raw = b"".join(b"\x00" + pixels[i : i + stride] for i in range(0, len(pixels), stride))
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPE[channels], 0, 0, 0)
    return (
        _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")
    )


def _array_png(image: Any) -> bytes:
    """PNG bytes of a numpy array: HxW, HxWx1, HxWx3 or HxWx4; uint8, bool, or float in [0, 1]."""
    import numpy as np  # an array exists, so numpy is installed

    shape = image.shape
    if image.ndim == 3 and shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InvalidValueError(
            f"an image array has shape (H, W), (H, W, 3) or (H, W, 4), got {shape}; "
            "for (C, H, W) from a framework pass array.transpose(1, 2, 0)"
        )
    if 0 in image.shape:
        raise InvalidValueError(f"an image needs at least one pixel, got shape {shape}")
    kind = image.dtype.kind
    if kind == "b":
        image = image.astype(np.uint8) * 255
    elif kind == "f":
        lo, hi = float(np.min(image)), float(np.max(image))
        if not (lo >= 0.0 and hi <= 1.0):  # also refuses NaN
            raise InvalidValueError(
                f"a float image has values in [0, 1], got min {lo!r} and max {hi!r}; "
                "scale it (array / 255 for 0..255 data) or clip it (np.clip(array, 0, 1))"
            )
        image = np.round(image * 255).astype(np.uint8)
    elif kind in "iu":
        lo, hi = int(np.min(image)), int(np.max(image))
        if lo < 0 or hi > 255:
            raise InvalidValueError(
                f"an integer image has values in 0..255, got min {lo} and max {hi}; "
                "scale it to 0..255 (or to floats in [0, 1])"
            )
        image = image.astype(np.uint8)
    else:
        raise InvalidValueError(
            f"an image array holds uint8 or floats in [0, 1], got dtype {image.dtype}; convert it"
        )
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    return encode_png(np.ascontiguousarray(image).tobytes(), width, height, channels)


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "save")


def image_png(image: Any) -> bytes:
    """PNG bytes of a numpy array or a PIL image (``InvalidValueError`` naming the fix otherwise)."""
    if _is_pil(image):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()
    if hasattr(image, "shape") and hasattr(image, "dtype") and type(image).__module__ == "numpy":
        return _array_png(image)
    raise InvalidValueError(
        f"log_image takes a numpy array or a PIL image, got {type(image).__name__}; "
        "for a matplotlib figure use chachaml.log_figure(fig, name)"
    )
