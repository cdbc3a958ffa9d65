"""Mode connectivity: curves, lines and planes between trained models.

`CurveModel` learns a low-loss curve between two models of one architecture
(Garipov et al., 2018); `evaluate_curve`, `evaluate_line` and
`evaluate_plane` measure the loss and metrics along the curve, along the
straight line and over the plane through three models, with BatchNorm
statistics recomputed at every point (Gotmare et al., 2019).
"""

from keras_heuristics.connectivity.batch_norm import BatchNormStatistics
from keras_heuristics.connectivity.coefficients import bezier_coefficients
from keras_heuristics.connectivity.coefficients import curve_coefficients
from keras_heuristics.connectivity.coefficients import polychain_coefficients
from keras_heuristics.connectivity.curve_model import CurveModel

__all__ = [
    "BatchNormStatistics",
    "CurveModel",
    "bezier_coefficients",
    "curve_coefficients",
    "polychain_coefficients",
]
