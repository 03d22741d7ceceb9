"""ArviZ views of a Stein mixture q(m) (the design card "VAE with a Stein-Learned Hyperprior", eq. 6): draws per
component and pair plots."""

import arviz as az
import numpy as np
import torch

from pyrozoo import checks


def _mixture(model):
    """The Stein mixture of ``model`` (its ``q_m`` part), of a guide, or ``model`` itself."""
    mix = getattr(model, "q_m", model)
    if isinstance(mix, torch.nn.Module) and hasattr(mix, "loc") and hasattr(mix, "log_scale"):
        mix = mix()
    if not (hasattr(mix, "components") and hasattr(mix, "loc") and hasattr(mix, "log_scale")):
        raise ValueError(f"needs a model with a q_m part (such as stein-hyperprior), a SteinMixtureGuide or a "
                         f"SteinMixture; got {type(model).__name__}")
    return mix


@torch.no_grad()
def mixture_inference_data(model, num_draws=200):
    """Draws of q(m) as ``arviz.InferenceData`` with a ``component`` coordinate.

    ``model``: a model with a ``q_m`` part (e.g. :class:`~pyrozoo.models.SteinHyperpriorVAE`),
    a :class:`~pyrozoo.guides.SteinMixtureGuide` or a
    :class:`~pyrozoo.distributions.SteinMixture`. ``posterior.m`` has dims
    ``(chain, draw, component, m_dim)``: ``num_draws`` draws from each component N(a_k, B_k);
    ``constant_data`` holds ``loc`` and ``scale`` ``(component, m_dim)``.
    """
    num_draws = checks.count("num_draws", num_draws)
    mix = _mixture(model)
    draws = mix.components().sample((num_draws,))  # (S, M, d)
    m, d = mix.loc.shape
    coords = {"component": np.arange(m), "m_dim": np.arange(d)}
    idata = az.from_dict(posterior={"m": draws.cpu().numpy()[None]}, dims={"m": ["component", "m_dim"]},
                         coords=coords)
    idata.add_groups(constant_data=az.from_dict(
        constant_data={"loc": mix.loc.cpu().numpy(), "scale": mix.log_scale.exp().cpu().numpy()},
        dims={"loc": ["component", "m_dim"], "scale": ["component", "m_dim"]}, coords=coords).constant_data)
    return idata


def plot_component_means(model, dims=(0, 1), ax=None):
    """Pair plot (scatter) of the component means a_k over two m coordinates ``dims``, each point
    labelled by its component; returns the matplotlib axes."""
    import matplotlib.pyplot as plt
    loc = _mixture(model).loc.detach().cpu().numpy()
    dims = checks.counts("dims", dims, minimum=0)
    if len(dims) != 2 or max(dims) >= loc.shape[1]:
        raise ValueError(f"dims must be two coordinates of m in 0..{loc.shape[1] - 1}, got {dims}")
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    i, j = dims if loc.shape[1] > 1 else (0, 0)
    ax.scatter(loc[:, i], loc[:, j])
    for k, (a, b) in enumerate(zip(loc[:, i], loc[:, j])):
        ax.annotate(str(k), (a, b))
    ax.set_xlabel(f"m[{i}]")
    ax.set_ylabel(f"m[{j}]")
    ax.set_title("q(m) component means")
    return ax
