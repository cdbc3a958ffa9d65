"""Heatmap pictures of similarity matrices, with and without matplotlib."""

import numpy as np

# Viridis anchors (matplotlib's colour map, sampled at 9 points).
_VIRIDIS = np.array(
    [
        [68, 1, 84],
        [71, 44, 122],
        [59, 81, 139],
        [44, 113, 142],
        [33, 144, 141],
        [39, 173, 129],
        [92, 200, 99],
        [170, 220, 50],
        [253, 231, 37],
    ],
    dtype=np.float64,
)


def heatmap_image(matrix, vmin=0.0, vmax=1.0, cell=12):
    """Renders a 2-D array as an RGB uint8 image (viridis, no axes).

    Row 0 is drawn at the top; each value becomes a `cell x cell` block.
    NaN cells are grey. Needs only NumPy, so it is cheap enough to run at
    every evaluation point of a callback.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(
            f"Argument `matrix` must be a non-empty 2-D array. Received "
            f"shape={m.shape}"
        )
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((m - vmin) / span, 0.0, 1.0)
    pos = np.nan_to_num(t, nan=0.0) * (len(_VIRIDIS) - 1)
    low = np.floor(pos).astype(int).clip(0, len(_VIRIDIS) - 2)
    frac = (pos - low)[..., None]
    rgb = _VIRIDIS[low] * (1 - frac) + _VIRIDIS[low + 1] * frac
    rgb[np.isnan(m)] = 128.0
    rgb = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    return rgb.round().astype(np.uint8)


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

    Returns the matplotlib figure (use
    `keras_heuristics.tensorboard.figure_to_png` or `savefig`).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    m = np.asarray(matrix, dtype=np.float64)
    if ax is None:
        fig, ax = plt.subplots(
            figsize=(1.5 + 0.45 * m.shape[1], 1.2 + 0.4 * m.shape[0])
        )
    else:
        fig = ax.figure
    image = ax.imshow(m, vmin=vmin, vmax=vmax, cmap="viridis", aspect="auto")
    ax.set_xticks(range(m.shape[1]))
    ax.set_xticklabels([str(c) for c in col_labels], rotation=90, fontsize=7)
    ax.set_yticks(range(m.shape[0]))
    ax.set_yticklabels([str(r) for r in row_labels], fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(image, ax=ax, fraction=0.05)
    fig.tight_layout()
    return fig
