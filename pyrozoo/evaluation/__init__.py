"""Metrics for any zoo model (layer 5): importance-sampled log-likelihood, ELBO parts, active units,
2D density scores and the Stein predictive likelihood."""

from pyrozoo.evaluation.classifier import latent_f1
from pyrozoo.evaluation.density2d import evaluate_2d, grid_normalized_elbo, histogram_jsd, histogram_kl, point_loss
from pyrozoo.evaluation.likelihood import active_units, distribution_mean, elbo_terms, log_likelihood
from pyrozoo.evaluation.stein import predictive_log_likelihood

from pyrozoo.evaluation.images import (FeatureNet, classifier_fid, feature_classifier, frechet_distance,
                                       latent_probes)
from pyrozoo.evaluation.report import REPORT_PARTS, ReportContext, evaluate_report
from pyrozoo.evaluation.sequence import sequence_metrics, validity

__all__ = ["FeatureNet", "classifier_fid", "feature_classifier", "frechet_distance", "latent_probes", "REPORT_PARTS",
           "ReportContext", "evaluate_report", "sequence_metrics", "validity", "latent_f1", "active_units",
           "distribution_mean", "elbo_terms", "log_likelihood", "evaluate_2d", "grid_normalized_elbo", "histogram_jsd",
           "histogram_kl", "point_loss", "predictive_log_likelihood"]
