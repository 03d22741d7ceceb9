"""Running a model/guide pair into traces, optionally vectorised over particles."""

import pyro
from pyro import poutine


def particle_dim(model):
    """The plate dim for vectorised particles: left of the model's ``max_plate_nesting`` plates."""
    owner = getattr(model, "__self__", model)
    return -(int(getattr(owner, "max_plate_nesting", 1)) + 1)


def vectorize(fn, num_particles, dim):
    """Wrap ``fn`` in ``pyro.plate("particles", num_particles, dim=dim)``."""
    def wrapped(*args, **kwargs):
        with pyro.plate("particles", num_particles, dim=dim):
            return fn(*args, **kwargs)
    return wrapped


def get_traces(model, guide, args, kwargs, num_particles=1):
    """Trace ``guide``, then ``model`` replayed against it; returns ``(model_trace, guide_trace)``.

    With ``num_particles > 1`` both run inside a particle plate (see :func:`particle_dim`).
    """
    if num_particles > 1:
        dim = particle_dim(model)
        model, guide = vectorize(model, num_particles, dim), vectorize(guide, num_particles, dim)
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    return model_trace, guide_trace


def sample_sites(trace):
    """The sample sites of a trace, in order, skipping plates' subsample sites."""
    return [s for s in trace.nodes.values() if s["type"] == "sample" and not s["infer"].get("_do_not_trace")
            and not _is_subsample(s)]


def _is_subsample(site):
    return type(site["fn"]).__name__ == "_Subsample"


def masked(lp, site):
    """Apply the site's mask (if any) to the log-density ``lp``."""
    mask = site["mask"]
    if mask is None or mask is True:
        return lp
    if mask is False:
        return lp * 0
    return lp.masked_fill(~mask, 0.0) if lp.shape == mask.shape else lp * mask
