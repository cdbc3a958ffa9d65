"""The "Mode connectivity" TensorBoard plugin.

Shows the `mode_connectivity/<name>` series that
`keras_heuristics.tensorboard.schema.write_profile` and `write_plane` write:
metrics along the connecting curve and the straight line between two
solutions, and contour maps of a metric over the plane through the
endpoints and the bend, with the endpoints, bend, curve and projected
snapshots marked.

References:
    - [Garipov et al., 2018. Loss Surfaces, Mode Connectivity, and Fast
      Ensembling of DNNs](https://arxiv.org/abs/1802.10026)
    - [Gotmare et al., 2019. A Closer Look at Deep Learning Heuristics:
      Learning rate restarts, Warmup and Distillation](
      https://openreview.net/forum?id=r14EOsCqKX)
"""

import os

from tensorboard_plugins import _base
from tensorboard_plugins import _content


class ModeConnectivityPlugin(_base.SummaryPlugin):
    """Serves the "Mode connectivity" dashboard and its data."""

    plugin_name = _content.CONNECTIVITY_PLUGIN
    tab_name = "Mode connectivity"
    static_folder = os.path.join(os.path.dirname(__file__), "static")


class ModeConnectivityLoader(_base.SummaryLoader):
    """Entry point: loads the plugin and keeps every step of its series."""

    plugin_class = ModeConnectivityPlugin
