"""Metrics for any zoo model (layer 5): importance-sampled log-likelihood, ELBO parts, active units,
2D density scores and the Stein predictive likelihood."""

from pyrozoo.evaluation.classifier import latent_f1
from pyrozoo.evaluation.density2d import evaluate_2d, grid_normalized_elbo, histogram_jsd, histogram_kl, point_loss
from pyrozoo.evaluation.likelihood import active_units, distribution_mean, elbo_terms, log_likelihood
from pyrozoo.evaluation.stein import predictive_log_likelihood

__all__ = ["latent_f1", "active_units", "distribution_mean", "elbo_terms", "log_likelihood", "evaluate_2d",
           "grid_normalized_elbo", "histogram_jsd", "histogram_kl", "point_loss", "predictive_log_likelihood"]
