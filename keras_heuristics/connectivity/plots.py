"""Matplotlib pictures of path profiles and loss planes."""

import numpy as np

from keras_heuristics.connectivity.evaluation import PathProfile
from keras_heuristics.connectivity.plane import PlaneResult


def _axes(ax, figsize):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    if ax is None:
        figure, ax = plt.subplots(figsize=figsize)
    else:
        figure = ax.figure
    return figure, ax


def plot_profiles(profiles, metric="loss", ax=None, title=None):
    """Draws a metric along several paths (e.g. the curve and the line).

    Args:
        profiles: Dict label -> `PathProfile` (or a list, labelled by
            their `path`).
        metric: The metric to draw.
        ax: Optional matplotlib axes.
        title: Optional title.

    Returns:
        The matplotlib figure.
    """
    if isinstance(profiles, PathProfile):
        profiles = {profiles.path: profiles}
    elif isinstance(profiles, (list, tuple)):
        profiles = {p.path: p for p in profiles}
    if not isinstance(profiles, dict) or not all(
        isinstance(p, PathProfile) for p in profiles.values()
    ):
        raise TypeError(
            "Argument `profiles` must be a dict label -> PathProfile. "
            f"Received: {type(profiles).__name__}"
        )
    figure, ax = _axes(ax, (5, 3.5))
    for label, profile in profiles.items():
        values = profile._values(metric)
        ax.plot(
            profile.t,
            values,
            label=f"{label} (barrier {profile.barrier(metric):.3g})",
            linestyle="-" if profile.path == "curve" else "--",
        )
    ax.set_xlabel("t")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} along the paths")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def log_levels(values, num_levels=12, vmax=None):
    """Contour levels spaced logarithmically above the minimum.

    `levels = vmin + (vmax - vmin) * geomspace(1e-3, 1, num_levels)`, plus
    `vmin`, so the levels are dense near the low-loss region (as in Garipov
    et al.'s `plane_plot.py`). `vmax` defaults to the 90th percentile.
    """
    z = np.asarray(values, dtype="float64")
    z = z[np.isfinite(z)]
    vmin = float(z.min())
    if vmax is None:
        vmax = float(np.percentile(z, 90))
    if vmax <= vmin:
        vmax = vmin + 1e-6
    return np.concatenate(
        [[vmin], vmin + (vmax - vmin) * np.geomspace(1e-3, 1.0, num_levels)]
    )


def plot_plane(plane, metric="loss", ax=None, vmax=None, title=None):
    """Draws a metric over a plane with the anchors, curve and projections.

    Log-spaced filled contours in viridis, low values dark (the colours of
    the TensorBoard dashboard), with equal units on both axes; anchors as
    circles (the bend as a diamond),
    the curve as a solid line, the straight segment start-end dashed, and
    projected models as crosses labelled with their distance off the plane.

    Returns:
        The matplotlib figure.
    """
    if not isinstance(plane, PlaneResult):
        raise TypeError(
            "Argument `plane` must be a PlaneResult (from evaluate_plane). "
            f"Received: {type(plane).__name__}"
        )
    if metric not in plane.metrics:
        raise ValueError(
            f"Argument `metric` must be one of {list(plane.metrics)}. "
            f"Received: metric={metric!r}"
        )
    figure, ax = _axes(ax, (5.5, 4.5))
    z = np.asarray(plane.metrics[metric], dtype="float64")
    flip = any(w in metric.lower() for w in ("acc", "auc"))
    shown = 1.0 - z if flip else z
    levels = log_levels(shown, vmax=vmax)
    clipped = np.minimum(shown, levels[-1])
    contours = ax.contourf(
        plane.x, plane.y, clipped, levels=levels, cmap="viridis"
    )
    ax.contour(
        plane.x, plane.y, clipped, levels=levels, colors="k", linewidths=0.3
    )
    bar = figure.colorbar(contours, ax=ax, format="%.3g")
    bar.set_label(f"1 - {metric}" if flip else metric)
    names = list(plane.points)
    for k, name in enumerate(names):
        px, py = plane.points[name]
        marker = "D" if k == 1 else "o"
        ax.plot(px, py, marker, color="white", markeredgecolor="k", ms=8)
        ax.annotate(name, (px, py), textcoords="offset points", xytext=(5, 5))
    first, last = plane.points[names[0]], plane.points[names[-1]]
    ax.plot([first[0], last[0]], [first[1], last[1]], "--", color="white", lw=1)
    if plane.curve is not None:
        ax.plot(plane.curve[:, 0], plane.curve[:, 1], "-", color="white", lw=2)
    for item in plane.projected:
        px, py = item["xy"]
        ax.plot(px, py, "x", color="red", ms=8, mew=2)
        ax.annotate(
            f"{item['name']} ({item['distance']:.2g})",
            (px, py),
            textcoords="offset points",
            xytext=(5, -10),
            fontsize="small",
            color="red",
        )
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x (weight-space units)")
    ax.set_ylabel("y (weight-space units)")
    ax.set_title(title or f"{plane.split} {metric} over the plane")
    figure.tight_layout()
    return figure
