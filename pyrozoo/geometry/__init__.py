"""Riemannian geometry of decoders (layer 2): pull-back metrics, curves and geodesics, Brownian motion and
the heat kernel of Kalatzis et al. (2020), "Variational autoencoders with Riemannian Brownian motion priors".

Everything takes a decoder as callables ``mu(z)`` and ``sigma(z)`` or a metric as a callable
``metric_fn(z) -> G(z)`` (:class:`PullbackMetric`). The RBF precision network lives in
:mod:`pyrozoo.nn.rbf` (a plain ``torch.nn`` block) and is re-exported here.
"""

from pyrozoo.geometry.brownian import brownian_motion
from pyrozoo.geometry.curves import (CubicSplineCurve, GeodesicResult, curve_energy, curve_length, fit_geodesic,
                                     geodesic, interpolate, segment_sq_lengths)
from pyrozoo.geometry.heat_kernel import GEODESIC_SOLVER, HeatKernel, geodesic_options
from pyrozoo.geometry.metric import PullbackMetric, jacobian, log_volume, logdet_psd, mlp_jacobian, pullback_metric
from pyrozoo.nn.rbf import RBFPrecision, kmeans_centres, rbf_precision_net

__all__ = ["jacobian", "mlp_jacobian", "pullback_metric", "log_volume", "logdet_psd", "PullbackMetric",
           "CubicSplineCurve", "GeodesicResult", "curve_energy", "curve_length", "segment_sq_lengths", "fit_geodesic",
           "geodesic", "interpolate", "brownian_motion", "HeatKernel", "GEODESIC_SOLVER", "geodesic_options",
           "RBFPrecision", "rbf_precision_net", "kmeans_centres"]
