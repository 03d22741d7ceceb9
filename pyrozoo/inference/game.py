"""The Soft-IntroVAE game as a strategy of :class:`~pyrozoo.inference.loop.TrainingLoop`.

Athanasiadis, Lindsten & Felsberg (2025), Prior Learning in Introspective VAEs,
arXiv:2408.13805, Algorithm 1: a β-VAE warm-up, then per iteration an encoder step on L_E and a
decoder(-and-prior) step on L_D sharing one draw z_s ~ p(z) (losses in
:mod:`pyrozoo.inference.introspective`). Learning rates drop ×``lr_factor`` at each milestone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from pyrozoo.distributions.intro_prior import ClippedMixturePrior
from pyrozoo.distributions.priors import MixtureOfGaussiansPrior, VampPrior
from pyrozoo.inference.introspective import (IntroLossSettings, decoder_loss, encoder_loss, prior_noise,
                                             sample_prior, vae_loss)
from pyrozoo.inference import distributed
from pyrozoo.inference.loop import Strategy, check_device, check_finite


def epoch_iterations(num_points: int, batch_size: int, parts: int = 1) -> int:
    """Iterations in one pass over ``num_points`` training points with micro-batches of ``batch_size``
    and ``parts`` = processes × accumulated micro-batches per iteration: ceil(N / batch) for one part
    (the last batch smaller), else N // (batch · parts) (an incomplete last global batch is dropped, as
    the epoch-based loop does)."""
    if parts == 1:
        return -(-num_points // batch_size)
    return num_points // (batch_size * parts)


def multistep_lr(base_lr: float, step: int, milestones, factor: float = 0.1) -> float:
    """MultiStep decay: ``base_lr · factor^(number of milestones <= step)``."""
    return base_lr * factor ** sum(int(step) >= int(m) for m in milestones)


@dataclass
class IntroConfig:
    """Settings of an introspective run (plain values, saved with the run).

    ``iterations`` total steps of ``batch_size``; the first ``warmup`` steps are a plain β-VAE
    (``warmup >= iterations`` trains a β-VAE only). ``learn_prior`` (IP): the prior is trained
    with the decoder in the adversarial phase; ``clip``: soft-clip its log-variances (eq. 10,
    K = ``clip_k``) with bounds taken at the switch. A VampPrior is turned into a mixture of
    Gaussians at the switch unless ``keep_vampprior`` (prior-encoder cooperation, the paper's
    VAMP(64) columns; then ``learn_prior`` trains the pseudo-inputs with the decoder).
    ``log_every`` iterations make one period of the loop (a metrics record and a checkpoint).
    Each iteration averages ``accumulate`` micro-batches of ``batch_size`` per rank.
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
    accumulate: int = 1
    seed: int = 0
    device: str = "cpu"
    quiet: bool = False
    log_every: int = 100
    loss: IntroLossSettings = field(default_factory=IntroLossSettings)

    def validate(self) -> "IntroConfig":
        """Raise ``ValueError`` for settings that make no sense."""
        for name in ("iterations", "batch_size", "log_every", "accumulate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an integer >= 0 (iterations), got {self.warmup!r}")
        for name in ("lr_encoder", "lr_decoder", "lr_factor", "clip_k"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in self.milestones):
            raise ValueError(f"milestones must be iterations >= 0, got {tuple(self.milestones)}")
        check_device(self.device)
        self.loss.validate()
        return self

    def to_dict(self) -> dict:
        """Plain values (the loss settings as a nested dict)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "IntroConfig":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["loss"] = IntroLossSettings(**d["loss"])
        d["milestones"] = tuple(d["milestones"])
        return cls(**d)


def check_game_model(model, config: IntroConfig):
    """Raise ``ValueError`` when ``model``'s parts do not fit the game ``config`` asks for."""
    for part in ("encoder", "decoder", "prior"):
        if not hasattr(model, part):
            raise ValueError(f"the introspective game needs a model with an {part!r} part")
    prior = model.prior
    mixture = isinstance(prior, (MixtureOfGaussiansPrior, VampPrior))
    if (config.learn_prior or config.clip) and not mixture:
        raise ValueError(f"learn_prior and clip need a mixture prior (MoG or VampPrior), not {type(prior).__name__}")
    if config.loss.r_entropy > 0 and not mixture:
        raise ValueError("r_entropy > 0 needs a mixture prior (MoG or VampPrior)")
    if config.keep_vampprior and (config.clip or not isinstance(prior, VampPrior)):
        raise ValueError("keep_vampprior needs a VampPrior and no clipping (clipping acts on a MoG's log-variances)")


def switch_prior(model, config: IntroConfig):
    """The prior of the adversarial phase, set on ``model`` in place: a VampPrior becomes a MoG
    with μ_k, log σ²_k from the encoder at the pseudo-inputs (weights copied) unless
    ``keep_vampprior``; with ``clip`` a MoG becomes a :class:`ClippedMixturePrior` whose bounds
    [a_j, b_j] are fixed now. Idempotent: a prior already switched is left as it is."""
    prior = model.prior
    if isinstance(prior, VampPrior) and not config.keep_vampprior:
        with torch.no_grad():
            loc, logvar = prior._encode(prior.pseudo_inputs())
            logits = None if prior.logits is None else prior.logits.detach()
        model.prior = ClippedMixturePrior.from_parameters(loc.detach(), logvar.detach(), logits, k=config.clip_k)
    elif isinstance(prior, MixtureOfGaussiansPrior) and config.clip and not isinstance(prior, ClippedMixturePrior):
        with torch.no_grad():
            logits = None if prior.logits is None else prior.logits.detach()
            model.prior = ClippedMixturePrior.from_parameters(prior.loc.detach(), prior.logvar.detach(), logits,
                                                              k=config.clip_k)
    if config.clip and isinstance(model.prior, ClippedMixturePrior):
        model.prior.set_bounds()
    return model.prior


class IntroStrategy(Strategy):
    """Train a zoo VAE (``encoder``, ``decoder``, ``prior`` parts) with the Soft-IntroVAE game.

    ``data`` is a tensor ``(N, *event_shape)`` of training images, read in epochs as the authors'
    data loader does (each epoch one permutation drawn from (seed, epoch), cut into the iterations'
    global batches: :func:`epoch_iterations` iterations per epoch, so a schedule in epochs is
    ``epochs × epoch_iterations(N, batch_size)`` iterations), or a callable ``n -> (n, *event_shape)``
    drawing fresh points (the 2D sets). Two Adam optimisers: the encoder's, and the decoder's with the
    prior as a second parameter group.
    """

    unit = "iteration"

    def __init__(self, model, data, config: IntroConfig):
        self.config = config.validate()
        check_game_model(model, config)
        self.model = model
        self.seed, self.quiet = config.seed, config.quiet
        self.units_per_period = config.log_every
        self.boundaries = []  # the iteration count after each period
        self._data = data
        self.step = 0
        self.switched = False
        self.enc_opt = self.dec_opt = None
        if callable(data) and not torch.is_tensor(data):
            model.check_data(data(2))
        elif not torch.is_tensor(data) or len(data) < 1:
            raise ValueError("data must be a non-empty tensor (N, *event_shape) or a callable n -> tensor")
        else:
            model.check_data(data)

    def units_done(self, period):
        return self.boundaries[period - 1] if period > 0 else 0

    def total_units(self):
        return self.config.iterations

    def finished(self, period):
        return self.step >= self.config.iterations

    def setup(self):
        cfg, model = self.config, self.model
        self.ctx, device = distributed.setup(cfg.device)
        self.device = torch.device(device)
        model.to(self.device)
        distributed.broadcast_module(model)  # every rank starts from rank 0's initialisation
        data = self._data
        self._order = (None, None)  # (epoch, its permutation) of tensor data
        if callable(data) and not torch.is_tensor(data):
            self._images = None
        else:
            self._images = data.to(self.device)
            parts = self.ctx.world_size * cfg.accumulate
            if epoch_iterations(len(data), cfg.batch_size, parts) < 1:
                raise ValueError(f"the training set ({len(data)} points) is smaller than one global batch "
                                 f"({cfg.batch_size} x {parts}); use a smaller batch_size")
        if self.enc_opt is None:
            self.enc_opt = torch.optim.Adam(model.encoder.parameters(), lr=cfg.lr_encoder)
            self.dec_opt = torch.optim.Adam([{"params": list(model.decoder.parameters())},
                                             {"params": list(model.prior.parameters())}], lr=cfg.lr_decoder)

    def switch(self):
        """Start the adversarial phase (:func:`switch_prior`) and rebuild the prior's parameter
        group (empty unless ``learn_prior``)."""
        switch_prior(self.model, self.config)
        for p in self.dec_opt.param_groups[1]["params"]:
            self.dec_opt.state.pop(p, None)
        self.dec_opt.param_groups[1]["params"] = list(self.model.prior.parameters()) if self.config.learn_prior else []
        self.switched = True

    def _set_lr(self):
        cfg = self.config
        for opt, base in ((self.enc_opt, cfg.lr_encoder), (self.dec_opt, cfg.lr_decoder)):
            for group in opt.param_groups:
                group["lr"] = multistep_lr(base, self.step, cfg.milestones, cfg.lr_factor)

    def _micro(self, x):
        """``[(micro-batch index j or None, batch or None)]`` of this rank for one iteration."""
        if x is not None:  # a given batch (tests, timings): one micro-batch, the RNG left as it is
            return [(None, x)]
        ctx, k = self.ctx, self.config.accumulate
        return [(a * ctx.world_size + ctx.rank, None) for a in range(k)]

    def _begin(self, j, x, phase):
        """Seed the micro-batch's RNG (for ``phase`` 0: encoder/warm-up, 1: decoder) and draw its data."""
        if j is not None:
            distributed.seed_micro_batch(self.config.seed, self.step, j, phase)
        if x is not None:
            return x
        if self._images is None:
            return self._data(self.config.batch_size).to(self.device)
        return self._images[self._epoch_slice(j)]

    def _epoch_slice(self, j):
        """Indices of micro-batch ``j`` of the current iteration in the epoch order of the tensor data."""
        cfg, n = self.config, len(self._images)
        parts = self.ctx.world_size * cfg.accumulate
        epoch, pos = divmod(self.step, epoch_iterations(n, cfg.batch_size, parts))
        if self._order[0] != epoch:
            g = torch.Generator().manual_seed((int(cfg.seed) * 1_000_003 + epoch) % (2 ** 63))
            self._order = (epoch, torch.randperm(n, generator=g).to(self.device))
        start = (pos * parts + j) * cfg.batch_size
        return self._order[1][start:start + cfg.batch_size]

    def _finish(self, losses, what, params, optimizers):
        """Average the micro-batches' loss over ranks, stop on a non-finite one, average the
        gradients of ``params`` over ranks and step ``optimizers``."""
        loss = distributed.all_reduce_mean(torch.stack(losses).mean())
        check_finite(loss, what, f"iteration {self.step + 1}")
        distributed.average_gradients(params)
        for opt in optimizers:
            opt.step()
        return loss.item()

    def train_step(self, x=None) -> dict:
        """One iteration: a β-VAE step during warm-up, else an encoder step then a decoder-and-prior
        step sharing one draw z_s ~ p(z) per micro-batch (Algorithm 1). Each rank draws
        ``accumulate`` micro-batches of ``batch_size`` (seeded by seed, iteration and micro-batch
        index), and gradients are averaged over micro-batches and ranks. ``x``: a given batch
        instead (one micro-batch). Returns the step's stats, averaged over micro-batches and ranks."""
        cfg, model = self.config, self.model
        self._set_lr()
        micro = self._micro(x)
        k = len(micro)
        stats_sum = {}

        def collect(stats):
            for key, v in stats.items():
                stats_sum[key] = stats_sum.get(key, 0.0) + v / k

        if self.step < cfg.warmup:
            self.enc_opt.zero_grad(set_to_none=True)
            self.dec_opt.zero_grad(set_to_none=True)
            losses = []
            for j, xb in micro:
                loss, stats = vae_loss(model, self._begin(j, xb, 0), cfg.loss)
                (loss / k).backward()
                losses.append(loss.detach())
                collect(stats)
            stats_sum["loss_vae"] = self._finish(losses, "the warm-up loss", model.parameters(),
                                                 (self.enc_opt, self.dec_opt))
        else:
            if not self.switched:
                self.switch()
            self.enc_opt.zero_grad(set_to_none=True)
            losses, kept = [], []
            for j, xb in micro:
                xb = self._begin(j, xb, 0)
                with torch.no_grad():  # one draw of z_s for both players (Algorithm 1, line 6)
                    noise = prior_noise(model.prior(), len(xb))
                    z_fake = sample_prior(model.prior(), len(xb), noise)
                loss_e, stats = encoder_loss(model, xb, z_fake, cfg.loss)
                (loss_e / k).backward()
                losses.append(loss_e.detach())
                kept.append((j, xb, noise))
                collect(stats)
            self._finish(losses, "the encoder loss", model.encoder.parameters(), (self.enc_opt,))
            self.dec_opt.zero_grad(set_to_none=True)
            losses = []
            for j, xb, noise in kept:
                if j is not None:
                    distributed.seed_micro_batch(cfg.seed, self.step, j, 1)
                # rebuilt after the encoder step with gradients into the prior (identical for a MoG; a
                # kept VampPrior has moved with the encoder)
                z_fake = sample_prior(model.prior(), len(xb), noise)
                if not cfg.learn_prior:
                    z_fake = z_fake.detach()
                loss_d, stats = decoder_loss(model, xb, z_fake, cfg.loss, learn_prior=cfg.learn_prior)
                (loss_d / k).backward()
                losses.append(loss_d.detach())
                collect(stats)
            self._finish(losses, "the decoder loss", list(model.decoder.parameters()) + list(model.prior.parameters()),
                         (self.dec_opt,))
        self.step += 1
        keys = sorted(stats_sum)
        return dict(zip(keys, (v / self.ctx.world_size for v in distributed.all_reduce_sum([stats_sum[k_]
                                                                                          for k_ in keys]))))

    def train_period(self, period):
        cfg = self.config
        end = min((self.step // cfg.log_every + 1) * cfg.log_every, cfg.iterations)
        sums, count = {}, 0
        while self.step < end:
            stats = self.train_step()
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
        self.boundaries.append(self.step)
        return {**{k: v / count for k, v in sums.items()}, "phase": "vae" if self.step <= cfg.warmup else "intro"}

    def progress(self, period):
        return {"step": self.step}

    def set_lr(self, lr):
        """Change both players' base learning rate (the milestones still apply)."""
        self.config.lr_encoder = self.config.lr_decoder = float(lr)

    def state_dict(self):
        return {"enc_opt": self.enc_opt.state_dict(), "dec_opt": self.dec_opt.state_dict(), "step": self.step,
                "switched": self.switched, "boundaries": list(self.boundaries)}

    def load_state_dict(self, state, model_state):
        if state["switched"] and not self.switched:
            self.switch()
        self.model.load_state_dict(model_state)
        self.enc_opt.load_state_dict(state["enc_opt"])
        self.dec_opt.load_state_dict(state["dec_opt"])
        self.step = state["step"]
        self.boundaries = list(state["boundaries"])
