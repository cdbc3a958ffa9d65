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
from keras_heuristics.connectivity.evaluation import PathProfile
from keras_heuristics.connectivity.evaluation import arc_length_mean
from keras_heuristics.connectivity.evaluation import barrier_height
from keras_heuristics.connectivity.evaluation import distance
from keras_heuristics.connectivity.evaluation import evaluate_curve
from keras_heuristics.connectivity.evaluation import evaluate_line
from keras_heuristics.connectivity.evaluation import interpolated_barrier_height
from keras_heuristics.connectivity.plane import PlaneResult
from keras_heuristics.connectivity.plane import evaluate_plane
from keras_heuristics.connectivity.plane import plane_basis
from keras_heuristics.connectivity.plane import plane_coordinates
from keras_heuristics.connectivity.plots import plot_plane
from keras_heuristics.connectivity.plots import plot_profiles
from keras_heuristics.connectivity.summaries import write_plane_summaries
from keras_heuristics.connectivity.summaries import write_profile_summaries

__all__ = [
    "BatchNormStatistics",
    "CurveModel",
    "PathProfile",
    "PlaneResult",
    "arc_length_mean",
    "barrier_height",
    "bezier_coefficients",
    "curve_coefficients",
    "distance",
    "evaluate_curve",
    "evaluate_line",
    "evaluate_plane",
    "interpolated_barrier_height",
    "plane_basis",
    "plane_coordinates",
    "plot_plane",
    "plot_profiles",
    "polychain_coefficients",
    "write_plane_summaries",
    "write_profile_summaries",
]
