"""KL annealing: scaling the latent sites of a model and its guide by β (β-VAE, KL warm-up)."""

from pyro.poutine.messenger import Messenger


class LatentScaleMessenger(Messenger):
    """Like ``poutine.scale``, but only latent (non-observed) sample sites are scaled.

    Applied to both model and guide, the ELBO becomes E[log p(x|z)] − β·KL(q(z|x) ‖ p(z)).
    """

    def __init__(self, scale):
        super().__init__()
        if not scale >= 0:
            raise ValueError(f"the KL scale beta must be >= 0, got {scale}")
        self.scale = scale

    def _process_message(self, msg):
        if msg["type"] == "sample" and not msg["is_observed"]:
            msg["scale"] = self.scale * msg["scale"]


def scale_latents(fn, beta):
    """Return ``fn`` with its latent sites scaled by ``beta``."""
    def wrapped(*args, **kwargs):
        with LatentScaleMessenger(beta):
            return fn(*args, **kwargs)
    return wrapped


def linear_warmup(step, warmup_steps):
    """β rising linearly from 0 to 1 over ``warmup_steps`` steps (1 when ``warmup_steps`` is 0)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)
