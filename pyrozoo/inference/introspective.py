"""The Soft-IntroVAE game with a learned prior (paper 001 §3.2, §4, Algorithm 1, appendix C.2).

Losses are functions over Pyro traces of a zoo VAE's ``model``/``guide`` (``"z"`` latent, ``"x"``
observed). With s = 1/input_dim, the ELBO of a point is W(x) = −s(β_rec L_rec + β_kl L_KL), and

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
untouched. :class:`IntroTrainer` runs the β-VAE warm-up and the alternating updates.
"""

import contextlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch.distributions import Independent, Normal, kl_divergence
from tqdm.auto import tqdm

from pyrozoo.distributions.intro_prior import ClippedMixturePrior, normalized_entropy, responsibilities
from pyrozoo.distributions.mixtures import DiagonalGaussianMixture, ExpandedMixture
from pyrozoo.distributions.priors import MixtureOfGaussiansPrior, VampPrior
from pyrozoo.inference.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from pyrozoo.inference.trainer import check_device
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


# -- training ----------------------------------------------------------------------------------
def multistep_lr(base_lr, step, milestones, factor=0.1):
    """MultiStep decay: ``base_lr · factor^(number of milestones <= step)``."""
    return base_lr * factor ** sum(int(step) >= int(m) for m in milestones)


@dataclass
class IntroConfig:
    """Settings of an introspective run (plain values; saved in ``intro_config.json``).

    ``iterations`` total steps of ``batch_size``; the first ``warmup`` steps are a plain β-VAE
    (``warmup >= iterations`` trains a β-VAE only). ``learn_prior`` (IP): the prior is trained
    with the decoder in the adversarial phase; ``clip``: soft-clip its log-variances (eq. 10,
    K = ``clip_k``) with bounds taken at the switch. A VampPrior is turned into a mixture of
    Gaussians at the switch unless ``keep_vampprior`` (prior-encoder cooperation, the paper's
    VAMP(64) columns; then ``learn_prior`` trains the pseudo-inputs with the decoder).
    """

    iterations: int = 30000
    batch_size: int = 512
    lr_encoder: float = 2e-4
    lr_decoder: float = 2e-4
    warmup: int = 2000
    milestones: tuple = (10000, 15000)
    lr_factor: float = 0.1
    learn_prior: bool = False
    clip: bool = False
    clip_k: float = 10.0
    keep_vampprior: bool = False
    seed: int = 0
    device: str = "cpu"
    quiet: bool = False
    log_every: int = 100
    checkpoint_every: int = 1000
    loss: IntroLossSettings = field(default_factory=IntroLossSettings)

    def validate(self):
        """Raise ``ValueError`` for settings that make no sense."""
        for name in ("iterations", "batch_size", "log_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.warmup) < 0:
            raise ValueError(f"warmup must be >= 0 iterations, got {self.warmup}")
        for name in ("lr_encoder", "lr_decoder", "lr_factor", "clip_k"):
            v = float(getattr(self, name))
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number, got {v}")
        if any(int(m) < 0 for m in self.milestones):
            raise ValueError(f"milestones must be >= 0, got {self.milestones}")
        check_device(self.device)
        self.loss.validate()
        return self


class IntroTrainer:
    """Train a zoo VAE (``encoder``, ``decoder``, ``prior`` parts) with the Soft-IntroVAE game.

    ``data`` is a tensor ``(N, *event_shape)`` (mini-batches drawn at random with replacement)
    or a callable ``n -> (n, *event_shape)`` drawing fresh points (the 2D sets). Two Adam
    optimisers: the encoder's, and the decoder's with the prior as a second parameter group.
    ``out`` (optional) receives ``intro_config.json``, ``metrics.jsonl`` and ``checkpoints/last.pt``.
    """

    def __init__(self, model, data, config, out=None):
        self.config = config.validate()
        for part in ("encoder", "decoder", "prior"):
            if not hasattr(model, part):
                raise ValueError(f"the introspective game needs a model with an {part!r} part")
        prior = model.prior
        if (config.learn_prior or config.clip) and not isinstance(prior, (MixtureOfGaussiansPrior, VampPrior)):
            raise ValueError("learn_prior and clip need a mixture prior (MoG or VampPrior), "
                             f"not {type(prior).__name__}")
        if config.loss.r_entropy > 0 and not isinstance(prior, (MixtureOfGaussiansPrior, VampPrior)):
            raise ValueError("r_entropy > 0 needs a mixture prior (MoG or VampPrior)")
        if config.keep_vampprior and (config.clip or not isinstance(prior, VampPrior)):
            raise ValueError("keep_vampprior needs a VampPrior and no clipping "
                             "(clipping acts on a MoG's log-variances)")
        self.device = torch.device(config.device)
        self.model = model.to(self.device)
        if callable(data) and not torch.is_tensor(data):
            self._draw = data
        else:
            if not torch.is_tensor(data) or len(data) < 1:
                raise ValueError("data must be a non-empty tensor (N, *event_shape) or a callable n -> tensor")
            data = data.to(self.device)
            self._draw = lambda n: data[torch.randint(0, len(data), (n,), device=data.device)]
        probe = self._draw(2)
        model.check_data(probe.to(self.device))
        self.out = Path(out) if out is not None else None
        self.step = 0
        self.switched = False
        self.enc_opt = torch.optim.Adam(model.encoder.parameters(), lr=config.lr_encoder)
        self.dec_opt = torch.optim.Adam([{"params": list(model.decoder.parameters())},
                                         {"params": list(model.prior.parameters())}], lr=config.lr_decoder)

    # -- the switch from β-VAE to the game ----------------------------------------------------
    def switch(self):
        """Start the adversarial phase: a VampPrior becomes a MoG with μ_k, log σ²_k from the encoder
        at the pseudo-inputs (weights copied); with ``clip`` the bounds [a_j, b_j] are fixed now;
        the prior's parameter group is rebuilt (empty unless ``learn_prior``)."""
        cfg, model = self.config, self.model
        prior = model.prior
        if isinstance(prior, VampPrior) and not cfg.keep_vampprior:
            with torch.no_grad():
                loc, logvar = prior._encode(prior.pseudo_inputs())
                logits = None if prior.logits is None else prior.logits.detach()
            model.prior = ClippedMixturePrior.from_parameters(loc.detach(), logvar.detach(), logits, k=cfg.clip_k)
        elif isinstance(prior, MixtureOfGaussiansPrior) and cfg.clip and not isinstance(prior, ClippedMixturePrior):
            with torch.no_grad():
                logits = None if prior.logits is None else prior.logits.detach()
                model.prior = ClippedMixturePrior.from_parameters(prior.loc.detach(), prior.logvar.detach(), logits,
                                                                  k=cfg.clip_k)
        if cfg.clip:
            model.prior.set_bounds()
        old = self.dec_opt.param_groups[1]["params"]
        for p in old:
            self.dec_opt.state.pop(p, None)
        self.dec_opt.param_groups[1]["params"] = list(model.prior.parameters()) if cfg.learn_prior else []
        self.switched = True

    # -- state ------------------------------------------------------------------------------
    def _state(self):
        return {"model": self.model.state_dict(), "enc_opt": self.enc_opt.state_dict(),
                "dec_opt": self.dec_opt.state_dict(), "rng": rng_state(), "step": self.step,
                "switched": self.switched}

    def save(self, path=None):
        """Write model, both optimisers, RNG state and step to ``out/checkpoints/last.pt`` (atomic)."""
        path = path or self.out / "checkpoints" / "last.pt"
        save_checkpoint(path, **self._state())

    def resume(self, path=None):
        """Load a checkpoint written by :meth:`save` (switching phase first if it was saved after
        the switch) and continue from its step."""
        # load on the CPU (the RNG states must stay there); load_state_dict moves tensors to the parameters' device
        state = load_checkpoint(path or self.out / "checkpoints" / "last.pt", map_location="cpu")
        if state["switched"] and not self.switched:
            self.switch()
        self.model.load_state_dict(state["model"])
        self.enc_opt.load_state_dict(state["enc_opt"])
        self.dec_opt.load_state_dict(state["dec_opt"])
        set_rng_state(state["rng"])
        self.step = state["step"]
        if self.out is not None and (self.out / "metrics.jsonl").exists():
            path = self.out / "metrics.jsonl"
            lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= self.step]
            path.write_text("".join(ln + "\n" for ln in lines))
        return self

    # -- loop -------------------------------------------------------------------------------
    def _set_lr(self):
        cfg = self.config
        for group in self.enc_opt.param_groups:
            group["lr"] = multistep_lr(cfg.lr_encoder, self.step, cfg.milestones, cfg.lr_factor)
        for group in self.dec_opt.param_groups:
            group["lr"] = multistep_lr(cfg.lr_decoder, self.step, cfg.milestones, cfg.lr_factor)

    def _check(self, loss, name):
        if not torch.isfinite(loss):
            from pyrozoo.inference.trainer import TrainingDiverged
            raise TrainingDiverged(f"{name} became {loss.item()} at iteration {self.step + 1}; stopped"
                                   + (f". The last checkpoint is in {self.out / 'checkpoints'}." if self.out else "."))

    def train_step(self, x):
        """One iteration on the batch ``x``: a β-VAE step during warm-up, else an encoder step then a
        decoder-and-prior step sharing one draw z_s ~ p(z). Returns the step's stats."""
        cfg = self.config
        self._set_lr()
        if self.step < cfg.warmup:
            loss, stats = vae_loss(self.model, x, cfg.loss)
            self._check(loss, "the warm-up loss")
            self.enc_opt.zero_grad(set_to_none=True)
            self.dec_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.enc_opt.step()
            self.dec_opt.step()
            stats["loss_vae"] = loss.item()
        else:
            if not self.switched:
                self.switch()
            with torch.no_grad():  # one draw of z_s for both players (Algorithm 1, line 6)
                noise = prior_noise(self.model.prior(), len(x))
                z_fake = sample_prior(self.model.prior(), len(x), noise)
            loss_e, stats = encoder_loss(self.model, x, z_fake, cfg.loss)
            self._check(loss_e, "the encoder loss")
            self.enc_opt.zero_grad(set_to_none=True)
            loss_e.backward()
            self.enc_opt.step()
            # rebuilt after the encoder step with gradients into the prior (identical for a MoG; a
            # kept VampPrior has moved with the encoder)
            z_fake = sample_prior(self.model.prior(), len(x), noise)
            if not cfg.learn_prior:
                z_fake = z_fake.detach()
            loss_d, stats_d = decoder_loss(self.model, x, z_fake, cfg.loss, learn_prior=cfg.learn_prior)
            self._check(loss_d, "the decoder loss")
            self.dec_opt.zero_grad(set_to_none=True)
            loss_d.backward()
            self.dec_opt.step()
            stats.update(stats_d)
        self.step += 1
        return stats

    def fit(self, stop_after=None):
        """Train until ``config.iterations`` (or ``stop_after`` more iterations); returns the last
        logged stats with the final step."""
        cfg = self.config
        if self.step == 0:
            pyro.set_rng_seed(cfg.seed)
            if self.out is not None:
                self.out.mkdir(parents=True, exist_ok=True)
                (self.out / "intro_config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str))
        end = cfg.iterations if stop_after is None else min(cfg.iterations, self.step + int(stop_after))
        bar = tqdm(total=cfg.iterations, initial=self.step, disable=cfg.quiet, desc="intro", unit="it")
        sums, count, start, last = {}, 0, time.perf_counter(), {}
        self.model.train()
        with pyro.validation_enabled(False):
            while self.step < end:
                x = self._draw(cfg.batch_size).to(self.device)
                stats = self.train_step(x)
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == end:
                    last = {k: v / count for k, v in sums.items()}
                    last.update(step=self.step, phase="vae" if self.step <= cfg.warmup else "intro",
                                seconds=round(time.perf_counter() - start, 3))
                    bar.set_postfix({k: f"{v:.3g}" for k, v in last.items() if k.startswith("loss")})
                    if self.out is not None:
                        with open(self.out / "metrics.jsonl", "a") as f:
                            f.write(json.dumps(last) + "\n")
                    sums, count, start = {}, 0, time.perf_counter()
                if self.out is not None and (self.step % cfg.checkpoint_every == 0 or self.step == end):
                    self.save()
        bar.close()
        self.model.eval()
        return {"step": self.step, **last}
