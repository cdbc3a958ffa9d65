"""Logdirs for the plugin tests, written with `keras_heuristics.tensorboard`.

Every array is returned next to where it was written, so tests compare what
the routes and the dashboards show with these known values.
"""

import os

import numpy as np

from keras_heuristics.tensorboard import SummaryWriter
from keras_heuristics.tensorboard import schema

LAYERS = ["conv1", "conv2", "dense1", "dense2", "logits"]
TEACHER = ["t_conv1", "t_conv2", "t_dense", "t_logits"]
STEPS = [0, 1, 2, 3]
# Run names that must stay text in the dashboards.
SCRIPT_RUN = "<script>window.__xss=1</script>"
IMG_RUN = "<img src=x onerror=window.__xss=2>"


def _matrices(seed, offset):
    rng = np.random.default_rng(seed)
    return {
        step: np.clip(
            rng.uniform(0.0, 1.0, (len(LAYERS), len(TEACHER))) + offset,
            0.0,
            1.0,
        ).astype("float32")
        for step in STEPS
    }


def _layer_series(seed):
    rng = np.random.default_rng(seed)
    return {
        step: rng.uniform(0.0, 1.0, len(LAYERS)).astype("float32")
        for step in STEPS
    }


def _profile(path):
    t = np.linspace(0.0, 1.0, 11).astype("float32")
    bump = 4.0 * t * (1.0 - t)
    height = 0.1 if path == "curve" else 1.5
    return t, {
        "loss": (0.2 + height * bump).astype("float32"),
        "accuracy": (0.95 - 0.3 * height * bump).astype("float32"),
    }


def _plane():
    x = np.linspace(-0.5, 1.5, 21).astype("float32")
    y = np.linspace(-0.5, 1.5, 17).astype("float32")
    xx, yy = np.meshgrid(x, y)
    loss = (0.1 + (xx - 0.5) ** 2 + 0.5 * (yy - 0.5) ** 2).astype("float32")
    accuracy = (1.0 - loss / loss.max()).astype("float32")
    return x, y, {"loss": loss, "accuracy": accuracy}


def write_logdir(root):
    """Writes the test runs under `root`; returns what was written.

    Runs: `distilled` and `independent` (student x teacher matrices and a
    per-layer series over `STEPS`), `connectivity` (curve and line
    profiles, a plane), `bad` (malformed series), and two runs named like
    HTML.
    """
    root = os.fspath(root)
    written = {"matrix": {}, "layers": {}}
    for seed, run in enumerate(["distilled", "independent"]):
        matrices = _matrices(seed, 0.2 if run == "distilled" else 0.0)
        series = _layer_series(10 + seed)
        written["matrix"][run] = matrices
        written["layers"][run] = series
        with SummaryWriter(os.path.join(root, run)) as writer:
            for step in STEPS:
                schema.write_similarity_matrix(
                    writer,
                    "student_vs_teacher",
                    matrices[step],
                    step,
                    metric="linear_cka",
                    rows=LAYERS,
                    cols=TEACHER,
                    row_label="student",
                    col_label="teacher",
                    reference="teacher",
                )
                schema.write_similarity_layers(
                    writer,
                    "self_vs_final",
                    series[step],
                    step,
                    metric="linear_cka",
                    layers=LAYERS,
                    reference="final epoch",
                )

    x, y, grids = _plane()
    written["plane"] = (x, y, grids)
    written["profile"] = {}
    with SummaryWriter(os.path.join(root, "connectivity")) as writer:
        for path in ["curve", "line"]:
            t, metrics = _profile(path)
            written["profile"][path] = (t, metrics)
            schema.write_profile(
                writer, f"{path}_profile", t, metrics, path=path
            )
        schema.write_plane(
            writer,
            "plane",
            x,
            y,
            grids,
            points={"start": (0.0, 0.0), "bend": (0.5, 1.0), "end": (1.0, 0.0)},
            curve=[(s, 4 * s * (1 - s)) for s in np.linspace(0, 1, 9)],
            projected=[
                {"name": "snapshot 1", "xy": (0.3, 0.2), "distance": 0.1}
            ],
        )

    with SummaryWriter(os.path.join(root, "bad")) as writer:
        matrix = np.eye(2, dtype="float32")
        writer.tensor(
            "layer_similarity/future",
            matrix,
            0,
            plugin_name="layer_similarity",
            content={"version": 2, "kind": "matrix"},
        )
        writer.tensor(
            "layer_similarity/no_rows",
            matrix,
            0,
            plugin_name="layer_similarity",
            content={"version": 1, "kind": "matrix", "cols": ["a", "b"]},
        )
        writer.tensor(
            "layer_similarity/wrong_shape",
            matrix,
            0,
            plugin_name="layer_similarity",
            content={
                "version": 1,
                "kind": "matrix",
                "rows": ["a", "b", "c"],
                "cols": ["a", "b"],
            },
        )
        writer.tensor(
            "layer_similarity/unversioned",
            matrix,
            0,
            plugin_name="layer_similarity",
        )

    for run in [SCRIPT_RUN, IMG_RUN]:
        with SummaryWriter(os.path.join(root, run)) as writer:
            schema.write_similarity_matrix(
                writer,
                IMG_RUN,
                np.full((2, 2), 0.5, dtype="float32"),
                0,
                metric="<b>cka</b>",
                rows=[SCRIPT_RUN, "b"],
                cols=[IMG_RUN, "d"],
            )
    return written


def write_demo_logdir(root, layers=24, steps=200, restart_every=50):
    """Writes a larger, paper-shaped logdir for screenshots and smoothness.

    Synthetic values shaped like Gotmare et al. (2019): a distilled student
    is more similar to its teacher in the deeper layers than an
    independently trained one; deeper layers settle later and move more at
    each learning-rate restart; the loss is low along the connecting curve
    and high halfway along the straight line.
    """
    root = os.fspath(root)
    names = [f"block{i // 3 + 1}_conv{i % 3 + 1}" for i in range(layers - 2)]
    names += ["dense", "logits"]
    teacher = [f"teacher_{n}" for n in names]
    depth = np.linspace(0.0, 1.0, layers)
    epochs = np.arange(steps)
    rng = np.random.default_rng(0)
    for run, pull in [("distilled_student", 0.6), ("independent_student", 0.0)]:
        with SummaryWriter(os.path.join(root, run)) as writer:
            for step in epochs:
                progress = 1.0 - np.exp(-step / (0.2 * steps))
                band = np.exp(-((depth[:, None] - depth[None, :]) ** 2) / 0.02)
                agreement = 0.9 - (0.6 - pull * 0.5) * depth[:, None]
                matrix = np.clip(
                    band * agreement * (0.4 + 0.6 * progress)
                    + 0.03 * rng.standard_normal((layers, layers)),
                    0.0,
                    1.0,
                )
                schema.write_similarity_matrix(
                    writer,
                    "student_vs_teacher",
                    matrix,
                    int(step),
                    metric="linear_cka",
                    rows=names,
                    cols=teacher,
                    row_label="student",
                    col_label="teacher",
                    reference="teacher",
                )
                since = step % restart_every
                settle = 1.0 - np.exp(-(since + 1) / (2 + 20 * depth))
                final = (step + 1) / steps
                values = np.clip(
                    0.35
                    + 0.6 * final * (1.0 - 0.5 * depth)
                    + 0.3 * settle * final
                    - 0.25 * depth * (since < 3),
                    0.0,
                    1.0,
                )
                schema.write_similarity_layers(
                    writer,
                    "self_vs_final",
                    values,
                    int(step),
                    metric="linear_cka",
                    layers=names,
                    reference="final epoch",
                )
    with SummaryWriter(os.path.join(root, "connectivity")) as writer:
        t = np.linspace(0.0, 1.0, 41)
        bump = 4.0 * t * (1.0 - t)
        for path, height in [("curve", 0.08), ("line", 2.2)]:
            loss = 0.05 + height * bump + 0.02 * np.sin(9 * t) ** 2
            schema.write_profile(
                writer,
                f"{path}_profile",
                t,
                {"loss": loss, "accuracy": 0.985 - 0.35 * height * bump / 2.2},
                path=path,
            )
        x = np.linspace(-0.4, 1.4, 61)
        y = np.linspace(-0.5, 1.3, 61)
        xx, yy = np.meshgrid(x, y)
        valley = yy - 2.0 * xx * (1.0 - xx)
        loss = (
            0.05
            + 4.0 * valley**2
            + 0.6 * (xx - 0.5) ** 2 * (xx < 0)
            + (0.6 * np.maximum(0.0, -xx) + 0.6 * np.maximum(0.0, xx - 1.0))
        )
        s = np.linspace(0.0, 1.0, 25)
        schema.write_plane(
            writer,
            "plane",
            x,
            y,
            {"loss": loss, "accuracy": 1.0 - np.tanh(loss)},
            points={"start": (0.0, 0.0), "bend": (0.5, 1.0), "end": (1.0, 0.0)},
            curve=[(a, 2.0 * a * (1.0 - a)) for a in s],
            projected=[
                {"name": "snapshot 2", "xy": (0.32, 0.38), "distance": 0.2},
                {"name": "snapshot 3", "xy": (0.7, 0.45), "distance": 0.3},
            ],
        )


# Runs of `write_defect_logdir`, each showing one defect of issue 22.
RTL_RUN = "rtl\u202eevil"
LONG_NAMES = [f"{'x' * 19990}layer{i:03d}" for i in range(60)]
BIG_LAYERS = [f"layer{i:03d}" for i in range(110)]
BIG_STEPS = 1200
UNEVEN_X = np.array([-1.0, -0.6, 0.0, 1.5, 5.0, 9.8], "float32")
UNEVEN_Y = np.array([-0.8, -0.3, 0.5, 1.8], "float32")


def _profile_series(writer, name, t, metrics, path="curve"):
    schema.write_profile(writer, name, t, metrics, path=path)


def write_defect_logdir(root):
    """Writes runs next to `write_logdir`'s; returns what was written.

    Layer similarity: `late` (the same series as `distilled`, logged at
    steps 1 and 3 only), `specials` (NaN, +inf, -inf), `long` (60 names of
    20,000 characters), `big` (110 layers, 1,200 steps), `live` (steps 0
    and 1; tests add more), and `RTL_RUN`. Mode connectivity: `uneven` (a
    plane on an unevenly spaced grid, 10.8 x 2.6 units), `diverged`
    (profiles with infinity and NaN), `nonpos` (a loss plane with values
    <= 0), `snapshot` (a projected model on light cells) and `colours` (two
    profiles, one without accuracy).
    """
    root = os.fspath(root)
    written = {}
    late = _matrices(5, 0.1)
    late_layers = _layer_series(15)
    written["late"] = ({s: late[s] for s in (1, 3)}, late_layers)
    with SummaryWriter(os.path.join(root, "late")) as writer:
        for step in (1, 3):
            schema.write_similarity_matrix(
                writer,
                "student_vs_teacher",
                late[step],
                step,
                metric="linear_cka",
                rows=LAYERS,
                cols=TEACHER,
                row_label="student",
                col_label="teacher",
                reference="teacher",
            )
            schema.write_similarity_layers(
                writer,
                "self_vs_final",
                late_layers[step],
                step,
                metric="linear_cka",
                layers=LAYERS,
                reference="final epoch",
            )
    specials = np.array([[np.nan, np.inf], [-np.inf, 0.5]], "float32")
    written["specials"] = specials
    with SummaryWriter(os.path.join(root, "specials")) as writer:
        schema.write_similarity_matrix(
            writer,
            "m",
            specials,
            0,
            metric="cka",
            rows=["a", "b"],
            cols=["a", "b"],
        )
    with SummaryWriter(os.path.join(root, "long")) as writer:
        schema.write_similarity_matrix(
            writer,
            "m",
            np.random.default_rng(3).uniform(0, 1, (60, 60)).astype("float32"),
            0,
            metric="cka",
            rows=LONG_NAMES,
            cols=LONG_NAMES,
        )
    rng = np.random.default_rng(4)
    big = rng.uniform(0, 1, (BIG_STEPS, len(BIG_LAYERS))).astype("float32")
    written["big"] = big
    with SummaryWriter(os.path.join(root, "big")) as writer:
        for step in range(BIG_STEPS):
            schema.write_similarity_layers(
                writer,
                "s",
                big[step],
                step,
                metric="cka",
                layers=BIG_LAYERS,
                reference="final epoch",
            )
    write_live(root, [0, 1])
    with SummaryWriter(os.path.join(root, RTL_RUN)) as writer:
        schema.write_similarity_matrix(
            writer,
            "m",
            np.eye(2, dtype="float32"),
            3,
            metric="cka",
            rows=["a", "b"],
            cols=["a", "b"],
        )

    xx, yy = np.meshgrid(np.arange(len(UNEVEN_X)), np.arange(len(UNEVEN_Y)))
    uneven = (1.5 + yy * len(UNEVEN_X) + xx).astype("float32")
    written["uneven"] = uneven
    with SummaryWriter(os.path.join(root, "uneven")) as writer:
        schema.write_plane(
            writer,
            "plane",
            UNEVEN_X,
            UNEVEN_Y,
            {"loss": uneven},
            points={"start": (-1.0, -0.8), "end": (9.8, 1.8)},
        )
    t = np.linspace(0.0, 1.0, 11).astype("float32")
    loss = np.array(
        [1.0, 1.1, 1.2, 1.3, 1.4, np.inf, 1.5, np.nan, np.nan, 1.2, 1.1],
        "float32",
    )
    written["diverged"] = (t, loss)
    with SummaryWriter(os.path.join(root, "diverged")) as writer:
        _profile_series(
            writer,
            "curve_profile",
            t,
            {"loss": loss, "accuracy": np.full(11, np.nan, "float32")},
        )
    x = np.linspace(0.0, 1.0, 5).astype("float32")
    y = np.linspace(0.0, 1.0, 4).astype("float32")
    nonpos = np.linspace(-0.2, 1.0, 20).reshape(4, 5).astype("float32")
    nonpos[1, 1] = 0.0
    written["nonpos"] = nonpos
    with SummaryWriter(os.path.join(root, "nonpos")) as writer:
        schema.write_plane(writer, "plane", x, y, {"loss": nonpos})
    light = np.full((4, 5), 1.0, "float32")
    light[0, 0] = 0.0
    with SummaryWriter(os.path.join(root, "snapshot")) as writer:
        schema.write_plane(
            writer,
            "plane",
            x,
            y,
            {"loss": light},
            projected=[{"name": "snap", "xy": (0.3, 0.6), "distance": 0.25}],
        )
    with SummaryWriter(os.path.join(root, "colours")) as writer:
        _profile_series(writer, "a_profile", t, {"loss": 1.0 + t})
        _profile_series(
            writer, "b_profile", t, {"loss": 2.0 - t, "accuracy": t}, "line"
        )
    return written


def write_live(root, steps):
    """Adds steps to the `live` run (a per-layer series)."""
    with SummaryWriter(os.path.join(os.fspath(root), "live")) as writer:
        for step in steps:
            schema.write_similarity_layers(
                writer,
                "s",
                np.full(len(LAYERS), 0.1 * step, "float32"),
                step,
                metric="cka",
                layers=LAYERS,
                reference="final epoch",
            )
