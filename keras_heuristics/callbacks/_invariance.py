"""Scale-invariant weights found numerically, from a model's outputs."""

import keras
import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _layers
from keras_heuristics import _probe
from keras_heuristics import _validation

_PROBE_EXAMPLES = 32  # examples of the probe the outputs are read on
_STEP = 0.01  # relative step of the central differences d f / d log s
_DERIVATIVE_ROWS = 4096  # output entries the derivatives are kept for
# Relative output changes below this are float32 rounding, not dependence.
_NOISE_FLOOR = 1e-4


def scale_invariant_weights(model, probe, tolerance=0.05, seed=0):
    """Weights, alone or in groups, whose scale the model's outputs ignore.

    A set of weights `W` is scale-invariant when `f(cW) = f(W)` for
    `c > 0`: only its direction matters, which is what Li, Lyu & Arora's
    intrinsic learning rate needs. Two kinds are found, by reading the
    model's outputs (`training=True`, one fixed dropout mask) on the first
    32 examples of `probe`:

    - **Kernels** (variables of two or more axes) that are invariant
      alone: a layer followed by batch normalisation, or a query or key
      projection followed by its own norm (QK-norm, as in Gemma 3), even
      inside subclassed layers that a graph walk cannot see into.
    - **Groups** that are invariant only together: a biased layer followed
      by a LayerNorm (its kernel and bias), or, in a pre-norm transformer
      whose output projection is not tied to its input embedding, the
      token embedding and every block's output projections, which write
      the residual stream that each norm divides out. A group is found as
      a non-negative combination of the outputs' derivatives with respect
      to each variable's log-scale that sums to zero (Euler's identity for
      a function of degree 0), by non-negative least squares, and kept
      only when doubling it leaves the outputs unchanged.

    A candidate counts when doubling it changes the outputs by at most
    `tolerance` of their root mean square. Normalisation epsilons make
    the invariance approximate where the normalised activations are small
    (a LayerNorm of epsilon `e` over activations of variance `v` keeps
    about `e / v` of the weights' scale). Variables that are zero (a
    bias at initialisation) are given random values for the test, so that
    the invariance found is that of the architecture at a generic point,
    not of the initial values.

    Args:
        model: A built Keras model.
        probe: Inputs to read the outputs on: an array, a dict of arrays,
            an `(x, y)` tuple or a finite dataset of batches.
        tolerance: Largest relative change of the outputs, in (0, 1).
        seed: Seed of the random values given to zero variables.

    Returns:
        A list of `(name, variables)`: a kernel's layer path, or for a
        group, the path of the layer owning all its variables, or
        `"joint_<i>"` when they belong to several layers.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Argument `model` must be a Keras model. Received: {model!r}"
        )
    tolerance = _validation.check_in_range("tolerance", tolerance, 0.0, 1.0)
    x = _probe.inputs(probe, "probe")
    x = keras.tree.map_structure(lambda v: v[:_PROBE_EXAMPLES], x)
    _layers.check_inputs_fit(model, x, "probe")
    if not model.trainable_variables:
        return []  # nothing is trained, so nothing to track
    outputs = _Outputs(model, x, seed)
    values = outputs.values
    owners = [_owner(v) for v in outputs.variables]
    columns = outputs.log_scale_derivatives(range(len(values)))
    moves = np.sqrt(np.mean(columns**2, axis=0)) / outputs.scale
    single = [
        i
        for i, value in enumerate(values)
        if value.ndim >= 2
        and moves[i] <= tolerance
        and outputs.invariant([i], tolerance)
    ]
    found = [(owners[i], [i]) for i in single]
    # A bias or norm offset joins a group only beside a kernel of its own
    # layer: groups of vectors alone are chance cancellations in a narrow
    # output (a few constant columns in a two-class head).
    kernels = {owners[i] for i, v in enumerate(values) if v.ndim >= 2}
    rest = [
        i
        for i in range(len(values))
        if i not in single and owners[i] in kernels
    ]
    found += [
        (None, group)
        for group in _groups(outputs, columns[:, rest], rest, tolerance)
    ]
    result, joint = [], 0
    for name, indices in found:
        variables = [outputs.variables[i] for i in indices]
        if name is None:
            layers = {_owner(v) for v in variables}
            if len(layers) == 1:
                name = layers.pop()
            else:
                name, joint = f"joint_{joint}", joint + 1
        result.append((name, variables))
    return result


def _owner(variable):
    """The path of the layer that owns `variable`."""
    return variable.path.rsplit("/", 1)[0]


class _Outputs:
    """The model's outputs on fixed inputs with some variables rescaled."""

    def __init__(self, model, x, seed):
        self.model = model
        self.x = keras.tree.map_structure(ops.convert_to_tensor, x)
        self.variables = list(model.trainable_variables)
        rng = np.random.default_rng(seed)
        self.values = []
        for v in self.variables:
            value = ops.convert_to_numpy(v.value)
            if not np.any(value):  # a fan-in scaled draw
                fan_in = np.prod(value.shape[:-1]) if value.ndim > 1 else 1
                value = rng.normal(0.0, fan_in**-0.5, value.shape)
                value = value.astype(v.dtype)
            self.values.append(value)
        self.state = [v.value for v in model.non_trainable_variables]
        self.forward = _backend.stateless_function(model, training=True)
        self.reference = self.read({})
        self.scale = max(_rms(self.reference), 1e-30)
        # Enough output entries to pin the derivatives' null space down.
        size = self.reference.size
        rows = min(size, max(_DERIVATIVE_ROWS, 4 * len(self.values)))
        self.rows = np.sort(rng.choice(size, rows, replace=False))

    def read(self, scales, noise=0.0):
        """The outputs, flat, with variable `i` multiplied by `scales[i]`,
        or with `noise` times its norm added in a random direction."""
        rng = np.random.default_rng(len(scales))
        values = []
        for i, value in enumerate(self.values):
            if i in scales:
                value = value * scales[i]
                if noise:
                    step = rng.normal(size=value.shape)
                    step *= noise * np.linalg.norm(value) / np.linalg.norm(step)
                    value = value + step.astype(value.dtype)
            values.append(ops.convert_to_tensor(value))
        out = self.forward(values, self.state, self.x)
        return np.concatenate(
            [np.ravel(ops.convert_to_numpy(o)).astype("float64") for o in out]
        )

    def change(self, indices, factor, noise=0.0):
        moved = self.read({i: factor for i in indices}, noise)
        return _rms(moved - self.reference) / self.scale

    def invariant(self, indices, tolerance):
        """Whether doubling or halving the variables moves the outputs by
        at most `tolerance` times what a change of the same size in a
        random direction does (which also tells that the outputs depend on
        them at all)."""
        scaled = max(self.change(indices, 2.0), self.change(indices, 0.5))
        turned = self.change(indices, 1.0, noise=1.0)
        return turned > _NOISE_FLOOR and scaled <= tolerance * turned

    def log_scale_derivatives(self, indices):
        """`d f / d log s_i` for each variable, by central differences."""
        up, down = 1.0 + _STEP, 1.0 - _STEP
        return np.stack(
            [
                (self.read({i: up}) - self.read({i: down}))[self.rows]
                / (2 * _STEP)
                for i in indices
            ],
            axis=1,
        )


def _groups(outputs, columns, candidates, tolerance):
    """Disjoint groups of `candidates` that are invariant together, from
    their `columns` of `d f / d log s`."""
    norms = np.sqrt(np.sum(columns**2, axis=0))
    # Variables the outputs do not depend on join no group.
    keep = norms > _NOISE_FLOOR * outputs.scale * np.sqrt(len(columns))
    # Of variables with one column (a value and the output projection
    # after it, a SwiGLU's up and down projections: scaling either scales
    # the same tensor), the last stands for all, or the least squares
    # could mix them.
    keep &= _last_of_equal(columns)
    candidates = [c for c, k in zip(candidates, keep) if k]
    norms = norms[keep]
    # Unit columns: a weak variable (a query at initialisation, whose
    # attention is near uniform) must not be a cheap place for weight.
    columns = columns[:, keep] / norms
    groups = []
    while len(candidates) > 1:
        # A group `G` has `sum_{i in G} d f / d log s_i = 0`: weights
        # `norms[i]` on the unit columns, one raw weight for all members.
        raw = _nnls_on_simplex(columns) / norms
        accepted = None
        for level in _levels(raw, raw > 1e-3 * raw.max()):
            level = _completed(level, columns * norms)
            group = [candidates[j] for j in level]
            if _well_formed(outputs, group) and outputs.invariant(
                group, tolerance
            ):
                accepted = level
                break
        if accepted is None:
            break
        groups.append(sorted(candidates[j] for j in accepted))
        keep = np.ones(len(candidates), bool)
        keep[accepted] = False
        candidates = [c for c, k in zip(candidates, keep) if k]
        columns, norms = columns[:, keep], norms[keep]
    return groups


def _last_of_equal(columns):
    """A mask of the columns that no later column equals (to 1e-3)."""
    norms = np.sqrt(np.sum(columns**2, axis=0))
    last = np.ones(columns.shape[1], bool)
    for j in range(columns.shape[1]):
        for k in range(j + 1, columns.shape[1]):
            gap = np.sqrt(np.sum((columns[:, j] - columns[:, k]) ** 2))
            if gap <= 1e-3 * max(norms[j], norms[k]):
                last[j] = False
                break
    return last


def _completed(level, columns):
    """`level` with the variables added, one at a time, that at least
    halve the first-order change `|sum_{i in level} d f / d log s_i|`: a
    member whose outputs are tiny (a block's MLP at initialisation) gets
    little weight but still belongs."""
    level = list(level)
    residual = columns[:, level].sum(axis=1)
    while True:
        rest = [j for j in range(columns.shape[1]) if j not in level]
        if not rest:
            return level
        sizes = [np.linalg.norm(residual + columns[:, j]) for j in rest]
        best = int(np.argmin(sizes))
        if sizes[best] > 0.5 * np.linalg.norm(residual):
            return level
        level.append(rest[best])
        residual = residual + columns[:, rest[best]]


def _well_formed(outputs, group):
    """At least two variables, and every vector beside a kernel of its
    layer in the group."""
    values = outputs.values
    owners = {
        _owner(outputs.variables[i]) for i in group if values[i].ndim >= 2
    }
    return len(group) > 1 and all(
        _owner(outputs.variables[i]) in owners for i in group
    )


def _levels(weights, support):
    """The indices of the support grouped by near-equal weight (the
    members of one group share one weight), the largest group first."""
    chosen = sorted(np.flatnonzero(support), key=lambda j: weights[j])
    levels = [[chosen[0]]]
    for j in chosen[1:]:
        if weights[j] > 1.2 * weights[levels[-1][0]]:
            levels.append([])
        levels[-1].append(j)
    return sorted(levels, key=len, reverse=True)


def _nnls_on_simplex(columns):
    """`s >= 0` minimising `|A s|^2 + (sum(s) - 1)^2` (Lawson-Hanson)."""
    a = np.vstack([columns, np.ones((1, columns.shape[1]))])
    b = np.zeros(a.shape[0])
    b[-1] = 1.0
    return _nnls(a, b)


def _nnls(a, b, iterations=None):
    """Non-negative least squares, Lawson and Hanson's active-set method."""
    n = a.shape[1]
    iterations = iterations or 3 * n
    s = np.zeros(n)
    passive = np.zeros(n, bool)
    for _ in range(iterations):
        gradient = a.T @ (b - a @ s)
        if passive.all() or gradient[~passive].max() <= 1e-12:
            break
        j = np.argmax(np.where(passive, -np.inf, gradient))
        passive[j] = True
        while True:
            trial = np.zeros(n)
            trial[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if trial[passive].min() > 0:
                s = trial
                break
            blocked = passive & (trial <= 0)
            gap = np.maximum(s[blocked] - trial[blocked], 1e-300)
            step = np.min(s[blocked] / gap)
            s = s + step * (trial - s)
            passive &= s > 1e-12
            if not passive.any():
                break
    return s


def _rms(v):
    return float(np.sqrt(np.mean(np.square(v))))
