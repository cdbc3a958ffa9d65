"""Heatmap pictures of similarity matrices, with and without matplotlib."""

import numpy as np

from keras_heuristics import _validation

# Viridis anchors (matplotlib's colour map, sampled at 9 points), as RGB.
_HEX = "440154 472c7a 3b518b 2c718e 21908d 27ad81 5cc863 aadc32 fde725"
_VIRIDIS = np.array([list(bytes.fromhex(c)) for c in _HEX.split()], float)


# Tick label size in points of `heatmap_figure` (11 px at 100 dpi).
LABEL_SIZE = 8

# The largest image `heatmap_image` renders: 2**26 pixels (8192 x 8192,
# 192 MiB as RGB uint8), far above what a dashboard shows.
MAX_PIXELS = 2**26


def _matrix(matrix):
    """A non-empty 2-D float64 array; NaN is allowed (drawn grey)."""
    m = _validation.number_array(
        "matrix", matrix, np.float64, "a 2-D array of numbers"
    )
    if m.ndim != 2 or m.size == 0:
        raise ValueError(
            f"Argument `matrix` must be a non-empty 2-D array. Received "
            f"shape={m.shape}"
        )
    return m


def _range(vmin, vmax):
    vmin = _validation.check_number("vmin", vmin)
    vmax = _validation.check_number("vmax", vmax)
    if not vmin < vmax:
        raise ValueError(
            "Arguments `vmin` and `vmax` must satisfy vmin < vmax. "
            f"Received: vmin={vmin}, vmax={vmax}"
        )
    return vmin, vmax


def fitting_cell(shape, largest=12, max_pixels=2**22):
    """The largest `cell <= largest` whose `heatmap_image` of a matrix of
    `shape` has at most `max_pixels` pixels (2**22: 2048 x 2048), or 0
    when not even one pixel a value fits."""
    rows, cols = (int(v) for v in shape)
    fit = int(np.sqrt(max_pixels / max(1, rows * cols)))
    return min(int(largest), fit)


def heatmap_image(matrix, vmin=0.0, vmax=1.0, cell=12):
    """Renders a 2-D array as an RGB uint8 image (viridis, no axes).

    Row 0 is drawn at the top; each value becomes a `cell x cell` block.
    Values are mapped linearly from [vmin, vmax] onto the colour map and
    clipped; NaN cells are grey. Needs only NumPy, so it is cheap enough
    to run at every evaluation point of a callback.

    Args:
        matrix: A non-empty 2-D array of numbers.
        vmin, vmax: Finite values mapped to the two ends of the colour map,
            `vmin < vmax`.
        cell: Side of the block of each value in pixels, an integer >= 1.
            The image, `(rows * cell) x (cols * cell)` pixels, may have at
            most `MAX_PIXELS` (2**26) pixels: lower `cell` for large
            matrices.

    Returns:
        A uint8 array of shape `(rows * cell, cols * cell, 3)`.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if `matrix` is not a non-empty 2-D array, `vmin >= vmax`
            or is not finite, `cell < 1`, or the image is too large.
    """
    m = _matrix(matrix)
    vmin, vmax = _range(vmin, vmax)
    cell = _validation.check_int("cell", cell, minimum=1)
    if m.size * cell * cell > MAX_PIXELS:
        raise ValueError(
            f"Argument `cell` is too large: a {m.shape[0]} x {m.shape[1]} "
            f"matrix with cell={cell} gives a {m.shape[0] * cell} x "
            f"{m.shape[1] * cell} image, above the limit of {MAX_PIXELS} "
            f"pixels. Received: cell={cell}"
        )
    t = np.clip((m - vmin) / (vmax - vmin), 0.0, 1.0)
    pos = np.nan_to_num(t, nan=0.0) * (len(_VIRIDIS) - 1)
    low = np.floor(pos).astype(int).clip(0, len(_VIRIDIS) - 2)
    frac = (pos - low)[..., None]
    rgb = _VIRIDIS[low] * (1 - frac) + _VIRIDIS[low + 1] * frac
    rgb[np.isnan(m)] = 128.0
    # Rounded before the blocks are repeated: the large array is uint8.
    rgb = rgb.round().astype(np.uint8)
    return np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)


def heatmap_figure(
    matrix,
    row_labels,
    col_labels,
    title="",
    xlabel="",
    ylabel="",
    vmin=0.0,
    vmax=1.0,
    ax=None,
):
    """Draws a labelled heatmap with matplotlib (imported lazily).

    The convention of the TensorBoard dashboards: row 0 (the first layer
    logged) at the top, column 0 at the left; viridis (low values dark)
    for data of one sign; for a range across 0 (`vmin < 0 < vmax`, e.g.
    a difference of two matrices) a diverging map (RdBu reversed: blue
    below 0, white at 0, red above) centred on 0 with `vmin = -vmax`.

    Args:
        matrix: A non-empty 2-D array of numbers (NaN cells are blank).
        row_labels: One label per row of `matrix`.
        col_labels: One label per column of `matrix`.
        title, xlabel, ylabel: Texts of the axes.
        vmin, vmax: Finite ends of the colour scale, `vmin < vmax`. A
            range across 0 is widened to be symmetric about 0.
        ax: Optional matplotlib axes to draw into.

    Returns:
        The matplotlib figure (use
        `keras_heuristics.tensorboard.figure_to_png` or `savefig`).

    Raises:
        TypeError: if `matrix` does not hold numbers or a label list is not
            a sequence.
        ValueError: as `heatmap_image`, or if the label counts do not
            match the shape of `matrix`.
    """
    m = _matrix(matrix)
    rows = _validation.check_labels("row_labels", row_labels, m.shape[0])
    cols = _validation.check_labels("col_labels", col_labels, m.shape[1])
    vmin, vmax = _range(vmin, vmax)

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    cmap = "viridis"
    if vmin < 0 < vmax:
        vmax = max(-vmin, vmax)
        vmin, cmap = -vmax, "RdBu_r"
    if ax is None:
        fig, ax = plt.subplots(
            figsize=(1.5 + 0.45 * m.shape[1], 1.2 + 0.4 * m.shape[0])
        )
    else:
        fig = ax.figure
    image = ax.imshow(m, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    ax.set_xticks(range(m.shape[1]))
    ax.set_xticklabels(cols, rotation=90, fontsize=LABEL_SIZE)
    ax.set_yticks(range(m.shape[0]))
    ax.set_yticklabels(rows, fontsize=LABEL_SIZE)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(image, ax=ax, fraction=0.05)
    fig.tight_layout()
    return fig
