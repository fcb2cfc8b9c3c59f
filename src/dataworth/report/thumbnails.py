"""Thumbnails of image rows: which rows are square greyscale images, and an 8-bit greyscale PNG
encoder (zlib and struct, no image library) whose output the page embeds as ``data:`` URLs."""

from __future__ import annotations

import base64
import math
import struct
import zlib

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.errors import DataworthError

_F64 = NDArray[np.float64]


def png_gray(pixels: NDArray[np.uint8]) -> bytes:
    """An 8-bit greyscale PNG of a 2-D uint8 array (no dependency but zlib).

    Examples
    --------
    >>> png_gray(np.zeros((2, 3), dtype=np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    img = np.asarray(pixels)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise DataworthError(f"pixels must be a 2-D uint8 array; got {img.dtype} {img.shape}.")
    h, w = img.shape
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), img], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def image_shape_of(X: ArrayLike) -> tuple[int, int] | None:
    """(side, side) when the rows look like square greyscale images, else None.

    Rule: a square number of features with side >= 8, every value in [0, 255] and not all zero
    (digits: 64 features in [0, 16] -> 8x8).

    Examples
    --------
    >>> image_shape_of(np.full((2, 64), 3.0)), image_shape_of(np.ones((2, 30)))
    ((8, 8), None)
    """
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        return None
    side = math.isqrt(arr.shape[1])
    if side < 8 or side * side != arr.shape[1]:
        return None
    if arr.min() < 0 or arr.max() > 255 or arr.max() == 0:
        return None
    return side, side


def thumbnail_cells(X: _F64, shape: tuple[int, int]) -> list[str]:
    """data: URIs of each row as a greyscale image, ink (large values) dark."""
    top = float(X.max()) or 1.0
    gray = np.rint(255.0 * (1.0 - np.clip(X, 0.0, top) / top)).astype(np.uint8)
    gray = gray.reshape(X.shape[0], *shape)
    return [
        "data:image/png;base64," + base64.b64encode(png_gray(img)).decode("ascii") for img in gray
    ]
