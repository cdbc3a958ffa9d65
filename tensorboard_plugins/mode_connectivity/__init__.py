"""The "Mode connectivity" TensorBoard dashboard."""
