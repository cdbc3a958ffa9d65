"""The package depends on Keras' public API only.

Private Keras attributes and `keras.src` change between releases. Every read
of one lives in `keras_heuristics/_keras_private.py` (tested on real Keras
objects in `test_keras_private.py`); every choice made on the backend's name
lives in `keras_heuristics/_backend.py`. These tests read the package's
sources and fail on any other use.
"""

import ast
import pathlib

import keras
import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_heuristics"
ISOLATION = PACKAGE / "_keras_private.py"
BACKEND = PACKAGE / "_backend.py"

# The package's own private names that Keras objects also carry; each is
# defined on one of our classes (asserted below), never read off Keras'.
OWN_NAMES = {
    "_value": "our schedules' formula method (Keras variables have one)",
    "_iterations": "LayerSimilarity's reader of the optimizer's step",
}


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def _keras_private_names():
    """Every private attribute name of a set of real Keras objects."""
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, kernel_regularizer="l2")(inputs)
    outputs = keras.layers.BatchNormalization()(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.optimizer.build(model.trainable_variables)
    sgd = keras.optimizers.SGD(momentum=0.9)
    sgd.build(model.trainable_variables)
    objects = [
        model,
        model.layers[1],
        model.layers[2],
        model.optimizer,
        sgd,
        keras.optimizers.AdamW(),
        model.layers[1].kernel,
        keras.metrics.Mean(),
        keras.losses.MeanSquaredError(),
        keras.callbacks.Callback(),
        keras.random.SeedGenerator(0),
        outputs,
        keras.optimizers.schedules.CosineDecay(0.1, 10),
        keras.layers.Dropout(0.1),
        keras.Sequential([keras.layers.Dense(1)]),
    ]
    return {
        name
        for obj in objects
        for name in dir(obj)
        if name.startswith("_") and not name.startswith("__")
    }


def _defined_names(tree):
    """Names this module defines: functions, methods, `self.x = ...`."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(
            node.ctx, ast.Store
        ):
            names.add(node.attr)
    return names


def _referenced_names(tree):
    """`(name, line)` of every attribute read and every string constant
    (for `getattr(obj, "_name")`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            yield node.attr, node.lineno
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value, node.lineno


def test_no_keras_src_outside_the_isolation_module():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{i}"
        for path in _sources()
        if path != ISOLATION
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if "keras.src" in line
    ]
    assert not offenders, (
        "`keras.src` is private; use the public `keras` API or a function of "
        f"keras_heuristics/_keras_private.py. Found at: {offenders}"
    )


def test_no_private_keras_attribute_outside_the_isolation_module():
    private = _keras_private_names()
    assert {"_flatten_layers", "_compile_loss", "_learning_rate"} <= private
    offenders = []
    defined = set()
    for path in _sources():
        tree = ast.parse(path.read_text())
        defined |= _defined_names(tree)
        if path == ISOLATION:
            continue
        for name, line in _referenced_names(tree):
            if name in private and name not in OWN_NAMES:
                offenders.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} {name}"
                )
    assert not offenders, (
        "Private Keras attributes may only be read in "
        "keras_heuristics/_keras_private.py (one named function each, "
        f"tested in tests/test_keras_private.py). Found: {offenders}"
    )
    # The exemptions are names the package really defines itself.
    assert set(OWN_NAMES) <= defined


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_backend_names_are_compared_in_the_backend_module_only(path):
    if path == BACKEND:
        return
    tree = ast.parse(path.read_text())
    calls = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "backend"
        and not node.args
    ]
    assert not calls, (
        f"{path.relative_to(PACKAGE.parent)} reads `keras.backend.backend()` "
        f"at lines {calls}; put the backend's difference in "
        "keras_heuristics/_backend.py, one function each."
    )
