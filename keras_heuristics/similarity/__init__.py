"""Representation similarity: CCA, SVCCA, PWCCA and CKA on any backend.

Metrics take activation matrices of shape `(num_examples, num_features)`
and return backend tensors; `similarity_matrix` compares the layers of two
models and returns a NumPy array.

Activations holding NaN or inf are refused with a `ValueError` naming the
argument. Finite ones are measured exactly at any scale: a matrix whose
largest magnitude lies outside [2**-32, 2**32] is first multiplied by the
power of two that brings it near 1 (exact in floating point, and every
metric is invariant to it; a fixed RBF bandwidth is scaled with it), where
float32 Gram products would otherwise overflow past about 1e17 or underflow
below about 1e-19.
"""

from keras_heuristics.similarity.canonical import cca
from keras_heuristics.similarity.canonical import pwcca
from keras_heuristics.similarity.canonical import svcca
from keras_heuristics.similarity.capture import ActivationCapture
from keras_heuristics.similarity.capture import layer_names
from keras_heuristics.similarity.heatmap import heatmap_figure
from keras_heuristics.similarity.heatmap import heatmap_image
from keras_heuristics.similarity.kernel_alignment import linear_cka
from keras_heuristics.similarity.kernel_alignment import rbf_cka
from keras_heuristics.similarity.matrix import METRICS
from keras_heuristics.similarity.matrix import pairwise_matrix
from keras_heuristics.similarity.matrix import similarity_matrix
from keras_heuristics.similarity.spatial import reduce_spatial
from keras_heuristics.similarity.streaming import StreamingCKA

__all__ = [
    "METRICS",
    "ActivationCapture",
    "StreamingCKA",
    "cca",
    "heatmap_figure",
    "heatmap_image",
    "layer_names",
    "linear_cka",
    "pairwise_matrix",
    "pwcca",
    "rbf_cka",
    "reduce_spatial",
    "similarity_matrix",
    "svcca",
]
