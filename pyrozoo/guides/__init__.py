"""The inference side (layer 3): encoders q(z|x), flows on q, and q over global latents."""

from pyrozoo.guides.encoders import GaussianEncoder, distribution_mean, flatten_event
from pyrozoo.guides.flows import FlowEncoder, PlanarParams, Reverse, iaf_encoder, planar_encoder
from pyrozoo.guides.fullcov import FullCovEncoder
from pyrozoo.guides.heat import HeatKernelEncoder
from pyrozoo.guides.stein import CONDITIONING, ConditionalGaussianEncoder, SteinMixtureGuide

#: Posterior families selectable by name (``--posterior``).
POSTERIORS = {"diagonal": "diagonal Gaussian", "fullcov": "full-covariance Gaussian (Cholesky factor)",
              "planar": "diagonal Gaussian + amortised planar flow", "iaf": "diagonal Gaussian + IAF"}


def make_encoder(posterior, net, hidden_dim, z_dim, event_dim=1, flow_steps=None, logvar_bounds=None):
    """Build the encoder of posterior family ``posterior`` (one of :data:`POSTERIORS`) on top of
    the feature network ``net`` (flattened data ``(..., D)`` → ``(..., hidden_dim)``).
    ``flow_steps`` is the number of flow layers (default 10 planar, 4 IAF)."""
    if posterior not in POSTERIORS:
        raise ValueError(f"unknown posterior {posterior!r}; choose from {', '.join(POSTERIORS)}")
    if flow_steps is not None and posterior in ("diagonal", "fullcov"):
        raise ValueError(f"flow_steps applies to the planar and iaf posteriors, not {posterior!r}")
    if flow_steps is not None and int(flow_steps) < 1:
        raise ValueError(f"flow_steps must be >= 1, got {flow_steps}")
    kw = dict(event_dim=event_dim, logvar_bounds=logvar_bounds)
    if posterior == "diagonal":
        return GaussianEncoder(net, hidden_dim, z_dim, **kw)
    if posterior == "fullcov":
        return FullCovEncoder(net, hidden_dim, z_dim, **kw)
    if posterior == "planar":
        return planar_encoder(net, hidden_dim, z_dim, num_flows=flow_steps or 10, **kw)
    return iaf_encoder(net, hidden_dim, z_dim, num_flows=flow_steps or 4, **kw)


from pyrozoo.guides.hierarchical import JointGaussianEncoder

__all__ = ["JointGaussianEncoder", "HeatKernelEncoder", "GaussianEncoder", "distribution_mean", "flatten_event",
           "FlowEncoder", "PlanarParams", "Reverse", "iaf_encoder", "planar_encoder", "FullCovEncoder", "POSTERIORS",
           "make_encoder", "CONDITIONING", "ConditionalGaussianEncoder", "SteinMixtureGuide"]
