"""Representation similarity: CCA, SVCCA, PWCCA and CKA on any backend.

Metrics take activation matrices of shape `(num_examples, num_features)`
and return backend tensors; `similarity_matrix` compares the layers of two
models and returns a NumPy array. Activations holding NaN or inf are
refused with a `ValueError` naming the argument; finite ones are measured
at any scale.
"""

from keras_heuristics.similarity.canonical import cca
from keras_heuristics.similarity.canonical import pwcca
from keras_heuristics.similarity.canonical import svcca
from keras_heuristics.similarity.capture import ActivationCapture
from keras_heuristics.similarity.capture import layer_names
from keras_heuristics.similarity.cka import linear_cka
from keras_heuristics.similarity.cka import rbf_cka
from keras_heuristics.similarity.heatmap import heatmap_figure
from keras_heuristics.similarity.heatmap import heatmap_image
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
