"""TensorBoard output that works on every backend without TensorFlow."""

from keras_heuristics.tensorboard.png import encode_png
from keras_heuristics.tensorboard.png import figure_to_png
from keras_heuristics.tensorboard.schema import write_plane
from keras_heuristics.tensorboard.schema import write_profile
from keras_heuristics.tensorboard.schema import write_similarity_layers
from keras_heuristics.tensorboard.schema import write_similarity_matrix
from keras_heuristics.tensorboard.writer import SummaryWriter
from keras_heuristics.tensorboard.writer import writer_for

__all__ = [
    "SummaryWriter",
    "encode_png",
    "figure_to_png",
    "write_plane",
    "write_profile",
    "write_similarity_layers",
    "write_similarity_matrix",
    "writer_for",
]
