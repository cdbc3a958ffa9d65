"""Linear CKA over a probe set processed batch by batch.

`StreamingCKA` keeps only `d x d` statistics, so a probe set larger than
memory can be fed in batches. Two estimators:

- `"minibatch"` (Nguyen et al. 2021): the unbiased HSIC of each batch,
  summed over batches,
  `CKA = Σ_b HSIC_u(K_b, L_b) / sqrt(Σ_b HSIC_u(K_b, K_b) Σ_b HSIC_u(L_b, L_b))`,
  with `HSIC_u` the U-statistic of Song et al. (1/(m(m-3)) scaled, so
  batches of different sizes weigh correctly). It estimates the population
  CKA without the bias of small batches; it differs from the full-data
  value and needs batches of at least 4 examples.
- `"exact"`: float sums `Σx`, `Σy`, `XᵀX`, `YᵀY`, `XᵀY` accumulated in the
  wide float of the backend; `result()` equals `linear_cka` on the
  concatenated data (biased estimator).

References:
    Nguyen, Raghu and Kornblith, "Do Wide and Deep Networks Learn the Same
    Things?", ICLR 2021.
"""

from keras import ops

from keras_heuristics import _validation
from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity import kernel_alignment


def _hsic_u(gx, gy, rx, ry, sx, sy, m):
    """Unbiased HSIC of one batch from its centred feature statistics."""
    xy = ops.sum(ops.square(gx if gy is None else gy))
    value = kernel_alignment._debias(xy, rx, ry, sx, sy, m)
    return value / (m * (m - 3.0))


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
        self._unit = None
        self._widths = None
        self._factors = None

    def update(self, x, y):
        """Adds one batch: `x` (m, d1) and `y` (m, d2), the same examples."""
        minimum = 4 if self.estimator == "minibatch" else 1
        if self._factors is None:
            # the scale guard's powers of two, fixed by the first batch
            # for the whole stream (exact, and CKA does not change with
            # them): float32 Grams of activations past 1e17 or below 1e-19
            # would overflow or underflow
            x, y, fx, fy = _inputs.scaled_pair(x, y, min_examples=minimum)
            factors = (fx, fy)
        else:
            factors = self._factors
            x, y = _inputs.check_pair(x, y, min_examples=minimum)
            x, y = _inputs.scaled(x, factors[0]), _inputs.scaled(y, factors[1])
        widths = (int(x.shape[1]), int(y.shape[1]))
        if self._widths is None:
            self._widths = widths
        for name, width, first in zip("xy", widths, self._widths):
            if width != first:
                raise ValueError(
                    f"Argument `{name}` has {width} features, but the "
                    f"earlier batches had {first}: every batch must come "
                    "from the same two representations (call `reset()` "
                    "to start over)."
                )
        wide = _inputs.wide()
        m = int(x.shape[0])
        if self.estimator == "exact":
            # shift by the first batch's means to avoid cancellation
            if self._shift is None:
                self._shift = (
                    ops.mean(x, axis=0, keepdims=True),
                    ops.mean(y, axis=0, keepdims=True),
                )
            x, y = x - self._shift[0], y - self._shift[1]
            stats = [
                ops.cast(ops.sum(x, axis=0), wide),
                ops.cast(ops.sum(y, axis=0), wide),
                _inputs.gram(x),
                _inputs.gram(y),
                _inputs.gram(x, y),
            ]
        else:
            # constant neurons zeroed: the rounding noise of their centring
            # would correlate with itself
            xc, yc = _inputs.centre_live(x), _inputs.centre_live(y)
            if self._unit is None:
                # one scale per side for every batch (CKA does not change
                # with it): the RMS of the first batch, so that the squared
                # Gram entries stay finite in float32
                self._unit = tuple(
                    ops.sqrt(
                        kernel_alignment._safe_scale(ops.mean(ops.square(c)))
                    )
                    for c in (xc, yc)
                )
            xc, yc = xc / self._unit[0], yc / self._unit[1]
            rx = ops.cast(ops.sum(ops.square(xc), axis=1), wide)
            ry = ops.cast(ops.sum(ops.square(yc), axis=1), wide)
            sx, sy = ops.sum(rx), ops.sum(ry)
            gxx, gyy = _inputs.gram(xc), _inputs.gram(yc)
            gxy = _inputs.gram(xc, yc)
            stats = [
                _hsic_u(gxy, None, rx, ry, sx, sy, m),
                _hsic_u(gxx, None, rx, rx, sx, sx, m),
                _hsic_u(gyy, None, ry, ry, sy, sy, m),
            ]
        self._factors = factors
        if self._sums is None:
            self._sums = stats
        else:
            self._sums = [a + b for a, b in zip(self._sums, stats)]
        self.count += m

    def result(self):
        """The CKA of everything seen so far, a float32 scalar tensor."""
        if self._sums is None:
            raise ValueError("No batch was added: call `update` first.")
        if self.estimator == "minibatch":
            xy, xx, yy = self._sums
            return kernel_alignment._ratio(xy, xx, yy)
        sx, sy, gxx, gyy, gxy = self._sums
        n = float(self.count)
        mx, my = sx / n, sy / n
        cxx = gxx - n * mx[:, None] * mx[None, :]
        cyy = gyy - n * my[:, None] * my[None, :]
        cxy = gxy - n * mx[:, None] * my[None, :]
        # divided by the traces before squaring (see `FeatureStats`)
        tx = kernel_alignment._safe_scale(ops.trace(cxx))
        ty = kernel_alignment._safe_scale(ops.trace(cyy))
        return kernel_alignment._ratio(
            ops.sum(ops.square(cxy / ops.sqrt(tx) / ops.sqrt(ty))),
            ops.sum(ops.square(cxx / tx)),
            ops.sum(ops.square(cyy / ty)),
        )
