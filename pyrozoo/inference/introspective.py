"""The losses of the Soft-IntroVAE game with a learned prior.

Athanasiadis, Lindsten & Felsberg (2025), Prior Learning in Introspective VAEs, TMLR,
arXiv:2408.13805 (§3.2, §4, Algorithm 1, Appendix C.2), building on Daniel & Tamar (2021),
Soft-IntroVAE: Analyzing and Improving the Introspective Variational Autoencoder,
arXiv:2012.13253.

Losses are functions over Pyro traces of a zoo VAE's ``model``/``guide`` (``"z"`` latent, ``"x"``
observed). With s = 1/input_dim, the ELBO of a point is W(x) = −s(β_rec L_rec + β_kl L_KL), and::

    encoder:         L_E = s(β_rec L_rec + β_kl L_KL)(x_real)
                           + (1/α) mean_fakes exp(−α s(β_rec L_rec + β_neg L_KL)(x_fake))
                           − s r_entropy H_n(C)                                    (eq. 4/6, Alg. 1 l. 8-13)
    decoder + prior: L_D = s(β_rec L_rec + β_kl L_KL)(x_real)
                           + γ s mean_fakes(β_kl L_KL^sg(x_fake) + γ_r β_rec L_rec(sg(x_fake)))   (eq. 9, Alg. 1 l. 17-19)

"Fakes" are, as in the authors' code, both the decoded prior samples D(z_s) and the
reconstructions D(z), z ~ q(z|x_real). L_KL^sg holds the prior *as target* by stop-gradient while
z_s ~ p(z) keeps its gradient into the prior's means and variances (prior as source, §4.2.1).
Each loss only produces gradients for its own player: the other players' parameters are frozen
(``requires_grad`` off) while the loss graph is built, so a ``backward()`` leaves their ``.grad``
untouched. :class:`~pyrozoo.inference.game.IntroStrategy` runs the β-VAE warm-up and the
alternating updates.
"""

import contextlib
import math
import warnings
from dataclasses import asdict, dataclass

import pyro.distributions as dist
import torch
from pyro import poutine
from torch.distributions import Independent, Normal, kl_divergence

from pyrozoo.distributions.intro_prior import normalized_entropy, responsibilities
from pyrozoo.distributions.mixtures import DiagonalGaussianMixture, ExpandedMixture
from pyrozoo.inference.traces import get_traces

REC_LOSSES = ("mse", "nll")


# -- pieces over traces ------------------------------------------------------------------------
@contextlib.contextmanager
def frozen(*modules):
    """Turn ``requires_grad`` off for every parameter of ``modules`` inside the block (gradients
    still flow *through* them to their inputs), restoring the flags afterwards."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        with warnings.catch_warnings():  # PyroModule notes that frozen parameters skip the param store
            warnings.filterwarnings("ignore", message=".*not registered in the param store.*")
            yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def trace_pair(model, x):
    """``(model_trace, guide_trace)`` of ``model.guide(x)`` and ``model.model(x)`` replayed on it."""
    return get_traces(model.model, model.guide, (x,), {})


def trace_decoder(model, z, x=None):
    """The model trace with ``"z"`` fixed to ``z`` ``(B, z_dim)``, observing ``x`` (or sampling a
    new ``x`` when ``None``); gradients flow from ``z`` into the ``"x"`` site's distribution."""
    conditioned = poutine.condition(model.model, data={"z": z})
    if x is None:
        return poutine.trace(conditioned).get_trace(None, batch_size=len(z))
    return poutine.trace(conditioned).get_trace(x)


def decoded_mean(model_trace):
    """The mean of p(x|z) at the ``"x"`` site of a model trace: ``(B, *event_shape)``."""
    return model_trace.nodes["x"]["fn"].mean


def reconstruction_loss(model_trace, kind="mse"):
    """L_rec per point ``(B,)`` from the ``"x"`` site: ``"mse"`` is Σ_d (x_d − E[x_d|z])² (the
    authors' loss), ``"nll"`` is −log p(x|z)."""
    site = model_trace.nodes["x"]
    x = site["value"]
    if kind == "mse":
        return (x - site["fn"].mean).pow(2).reshape(len(x), -1).sum(-1)
    if kind == "nll":
        return -site["fn"].log_prob(x).reshape(len(x), -1).sum(-1)
    raise ValueError(f"unknown reconstruction loss {kind!r}; choose from {', '.join(REC_LOSSES)}")


def unexpand(d):
    """The prior behind a plate-expanded site distribution (batch shape dropped where possible)."""
    return d.base if isinstance(d, ExpandedMixture) else d


def stop_gradient(d):
    """A copy of the prior ``d`` with detached parameters (the target of L_KL^sg, §4.2.1):
    a :class:`DiagonalGaussianMixture` or an ``Independent(Normal)``; anything else raises."""
    d = unexpand(d)
    if isinstance(d, DiagonalGaussianMixture):
        return DiagonalGaussianMixture(d.loc.detach(), d.logvar.detach(), d.log_weights.detach())
    if isinstance(d, Independent) and isinstance(d.base_dist, Normal):
        return dist.Normal(d.base_dist.loc.detach(), d.base_dist.scale.detach()).to_event(d.reinterpreted_batch_ndims)
    raise ValueError(f"no stop-gradient copy for a prior of type {type(d).__name__}")


def kl_to_prior(q, p, num_samples=100, analytic=True):
    """KL(q(z|x) ‖ p(z)) per point ``(B,)``: the closed form when ``analytic`` and torch knows
    the pair (N(0, I) prior), else the Monte-Carlo mean of log q(z_t) − log p(z_t) over
    ``num_samples`` reparameterised draws z_t ~ q (eq. 53, T = 100 in the paper)."""
    p = unexpand(p)
    if analytic:
        try:
            return kl_divergence(q, p)
        except NotImplementedError:
            pass
    if int(num_samples) < 1:
        raise ValueError(f"the KL needs >= 1 Monte-Carlo sample, got {num_samples}")
    z = q.rsample((int(num_samples),))
    return (q.log_prob(z) - p.log_prob(z)).mean(0)


def prior_noise(prior, n):
    """The randomness of ``n`` prior draws, so that :func:`sample_prior` can rebuild the same z_s
    twice (Algorithm 1 draws z_s once per iteration for both players): ``(k, ε)`` for a mixture
    (component indices ``(n,)``, ε ``(n, z_dim)``), ε alone for ``Independent(Normal)``, else None."""
    prior = unexpand(prior)
    n = int(n)
    if isinstance(prior, DiagonalGaussianMixture):
        loc = prior.loc
        k = torch.distributions.Categorical(logits=prior.log_weights.detach()).sample((n,))
        return k, torch.randn((n,) + tuple(loc.shape[-1:]), dtype=loc.dtype, device=loc.device)
    if isinstance(prior, Independent) and isinstance(prior.base_dist, Normal):
        loc = prior.base_dist.loc
        return torch.randn((n,) + tuple(prior.event_shape), dtype=loc.dtype, device=loc.device)
    return None


def sample_prior(prior, n, noise=None):
    """``n`` latents z_s ~ p(z) ``(n, z_dim)`` *with* gradients into the prior's parameters (prior as
    source): for a mixture z = μ_k + σ_k ε with k ~ Cat(π), for a Gaussian z = μ + σ ε, otherwise
    ``rsample``. ``noise`` from :func:`prior_noise` fixes k and ε."""
    prior = unexpand(prior)
    noise = prior_noise(prior, n) if noise is None else noise
    if isinstance(prior, DiagonalGaussianMixture):
        k, eps = noise
        return prior.loc[k] + torch.exp(0.5 * prior.logvar[k]) * eps
    if isinstance(prior, Independent) and isinstance(prior.base_dist, Normal):
        return prior.base_dist.loc + prior.base_dist.scale * noise
    if prior.has_rsample:
        return prior.rsample((int(n),))
    raise ValueError(f"cannot draw reparameterised samples from a prior of type {type(prior).__name__}")


def real_terms(model, x, settings):
    """``(L_rec, L_KL, model_trace, guide_trace)`` of a real batch ``x``; L's are ``(B,)``."""
    mt, gt = trace_pair(model, x)
    rec = reconstruction_loss(mt, settings.rec_loss)
    kl = kl_to_prior(gt.nodes["z"]["fn"], mt.nodes["z"]["fn"], settings.kl_samples, settings.analytic_kl)
    return rec, kl, mt, gt


def input_scale(model):
    """s = 1/input_dim (Algorithm 1, line 2)."""
    return 1.0 / math.prod(model.event_shape)


@dataclass
class IntroLossSettings:
    """Weights of the game (defaults: the paper's α = 2, γ = 1, γ_r = 1e-8; β's per data set)."""

    beta_rec: float = 1.0
    beta_kl: float = 1.0
    beta_neg: float = 256.0
    alpha: float = 2.0
    gamma: float = 1.0
    gamma_r: float = 1e-8
    r_entropy: float = 0.0
    kl_samples: int = 100
    analytic_kl: bool = True
    rec_loss: str = "mse"

    def validate(self):
        """Raise ``ValueError`` for weights that make no sense."""
        for name in ("beta_rec", "beta_kl", "beta_neg", "gamma", "gamma_r", "r_entropy"):
            v = float(getattr(self, name))
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        if not (float(self.alpha) > 0 and math.isfinite(self.alpha)):
            raise ValueError(f"alpha must be a positive number, got {self.alpha}")
        if int(self.kl_samples) < 1:
            raise ValueError(f"kl_samples must be >= 1, got {self.kl_samples}")
        if self.rec_loss not in REC_LOSSES:
            raise ValueError(f"unknown reconstruction loss {self.rec_loss!r}; choose from {', '.join(REC_LOSSES)}")
        return self


def _settings(settings, overrides):
    settings = settings or IntroLossSettings()
    if overrides:
        settings = IntroLossSettings(**{**asdict(settings), **overrides})
    return settings.validate()


def vae_loss(model, x, settings=None, **overrides):
    """The β-VAE warm-up loss s(β_rec L_rec + β_kl L_KL), averaged over the batch ``x`` ``(B, *event)``
    (eq. 2 with separate weights); gradients reach every part. Returns ``(loss, stats)``."""
    settings = _settings(settings, overrides)
    s = input_scale(model)
    rec, kl, _, _ = real_terms(model, x, settings)
    loss = s * (settings.beta_rec * rec.mean() + settings.beta_kl * kl.mean())
    return loss, {"rec": rec.mean().item(), "kl": kl.mean().item()}


def responsibility_entropy(prior, z):
    """H_n(C) (eq. 11): responsibilities of the mixture ``prior`` at posterior samples ``z``
    ``(B, z_dim)``, averaged over the batch into C ``(M,)``, entropy divided by log M.
    Returns ``(entropy, C)``."""
    prior = unexpand(prior)
    if not isinstance(prior, DiagonalGaussianMixture):
        raise ValueError("the responsibility-entropy term (r_entropy > 0) needs a mixture prior")
    c = responsibilities(prior, z.reshape(-1, z.shape[-1])).mean(0)
    return normalized_entropy(c), c


def encoder_loss(model, x, z_fake=None, settings=None, **overrides):
    """The encoder's loss L_E (to minimise; Algorithm 1 lines 8-13, eq. 52 first line).

    ``x`` ``(B, *event_shape)`` real data; ``z_fake`` ``(B', z_dim)`` latents from the prior (drawn
    here when ``None``; any gradient they carry is dropped). Decoder and prior are frozen, so only
    the encoder receives gradients. The exponential term averages exp(−α s(β_rec L_rec +
    β_neg L_KL)) over the reconstructions D(z), z ~ q(z|x), and the generated D(z_fake).
    Returns ``(loss, stats)`` with the loss a scalar.
    """
    settings = _settings(settings, overrides)
    s = input_scale(model)
    with frozen(model.decoder, model.prior):
        rec, kl, mt, gt = real_terms(model, x, settings)
        loss_real = s * (settings.beta_rec * rec.mean() + settings.beta_kl * kl.mean())
        with torch.no_grad():
            prior = model.prior()
            if z_fake is None:
                z_fake = sample_prior(prior, len(x))
            x_rec = decoded_mean(mt).detach()
            x_gen = decoded_mean(trace_decoder(model, z_fake.detach()))
        energies = []
        for fake in (x_rec, x_gen):
            rec_f, kl_f, _, _ = real_terms(model, fake, settings)
            energies.append(s * (settings.beta_rec * rec_f + settings.beta_neg * kl_f))
        energies = torch.cat(energies)
        loss_fake = torch.exp(-settings.alpha * energies).mean() / settings.alpha
        loss = loss_real + loss_fake
        stats = {"rec": rec.mean().item(), "kl": kl.mean().item(), "fake_energy": energies.mean().item(),
                 "enc_fake_term": loss_fake.item()}
        if settings.r_entropy > 0:
            entropy, _ = responsibility_entropy(prior, gt.nodes["z"]["value"])
            loss = loss - s * settings.r_entropy * entropy
            stats["resp_entropy"] = entropy.item()
    stats["loss_e"] = loss.item()
    return loss, stats


def decoder_loss(model, x, z_fake=None, settings=None, learn_prior=True, **overrides):
    """The decoder-and-prior loss L_D (to minimise; Algorithm 1 lines 17-19, eq. 9).

    ``x`` ``(B, *event_shape)`` real data; ``z_fake`` ``(B', z_dim)`` prior draws that keep their
    gradient into the prior (drawn here with :func:`sample_prior` when ``None``). The encoder is
    frozen; with ``learn_prior=False`` the prior is frozen too (a fixed prior). The fake KL uses a
    stop-gradient copy of the prior as target (L_KL^sg), the fake reconstruction term is
    γ_r β_rec L_rec(sg(x_fake)) with the posterior draw detached. Returns ``(loss, stats)``.
    """
    settings = _settings(settings, overrides)
    s = input_scale(model)
    with frozen(model.encoder, None if learn_prior else model.prior):
        rec, kl, mt, _ = real_terms(model, x, settings)
        loss_real = s * (settings.beta_rec * rec.mean() + settings.beta_kl * kl.mean())
        prior = model.prior()
        if z_fake is None:
            z_fake = sample_prior(prior, len(x))
        target = stop_gradient(prior)
        x_rec = decoded_mean(mt)
        x_gen = decoded_mean(trace_decoder(model, z_fake))
        terms = []
        for fake in (x_rec, x_gen):
            gt_f = poutine.trace(model.guide).get_trace(fake)  # q(z|fake) alone: the model's replay is unused
            kl_f = kl_to_prior(gt_f.nodes["z"]["fn"], target, settings.kl_samples, settings.analytic_kl)
            again = trace_decoder(model, gt_f.nodes["z"]["value"].detach(), fake.detach())
            rec_f = reconstruction_loss(again, settings.rec_loss)
            terms.append(settings.beta_kl * kl_f + settings.gamma_r * settings.beta_rec * rec_f)
        loss_fake = s * torch.cat(terms).mean()
        loss = loss_real + settings.gamma * loss_fake
    return loss, {"loss_d": loss.item(), "dec_fake_term": loss_fake.item()}
