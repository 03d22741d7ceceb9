"""Matplotlib figures (layer 5)."""

from pyrozoo.plots.density2d import density_plot
from pyrozoo.plots.figures import (image_grid, khat_plot, latent_prior_plot, latent_scatter, loglik_histogram,
                                   reconstructions)
from pyrozoo.plots.geometry import brownian_plot, interpolation_plot, volume_plot

__all__ = ["density_plot", "brownian_plot", "interpolation_plot", "volume_plot", "image_grid", "khat_plot",
           "latent_prior_plot", "latent_scatter", "loglik_histogram", "reconstructions"]
