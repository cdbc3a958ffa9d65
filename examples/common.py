"""What the three reproductions share: data, models, presets, files.

Each experiment (`sgdr_mode_connectivity`, `warmup_cca`,
`distillation_cca`) runs as cells, one per (configuration, seed), through
`examples.cells.run_cells`. A cell receives everything it needs in its
keyword arguments: either the name of a data set and of a model family
(rebuilt inside the cell's own process) or the user's arrays and
`make_model` callable (pickled to the cell's process, or run in this one
when they cannot be pickled).
"""

import json
import os
import shutil
import tempfile

import numpy as np

from examples import data as data_lib
from examples import models as models_lib

PRESETS = ("cpu", "paper")


def check_choice(argument, value, choices):
    if value not in choices:
        raise ValueError(
            f"Argument `{argument}` must be one of {list(choices)}. "
            f"Received: {argument}={value!r}"
        )
    return value


def check_param_lists(params, keys):
    """Each `params[key]` must be a non-empty list (a grid)."""
    for key in keys:
        value = params[key]
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(
                f"Parameter `{key}` must be a non-empty list. Received: "
                f"{key}={value!r}"
            )


def check_param_positive(params, keys):
    """Each `params[key]` (a number or a list of them) must be finite > 0."""
    for key in keys:
        value = params[key]
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float, np.integer, np.floating))
                or not np.isfinite(v)
                or v <= 0
            ):
                raise ValueError(
                    f"Parameter `{key}` must hold finite numbers > 0. "
                    f"Received: {key}={value!r}"
                )


def check_param_integers(params, keys, minimum=1):
    """Each `params[key]` (an integer or a list of them) must be >= minimum."""
    for key in keys:
        value = params[key]
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, np.integer))
                or v < minimum
            ):
                raise ValueError(
                    f"Parameter `{key}` must hold integers >= {minimum}. "
                    f"Received: {key}={value!r}"
                )


def check_seeds(seeds):
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)):
        raise TypeError(
            f"Argument `seeds` must be an integer >= 1. Received: {seeds!r}"
        )
    if seeds < 1:
        raise ValueError(f"Argument `seeds` must be >= 1. Received: {seeds}")
    return int(seeds)


def source(dataset="mnist1d", data=None, data_dir=None, num_samples=None):
    """Checks the data choice before any work and returns a cell's spec.

    Returns:
        `(spec, input_shape, num_classes)`: `spec` is a dict for the cells'
        keyword arguments (the data set's name, or the user's arrays).
    """
    if data is not None:
        (train, test), num_classes = data_lib.check_data(data, "data")
        return {"data": (train, test)}, train[0].shape[1:], num_classes
    check_choice("dataset", dataset, data_lib.DATASETS)
    (x, y), (x_test, y_test) = data_lib.load(
        dataset, data_dir=data_dir, num_samples=num_samples
    )
    num_classes = int(max(y.max(), y_test.max())) + 1
    spec = {"dataset": dataset, "data_dir": data_dir}
    spec["num_samples"] = num_samples
    return spec, x.shape[1:], num_classes


def load(spec):
    """The `((x, y), (x_test, y_test))` a cell's spec names."""
    if "data" in spec:
        return spec["data"]
    return data_lib.load(
        spec["dataset"],
        data_dir=spec.get("data_dir"),
        num_samples=spec.get("num_samples"),
    )


def model_spec(model, make_model, input_shape, num_classes, width=None):
    """Checks the model choice (building it once) and returns its spec."""
    if make_model is not None:
        if not callable(make_model):
            raise TypeError(
                "Argument `make_model` must be a callable returning a Keras "
                f"model. Received: make_model={make_model!r}"
            )
        models_lib.check_make_model(make_model, input_shape, num_classes)
        return {"make_model": make_model}
    check_choice("model", model, models_lib.MODELS)
    models_lib.build(model, input_shape, num_classes, width=width)
    return {
        "model": model,
        "input_shape": tuple(int(d) for d in input_shape),
        "num_classes": int(num_classes),
        "width": width,
    }


def build(spec, seed):
    """A fresh model for `seed` from a cell's model spec."""
    if "make_model" in spec:
        return models_lib.call_make_model(spec["make_model"], seed)
    augment = spec.get("augment")
    return models_lib.build(
        spec["model"],
        spec["input_shape"],
        spec["num_classes"],
        width=spec.get("width"),
        seed=seed,
        preprocessing=data_lib.augmentation(augment) if augment else None,
    )


def model_name(spec):
    if "make_model" in spec:
        return getattr(spec["make_model"], "__name__", "make_model")
    return spec["model"]


def accuracy(model, x, y, batch_size=500):
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == y))


def fresh_folders(*paths):
    """Empties (and creates) the folders a run writes its logs and snapshots
    to, so that a rerun after an interruption starts afresh: the library's
    callbacks refuse a fresh `fit` into a folder holding an earlier run's
    event files or snapshots, which would mix two runs."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def write_json(path, value):
    """Writes JSON atomically (see `write_text`)."""
    write_text(path, json.dumps(value, indent=2, default=_plain))


def write_text(path, text):
    """Writes a file atomically (a temporary file, then `os.replace`)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def save_figure(figure, path, writer=None, tag=None):
    """Saves a Matplotlib figure as PNG, logs it to TensorBoard, closes it."""
    from matplotlib import pyplot as plt

    from keras_heuristics import tensorboard

    figure.savefig(path, dpi=110)
    if writer is not None:
        writer.image(tag, tensorboard.figure_to_png(figure), 0)
    plt.close(figure)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def ci_errorbar(axis, x, cis, **kwargs):
    """Plots means with their 95% intervals as error bars."""
    means = np.array([c["mean"] for c in cis], float)
    low = np.array([c["low"] for c in cis], float)
    high = np.array([c["high"] for c in cis], float)
    err = np.stack([means - low, high - means])
    err = np.where(np.isfinite(err), err, 0.0)
    return axis.errorbar(x, means, yerr=err, capsize=3, marker="o", **kwargs)


def rate_tag(rate):
    """A rate as a name part: 0.05 -> "0p05"."""
    return f"{rate:g}".replace(".", "p").replace("-", "m")


def resolve_model_flag(model):
    """`--model`: a family name, or "package.module:function" to import."""
    if isinstance(model, str) and ":" in model:
        import importlib

        module, _, name = model.partition(":")
        try:
            return None, getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            raise ValueError(
                "Argument `model` names no importable callable "
                f"('module:function'). Received: model={model!r} ({error})"
            ) from None
    return model, None


class Setup:
    """An experiment's checked choices: data, models, seeds.

    Everything is checked here, before any training: the preset, the data
    set (loaded once) or the user's arrays, the model family or the user's
    `make_model` (built once), and the number of seeds.
    """

    def __init__(
        self,
        preset,
        quick,
        dataset,
        model,
        data,
        make_model,
        seeds,
        data_dir,
        num_samples,
    ):
        self.preset = check_choice("preset", preset, PRESETS)
        self.quick = quick
        if not isinstance(quick, bool):
            raise TypeError(
                f"Argument `quick` must be a bool. Received: {quick!r}"
            )
        if data is None and dataset is None:
            dataset = "cifar10" if preset == "paper" else "mnist1d"
        if make_model is None:
            model, make_model = resolve_model_flag(model)
        if model is not None:
            check_choice("model", model, models_lib.MODELS)
        if seeds is None:
            seeds = 3 if preset == "paper" else (2 if quick else 5)
        self.seeds = check_seeds(seeds)
        self.data_spec, self.input_shape, self.num_classes = source(
            dataset, data, data_dir, num_samples
        )
        if data is not None:
            self.description = f"user data {tuple(self.input_shape)}"
        else:
            self.description = dataset
            if dataset == "mnist1d":
                n = num_samples or 5000
                self.description += f" ({n} generated, 80/20 split)"
        # The paper's CIFAR augmentation, as the first layers of our models
        # (a user's own model brings its own).
        cifar = data is None and dataset in ("cifar10", "cifar100")
        self.augment = dataset if cifar else None
        self._override = None
        if make_model is not None:
            self._override = model_spec(
                None, make_model, self.input_shape, self.num_classes
            )
        elif model is not None:
            self._override = self._family(model)
        self._specs = {}

    @property
    def overridden(self):
        return self._override is not None

    def model_spec(self, family):
        """The user's model if given, else the (checked) family's spec."""
        if self._override is not None:
            return self._override
        if family not in self._specs:
            self._specs[family] = self._family(family)
        return self._specs[family]

    def _family(self, family, width=None):
        spec = model_spec(
            family, None, self.input_shape, self.num_classes, width
        )
        spec["augment"] = self.augment
        return spec

    def family_spec(self, family, width):
        """A family at another width (a teacher), checked like the rest."""
        return self._family(family, width)


def main(run, default_logdir):
    """Command-line entry of an experiment: flags, then `run(...)`."""
    from absl import app
    from absl import flags

    flags.DEFINE_string("logdir", default_logdir, "Output folder.")
    flags.DEFINE_bool("quick", False, "A few-minute run.")
    flags.DEFINE_enum("preset", "cpu", PRESETS, "cpu (MNIST-1D) or paper.")
    flags.DEFINE_enum(
        "dataset", None, data_lib.DATASETS, "Data set (default by preset)."
    )
    flags.DEFINE_string(
        "model",
        None,
        f"A family of {list(models_lib.MODELS)}, or 'module:function' "
        "returning your own uncompiled Keras model (logits out).",
    )
    flags.DEFINE_integer("seeds", None, "Seeds per configuration.")
    flags.DEFINE_integer("workers", None, "Parallel cells (CPU count).")
    flags.DEFINE_string("data_dir", None, "Folder of the CIFAR batches.")
    flags.DEFINE_integer("num_samples", None, "MNIST-1D examples generated.")

    def _main(argv):
        del argv
        f = flags.FLAGS
        run(
            f.logdir,
            quick=f.quick,
            preset=f.preset,
            dataset=f.dataset,
            model=f.model,
            seeds=f.seeds,
            workers=f.workers,
            data_dir=f.data_dir,
            num_samples=f.num_samples,
        )

    app.run(_main)


def cell_seconds(root, cells):
    """Each finished cell's wall time, from its result file."""
    from examples import cells as cells_lib

    records = cells_lib.load_results(root)
    return {c.key: records[c.key]["seconds"] for c in cells}


def override(params, overrides):
    """The configuration with some values replaced (`run(params=...)`)."""
    if overrides is None:
        return params
    if not isinstance(overrides, dict):
        raise TypeError(
            "Argument `params` must be a dict of configuration values. "
            f"Received: params={overrides!r}"
        )
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ValueError(
            f"Argument `params` has unknown keys {unknown}; the "
            f"configuration's keys are {sorted(params)}."
        )
    return {**params, **overrides}


def finish(logdir, experiment, setup, params, summary, cells, model=None):
    """Writes an experiment's `results.json` atomically and returns it."""
    import keras

    output = {
        "experiment": experiment,
        "preset": setup.preset,
        "quick": setup.quick,
        "data": setup.description,
        "backend": keras.backend.backend(),
        "params": params,
        "summary": summary,
        "seconds": cell_seconds(logdir, cells),
    }
    if model is not None:
        output["model"] = model
    write_json(os.path.join(logdir, "results.json"), output)
    return output


def digits_or_user(data, make_model):
    """The digits examples' data and model, or the user's, checked first.

    Returns:
        `((x, y), (x_test, y_test)), build` where `build(seed)` returns a
        fresh model (the digits CNN unless `make_model` is given).
    """
    if data is None:
        data = data_lib.load_digits()
    (train, test), num_classes = data_lib.check_data(data, "data")
    if make_model is None:
        return (train, test), lambda seed=0: models_lib.digits_cnn(seed)
    models_lib.check_make_model(make_model, train[0].shape[1:], num_classes)
    return (train, test), lambda seed=0: models_lib.call_make_model(
        make_model, seed
    )
