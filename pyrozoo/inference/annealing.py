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


class ScaledLatents:
    """``fn`` with its latent sites scaled by ``beta`` (a callable Pyro program). Objectives may
    look at ``fn`` and ``beta`` (:class:`pyrozoo.inference.ELBO` does, to take a model's direct
    path)."""

    def __init__(self, fn, beta):
        self.fn, self.beta = fn, beta

    def __call__(self, *args, **kwargs):
        with LatentScaleMessenger(self.beta):
            return self.fn(*args, **kwargs)


def scale_latents(fn, beta):
    """Return ``fn`` with its latent sites scaled by ``beta``."""
    return ScaledLatents(fn, beta)


def linear_warmup(step, warmup_steps):
    """β rising linearly from 0 to 1 over ``warmup_steps`` steps (1 when ``warmup_steps`` is 0)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)


def cyclical(step, total_steps, cycles=4, ratio=0.5):
    """Cyclical β (Fu et al. 2019): ``cycles`` equal cycles over ``total_steps``; in each, β
    rises linearly from 0 to 1 over the first ``ratio`` of the cycle, then stays at 1."""
    if cycles < 1 or not 0 < ratio <= 1:
        raise ValueError(f"cyclical schedule needs cycles >= 1 and 0 < ratio <= 1, got {cycles}, {ratio}")
    period = total_steps / cycles
    if period <= 0:
        return 1.0
    phase = (step % period) / period
    return min(1.0, phase / ratio)


def epoch_warmup(step, warmup_steps, steps_per_epoch):
    """β held constant within an epoch and raised by 1 / W per epoch, W = ``warmup_steps`` /
    ``steps_per_epoch`` warm-up epochs: β = min(1, (e + 1) / W) in epoch e = 0, 1, ... (1 when W is 0).
    The first epoch already trains at β = 1/W and epoch W − 1 at β = 1: the VampPrior authors'
    warm-up (jmtomczak/vae_vampprior, ``utils/training.py``: β = epoch / warmup with epochs counted
    from 1); Tomczak & Welling (2018, §5) only say that β rises to 1 over the warm-up epochs."""
    if warmup_steps <= 0:
        return 1.0
    if steps_per_epoch is None or steps_per_epoch < 1:
        raise ValueError(f"the 'epochs' KL schedule needs steps_per_epoch >= 1, got {steps_per_epoch!r}")
    epochs = warmup_steps / steps_per_epoch
    return min(1.0, (step // steps_per_epoch + 1) / epochs)


SCHEDULES = ("linear", "epochs", "cyclical")


def kl_weight(step, warmup_steps, total_steps, beta=1.0, schedule="linear", cycles=4, steps_per_epoch=None):
    """The KL weight at ``step``: ``beta`` times the linear warm-up (per step, from 0), the per-epoch
    warm-up of :func:`epoch_warmup` (``"epochs"``, needs ``steps_per_epoch``) or the cyclical schedule."""
    if schedule == "linear":
        return beta * linear_warmup(step, warmup_steps)
    if schedule == "epochs":
        return beta * epoch_warmup(step, warmup_steps, steps_per_epoch)
    if schedule == "cyclical":
        return beta * cyclical(step, total_steps, cycles)
    raise ValueError(f"unknown KL schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
