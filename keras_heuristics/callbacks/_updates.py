"""Counting optimizer updates from the batches a callback sees.

With `gradient_accumulation_steps=k` Keras updates the weights on every
k-th batch only: `optimizer.iterations` counts the updates, while the
learning-rate schedule is evaluated at the batch count (Keras' documented
convention), so update `u` (0-based) uses `schedule((u + 1) * k - 1)`. The
callbacks count updates, never batches. A `fit` is assumed to start on an
update boundary (always true for a run trained in one `fit`, and when each
`fit` sees a multiple of `k` batches).
"""

import numpy as np

from keras_heuristics import _backend


def accumulation_steps(optimizer):
    """`k`, the batches per update (1 without gradient accumulation)."""
    return int(getattr(optimizer, "gradient_accumulation_steps", None) or 1)


def schedule_steps(updates, k):
    """The schedule steps at which updates `updates` (0-based) read their
    learning rate."""
    return (np.asarray(updates, dtype="int64") + 1) * k - 1


class UpdateCounter:
    """The number of updates done, advanced once per batch."""

    def __init__(self, optimizer):
        self.k = accumulation_steps(optimizer)
        self.updates = _backend.as_int(optimizer.iterations)
        self._batches = self.updates * self.k

    def next_is_update(self):
        """Whether the coming batch ends with an update."""
        return (self._batches + 1) % self.k == 0

    def batch_end(self):
        """Counts a batch; True when it ended with an update."""
        self._batches += 1
        if self._batches % self.k:
            return False
        self.updates += 1
        return True
