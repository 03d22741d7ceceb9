"""Metrics for any zoo model (layer 5): importance-sampled log-likelihood, ELBO parts, active units."""

from pyrozoo.evaluation.likelihood import active_units, distribution_mean, elbo_terms, log_likelihood

__all__ = ["active_units", "distribution_mean", "elbo_terms", "log_likelihood"]
