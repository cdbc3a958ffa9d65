"""Linear CKA over a probe set processed batch by batch.

`StreamingCKA` keeps only `d x d` statistics, so a probe set larger than
memory can be fed in batches. Two estimators:

- `"minibatch"` (Nguyen et al. 2021): the unbiased HSIC of each batch,
  summed over batches,
  `CKA = Σ_b HSIC_u(K_b, L_b) / sqrt(Σ_b HSIC_u(K_b, K_b) Σ_b HSIC_u(L_b, L_b))`,
  with `HSIC_u` the U-statistic of Song et al. (scaled by `1/(m(m-3))`, so
  batches of different sizes weigh correctly). It estimates the population
  CKA without the bias of small batches; it differs from the full-data
  value and needs batches of at least 4 examples.
- `"exact"`: the sums `Σx`, `Σy`, `XᵀX`, `YᵀY`, `XᵀY` accumulated in the
  wide float of the backend; `result()` equals `linear_cka` on the
  concatenated data (biased estimator).

Batches of any scale are exact: each minibatch is brought to unit scale by
a power of two, and the sums are kept relative to the largest scale seen
(an HSIC grows as the fourth power of the activations, past float32's
range for scales 1e10 apart).

References:
    Nguyen, Raghu and Kornblith, "Do Wide and Deep Networks Learn the Same
    Things?", ICLR 2021.
"""

import math

from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _validation
from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity import _linalg
from keras_heuristics.similarity import cka


def _hsic_u(g, rx, ry, sx, sy, m):
    """Unbiased HSIC of one batch from its centred feature statistics."""
    value = cka.debias(ops.sum(ops.square(g)), ops.sum(rx * ry), sx * sy, m)
    return value / (m * (m - 3.0))


def _unit_exponent(peak):  # `peak * 2**e` in [1, 2); 0 for a zero peak
    return 0 if peak == 0.0 else -math.floor(math.log2(peak))


class StreamingCKA:
    """Accumulates linear CKA between two representations over batches.

    Args:
        estimator: `"minibatch"` (Nguyen et al.) or `"exact"`.

    Example:

    ```python
    acc = keras_heuristics.similarity.StreamingCKA()
    for x_batch in probe_batches:
        acc.update(layer_a(x_batch), layer_b(x_batch))
    value = acc.result()
    ```
    """

    def __init__(self, estimator="minibatch"):
        self.estimator = _validation.check_choice(
            "estimator", estimator, ("minibatch", "exact")
        )
        self.reset()

    def reset(self):
        self.count = 0
        self._sums = None
        self._shift = None
        self._widths = None
        self._scales = None  # exact: the first batch's scale-guard factors
        self._exponents = None  # minibatch: the sums' reference exponents

    def _check(self, x, y):
        minimum = 4 if self.estimator == "minibatch" else 1
        x, y = _inputs.scaled_pair(x, y, minimum, rescale=False)[:2]
        widths = (int(x.shape[1]), int(y.shape[1]))
        for name, width, first in zip("xy", widths, self._widths or widths):
            if width != first:
                raise ValueError(
                    f"Argument `{name}` has {width} features, but the "
                    f"earlier batches had {first}: every batch must come "
                    "from the same two representations (call `reset()` "
                    "to start over)."
                )
        return x, y, widths

    def update(self, x, y):
        """Adds one batch: `x` (m, d1) and `y` (m, d2), the same examples."""
        x, y, widths = self._check(x, y)
        if self.estimator == "exact":
            stats = self._exact_stats(x, y)
        else:
            stats = self._minibatch_stats(x, y)
        self._widths = widths
        if self._sums is None:
            self._sums = stats
        else:
            self._sums = [a + b for a, b in zip(self._sums, stats)]
        self.count += int(x.shape[0])

    def _exact_stats(self, x, y):
        if self._scales is None:
            (x, y), self._scales = _inputs.finite_and_scaled(["x", "y"], [x, y])
        else:
            x, y = (_inputs.scaled(t, f) for t, f in zip((x, y), self._scales))
        if self._shift is None:  # the first batch's means: no cancellation
            self._shift = (ops.mean(x, axis=0), ops.mean(y, axis=0))
        x, y = x - self._shift[0][None, :], y - self._shift[1][None, :]
        wide = _linalg.wide()
        return [
            ops.cast(ops.sum(x, axis=0), wide),
            ops.cast(ops.sum(y, axis=0), wide),
            _linalg.gram(x),
            _linalg.gram(y),
            _linalg.gram(x, y),
        ]

    def _minibatch_stats(self, x, y):
        ex, ey = (_unit_exponent(p) for p in _backend.peaks([x, y]))
        x, y = _inputs.scaled(x, 2.0**ex), _inputs.scaled(y, 2.0**ey)
        wide = _linalg.wide()
        xc, yc = _linalg.centre_live(x), _linalg.centre_live(y)
        rx = ops.cast(ops.sum(ops.square(xc), axis=1), wide)
        ry = ops.cast(ops.sum(ops.square(yc), axis=1), wide)
        sx, sy, m = ops.sum(rx), ops.sum(ry), int(x.shape[0])
        stats = [
            _hsic_u(_linalg.gram(xc, yc), rx, ry, sx, sy, m),
            _hsic_u(_linalg.gram(xc), rx, rx, sx, sx, m),
            _hsic_u(_linalg.gram(yc), ry, ry, sy, sy, m),
        ]
        # the sums stay in units of the largest scale seen (the smallest
        # exponent): HSIC(x, y) scales as 2^(-2ex-2ey), the others as 2^-4e
        if self._exponents is None:
            self._exponents = (ex, ey)
        rx_, ry_ = self._exponents
        new = (min(rx_, ex), min(ry_, ey))
        if self._sums is not None and new != self._exponents:
            self._sums = _rescaled(self._sums, rx_ - new[0], ry_ - new[1])
        self._exponents = new
        return _rescaled(stats, ex - new[0], ey - new[1])

    def result(self):
        """The CKA of everything seen so far, a float32 scalar tensor."""
        if self._sums is None:
            raise ValueError("No batch was added: call `update` first.")
        if self.estimator == "minibatch":
            return cka.ratio(*self._sums)
        sx, sy, gxx, gyy, gxy = self._sums
        n = float(self.count)
        mx, my = sx / n, sy / n
        cxx = gxx - n * mx[:, None] * mx[None, :]
        cyy = gyy - n * my[:, None] * my[None, :]
        cxy = gxy - n * mx[:, None] * my[None, :]
        # divided by the traces before squaring (float32 range)
        tx = cka.safe_scale(ops.trace(cxx))
        ty = cka.safe_scale(ops.trace(cyy))
        return cka.ratio(
            ops.sum(ops.square(cxy / ops.sqrt(tx) / ops.sqrt(ty))),
            ops.sum(ops.square(cxx / tx)),
            ops.sum(ops.square(cyy / ty)),
        )


def _rescaled(sums, dx, dy):
    """`(xy, xx, yy)` HSIC sums of data scaled by `2**-dx`, `2**-dy`
    (`dx, dy >= 0`; what falls below the float's range was negligible)."""
    xy, xx, yy = sums
    return [
        xy * 2.0 ** (-2 * (dx + dy)),
        xx * 2.0 ** (-4 * dx),
        yy * 2.0 ** (-4 * dy),
    ]
