"""TensorBoard output of profiles and planes (plugin `mode_connectivity`)."""

from keras_heuristics import _validation
from keras_heuristics.connectivity.evaluation import PathProfile
from keras_heuristics.connectivity.plane import PlaneResult
from keras_heuristics.tensorboard import figure_to_png
from keras_heuristics.tensorboard import schema
from keras_heuristics.tensorboard import writer_for


def _check_name(name):
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(
            "Argument `name` must be a non-empty string without '/'. "
            f"Received: name={name!r}"
        )
    return name


def write_profile_summaries(logdir, name, profile, step=0):
    """Writes a `PathProfile` for TensorBoard.

    - a `mode_connectivity/<name>` profile tensor for the plugin
      (`keras_heuristics.tensorboard.schema.write_profile`);
    - scalars `<name>/<metric>` along the path, with the step being
      `round(1000 t)` (t in thousandths);
    - scalars `<name>/barrier/<metric>` at `step`.
    """
    if not isinstance(profile, PathProfile):
        raise TypeError(
            "Argument `profile` must be a PathProfile. Received: "
            f"{type(profile).__name__}"
        )
    name = _check_name(name)
    step = _validation.check_int("step", step, minimum=0)
    # Computed first: a profile they reject leaves the log untouched.
    barriers = {metric: profile.barrier(metric) for metric in profile.metrics}
    writer = writer_for(logdir)
    schema.write_profile(
        writer,
        name,
        profile.t,
        profile.metrics,
        step=step,
        path=profile.path,
        split=profile.split,
    )
    for metric, values in profile.metrics.items():
        for t, value in zip(profile.t, values):
            writer.scalar(f"{name}/{metric}", value, int(round(1000 * t)))
        writer.scalar(f"{name}/barrier/{metric}", barriers[metric], step)
    writer.flush()


def write_plane_summaries(logdir, name, plane, step=0, image_metric=None):
    """Writes a `PlaneResult` for TensorBoard.

    A `mode_connectivity/<name>` plane tensor for the plugin (with the
    anchors, the curve and the projected models), and a PNG image
    `<name>/<metric>` of `plot_plane` for the Images dashboard.
    """
    from matplotlib import pyplot as plt

    from keras_heuristics.connectivity.plots import plot_plane

    if not isinstance(plane, PlaneResult):
        raise TypeError(
            "Argument `plane` must be a PlaneResult. Received: "
            f"{type(plane).__name__}"
        )
    name = _check_name(name)
    step = _validation.check_int("step", step, minimum=0)
    metric = image_metric or (
        "loss" if "loss" in plane.metrics else list(plane.metrics)[0]
    )
    if metric not in plane.metrics:
        raise ValueError(
            f"Argument `image_metric` must be one of {list(plane.metrics)}. "
            f"Received: image_metric={image_metric!r}"
        )
    writer = writer_for(logdir)
    schema.write_plane(
        writer,
        name,
        plane.x,
        plane.y,
        plane.metrics,
        step=step,
        points=plane.points,
        curve=None if plane.curve is None else plane.curve.tolist(),
        projected=plane.projected,
        split=plane.split,
    )
    figure = plot_plane(plane, metric)
    writer.image(f"{name}/{metric}", figure_to_png(figure), step)
    plt.close(figure)
    writer.flush()
