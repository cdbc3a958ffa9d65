"""TensorBoard plugins for keras_heuristics' summaries.

- `layer_similarity`: the "Layer similarity" dashboard (heatmaps of layer x
  layer similarity with a step slider, run differences, layer x time view).
- `mode_connectivity`: the "Mode connectivity" dashboard (metrics along
  curves and lines, contour maps of planes of weights).

Installing the project registers both through the `tensorboard_plugins`
entry point; `tensorboard --logdir runs` then shows them.
"""
