"""The "Layer similarity" TensorBoard dashboard."""
