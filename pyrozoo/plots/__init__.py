"""Matplotlib figures (layer 5)."""

from pyrozoo.plots.figures import image_grid, khat_plot, latent_scatter, loglik_histogram, reconstructions

__all__ = ["image_grid", "khat_plot", "latent_scatter", "loglik_histogram", "reconstructions"]
