"""ArviZ views and figures of a Stein mixture q(m) (the design card "VAE with a Stein-Learned Hyperprior", eq. 6):
draws per component, the chart diagnostics of :mod:`pyrozoo.inference.charts` on a batch of data, a pair plot of the
component means and the latent codes of a batch under each component."""

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
def chart_diagnostics(model, x, labels=None, num_samples=16, batch_size=500):
    """The chart diagnostics of ``model`` (a model with ``model``/``guide`` programs and a ``q_m``
    part, e.g. :class:`~pyrozoo.models.SteinHyperpriorVAE`) on the points ``x`` ``(N, *event)``.

    Returns ``(metrics, log_weights)``: the dict of :func:`~pyrozoo.inference.charts.chart_metrics`
    (with ``labels`` ``(N,)``: the agreement of the charts with them) and the local log weights
    ``(num_samples, M, N)`` of :meth:`~pyrozoo.inference.SMI.component_log_weights`, taken in batches
    of ``batch_size`` points.
    """
    from pyrozoo.inference import SMI
    from pyrozoo.inference.charts import chart_metrics
    mix = _mixture(model)
    num_samples, batch_size = checks.count("num_samples", num_samples), checks.count("batch_size", batch_size)
    model.check_data(x)
    if labels is not None:
        checks.labels("labels", labels, len(x))
    smi = SMI(model.model, model.guide, num_particles=mix.num_components)
    lw = torch.cat([smi.component_log_weights(x[i:i + batch_size], num_samples=num_samples)
                    for i in range(0, len(x), batch_size)], -1)
    return chart_metrics(lw, mix.loc, mix.log_scale, labels), lw


@torch.no_grad()
def mixture_inference_data(model, num_draws=200, log_weights=None, labels=None):
    """Draws of q(m) as ``arviz.InferenceData`` with a ``component`` coordinate.

    ``model``: a model with a ``q_m`` part (e.g. :class:`~pyrozoo.models.SteinHyperpriorVAE`),
    a :class:`~pyrozoo.guides.SteinMixtureGuide` or a
    :class:`~pyrozoo.distributions.SteinMixture`. ``posterior.m`` has dims
    ``(chain, draw, component, m_dim)``: ``num_draws`` draws from each component N(a_k, B_k);
    ``constant_data`` holds ``loc`` and ``scale`` ``(component, m_dim)``. With ``log_weights``
    ``(S, M, N)`` from :func:`chart_diagnostics` it also holds the charts of those N points:
    ``component_elbo`` and ``responsibility`` ``(point, component)`` and, with ``labels``, ``label``
    ``(point,)``; the scalar chart metrics are attributes of ``constant_data``.
    """
    num_draws = checks.count("num_draws", num_draws)
    mix = _mixture(model)
    draws = mix.components().sample((num_draws,))  # (S, M, d)
    m, d = mix.loc.shape
    coords = {"component": np.arange(m), "m_dim": np.arange(d)}
    idata = az.from_dict(posterior={"m": draws.cpu().numpy()[None]}, dims={"m": ["component", "m_dim"]},
                         coords=coords)
    data = {"loc": mix.loc.cpu().numpy(), "scale": mix.log_scale.exp().cpu().numpy()}
    dims = {"loc": ["component", "m_dim"], "scale": ["component", "m_dim"]}
    metrics = {}
    if log_weights is not None:
        from pyrozoo.inference.charts import chart_metrics, responsibilities
        coords["point"] = np.arange(log_weights.shape[-1])
        data["component_elbo"] = log_weights.mean(0).T.cpu().numpy()
        data["responsibility"] = responsibilities(log_weights).cpu().numpy()
        dims.update(component_elbo=["point", "component"], responsibility=["point", "component"])
        if labels is not None:
            data["label"] = labels.cpu().numpy()
            dims["label"] = ["point"]
        metrics = chart_metrics(log_weights, mix.loc, mix.log_scale, labels)
    constant = az.from_dict(constant_data=data, dims=dims, coords=coords).constant_data
    constant.attrs.update({k: v for k, v in metrics.items() if isinstance(v, float)})
    idata.add_groups(constant_data=constant)
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


@torch.no_grad()
def plot_charts(model, x, labels=None, path=None, responsibility=None):
    """The latent codes of one batch under each component: panel k shows the encoder means
    μ_φ(x_i, a_k) ``(B, z_dim)`` (design card, eq. 7) and the image under the flow of the base mean
    pad(a_k) (a cross), all panels projected on the same two principal axes of the codes of every
    component, coloured by ``labels`` ``(B,)``. ``responsibility`` ``(B, M)`` (from
    :func:`~pyrozoo.inference.charts.responsibilities`) adds each component's mean responsibility to
    its title. Saves to ``path`` when given; returns the figure."""
    import matplotlib.pyplot as plt
    mix = _mixture(model)
    m = mix.num_components
    model.check_data(x)
    if labels is not None:
        checks.labels("labels", labels, len(x))
    if responsibility is not None and tuple(responsibility.shape) != (len(x), m):
        raise ValueError(f"responsibility must have shape (B, M) = ({len(x)}, {m}), one row per point of x and one "
                         f"column per component, got {tuple(responsibility.shape)}")
    codes = torch.stack([model.encoder(x, a).mean for a in mix.loc]).cpu().double()  # (M, B, z)
    centres = torch.stack([_flow_image(model.prior, a) for a in mix.loc]).cpu().double()
    flat = codes.reshape(-1, codes.shape[-1])
    centre = flat.mean(0)
    _, _, v = torch.linalg.svd(flat - centre, full_matrices=False)
    axes = v[:2].T if flat.shape[1] > 1 else torch.eye(1, 2, dtype=flat.dtype)
    fig, panels = plt.subplots(1, m, figsize=(3 * m, 3), squeeze=False, sharex=True, sharey=True)
    kw = {} if labels is None else {"c": labels.cpu(), "cmap": "tab10", "vmin": 0, "vmax": 9}
    for k, ax in enumerate(panels[0]):
        xy = (codes[k] - centre) @ axes
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.7, **kw)
        c = (centres[k] - centre) @ axes
        ax.scatter(c[0], c[1], marker="x", c="black", s=60)
        title = f"component {k}"
        if responsibility is not None:
            title += f", mean r = {responsibility[:, k].mean().item():.2f}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("principal axis 1")
    panels[0][0].set_ylabel("principal axis 2")
    fig.suptitle("encoder means μ(x, a_k) of one batch under each component (x: flow image of a_k)", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return fig


def _flow_image(prior, m):
    """f_λ(pad(m)): the conditional prior's base mean pushed through its flow ``(z_dim,)``."""
    d = prior(m)
    z = d.base_dist.mean
    for t in d.transforms:
        z = t(z)
    return z
