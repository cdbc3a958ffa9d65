"""PNG encoding without extra dependencies, for image summaries."""

import struct
import zlib

import numpy as np


def encode_png(image):
    """Encodes an image array as PNG bytes.

    Args:
        image: A `uint8` array of shape (height, width) (grey),
            (height, width, 1), (height, width, 3) (RGB) or
            (height, width, 4) (RGBA); or a float array in [0, 1] of the same
            shapes, which is scaled to 0..255.

    Returns:
        The PNG file as `bytes`.

    Raises:
        ValueError: if the shape or value range is not one of the above.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(
            "Argument `image` must have shape (height, width) or "
            f"(height, width, 1|3|4). Received: shape={image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(
            f"Argument `image` must not be empty. Received: shape={image.shape}"
        )
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating):
            raise ValueError(
                "Argument `image` must be uint8 or float in [0, 1]. "
                f"Received: dtype={image.dtype}"
            )
        if not np.all(np.isfinite(image)) or image.min() < 0 or image.max() > 1:
            raise ValueError(
                "A float `image` must hold finite values in [0, 1]. "
                f"Received: range [{image.min()}, {image.max()}]"
            )
        image = np.round(image * 255.0).astype(np.uint8)
    height, width, channels = image.shape
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = np.concatenate(
        [np.zeros((height, 1), np.uint8), image.reshape(height, -1)], axis=1
    )

    def chunk(kind, data):
        body = kind + data
        return (
            struct.pack(">I", len(data))
            + body
            + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)),
            chunk(b"IEND", b""),
        ]
    )


def figure_to_png(figure, dpi=100):
    """Renders a matplotlib figure to PNG bytes (needs matplotlib)."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()
