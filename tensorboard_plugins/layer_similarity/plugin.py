"""The "Layer similarity" TensorBoard plugin.

Shows the `layer_similarity/<name>` series that
`keras_heuristics.tensorboard.schema.write_similarity_matrix` and
`write_similarity_layers` write: a heatmap of each layer x layer matrix with
the value under the pointer, a colour scale and a step (epoch) slider; the
difference of two runs at the same step (e.g. distilled student vs teacher
minus independent student vs teacher); and, for per-layer series, the
layer x time picture of Gotmare et al. (2019), Figure 2.

References:
    - [Gotmare et al., 2019. A Closer Look at Deep Learning Heuristics:
      Learning rate restarts, Warmup and Distillation](
      https://openreview.net/forum?id=r14EOsCqKX)
"""

import os

from tensorboard_plugins import _base
from tensorboard_plugins import _content


class LayerSimilarityPlugin(_base.SummaryPlugin):
    """Serves the "Layer similarity" dashboard and its data."""

    plugin_name = _content.SIMILARITY_PLUGIN
    tab_name = "Layer similarity"
    static_folder = os.path.join(os.path.dirname(__file__), "static")


class LayerSimilarityLoader(_base.SummaryLoader):
    """Entry point: loads the plugin and keeps every step of its series."""

    plugin_class = LayerSimilarityPlugin
