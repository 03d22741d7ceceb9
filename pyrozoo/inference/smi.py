"""Stein Mixture Inference (SMI) for Pyro models whose guide holds a mixture.

SMI is the method of Rønning, Nalisnick, Ley, Smyth & Hamelryck (2024), "ELBOing Stein: Variational Bayes with Stein
Mixture Inference", arXiv:2410.22948; here it trains the Stein mixture q(m) of the design card "VAE with a
Stein-Learned Hyperprior" (§2.1, eq. 6).

Which parameters are the Stein particles: the guide samples a site from
:class:`~pyrozoo.distributions.stein_mixture.SteinMixture` ``(loc, log_scale)``, each ``(M, d)``.
Those two tensors (leaf parameters: ``nn.Parameter`` or unconstrained ``pyro.param``) are the
particles θ_k = (a_k, log s_k); ``particle_sites`` can restrict SMI to some site names. Every
other parameter the model or guide touches is shared and follows the mean objective.

One step (SMI as in Rønning et al. 2024, applied only to q(m) as in the design card's §2.1):

1. Model and guide run once inside ``pyro.plate("stein_particles", M)`` at the dim left of the
   model's plates (and a plate of S ``num_elbo_particles`` further left); the Stein-mixture site
   draws m_k ~ N(a_k, diag s_k²) at particle index k, scored by log q̄(m) with the mixture
   parameters held constant. Summing log p − log q over the trace gives Σ_k L_k with
   L_k = E_{m ~ N(a_k, B_k), z ~ q(z|x,m)}[log p(x, z, m) − log q̄(m) − log q(z|x, m)].
2. Particles θ ``(M, P)`` = [all locs, all log-scales] ascend the Stein force (Rønning et al. 2024, eq. 9, with a
   loss temperature T)
   φ_l = (1/T) Σ_k k(θ_k, θ_l) ∇_{θ_k} L_k + (α/M) Σ_k ∇_{θ_k} k(θ_k, θ_l)   (:func:`stein_force`).
3. Shared parameters ascend ∇ (1/M) Σ_k L_k with their own optimiser (T does not touch them).

Why T: each L_k sums over the N data points (a mini-batch is scaled by N/B), so its gradient grows
with N while the kernel's gradient does not. With T = 1 (the plain update) the repulsion is
1e-7 of the attraction on MNIST (N = 50 000) and the components meet; ``loss_temperature="num_data"``
sets T = N, i.e. the attraction of the per-point ELBO L_k / N, which is SVGD towards exp(L_k / N)
instead of exp(L_k). This differs from NumPyro's ``SteinVI(loss_temperature=...)``, which multiplies
the model's log density inside the objective of every parameter. The ratio of the two terms' norms
is kept per step (:meth:`SMI.period_metrics`).

With T = N the entropy of a component, which L_k counts once and not N times, pulls its log-scales with
a force of 1/N per dimension, far weaker than the repulsion; a kernel over the whole particle [a, log s]
then drives the log-scales of different components apart without bound (on MNIST some reached −45 within
16 epochs). ``kernel_on_scales=False`` evaluates the kernel on the means alone: the means repel, and the
log-scales follow the kernel-weighted ELBO gradient to the same scales as with T = 1.
"""

import contextlib
import math

import pyro
import pyro.optim
import torch
from pyro import poutine
from pyro.poutine.messenger import Messenger

from pyrozoo.distributions.stein_mixture import ComponentDraws, SteinMixture
from pyrozoo.inference import distributed
from pyrozoo.inference.kernels import make_kernel, pairwise_sq_distances, stein_force_terms
from pyrozoo.inference.objectives import _data_frame, elbo_from_traces
from pyrozoo.inference.traces import masked, particle_dim, sample_sites

#: The plates SMI puts around the model and guide.
SMI_PLATES = ("stein_particles", "elbo_particles")


class _ComponentMessenger(Messenger):
    """Replace each Stein-mixture site's distribution by one draw per component."""

    def __init__(self, pad, num_particles, sites=None, score=False):
        super().__init__()
        self.pad, self.num_particles, self.sites, self.score = pad, num_particles, sites, score
        self.mixtures = {}

    def _pyro_sample(self, msg):
        fn = msg["fn"]
        wanted = self.sites is None or msg["name"] in self.sites
        if isinstance(fn, SteinMixture) and not msg["is_observed"] and wanted:
            if fn.num_components != self.num_particles:
                raise ValueError(f"site {msg['name']!r} has a mixture of {fn.num_components} components but SMI "
                                 f"was given num_particles={self.num_particles}")
            self.mixtures[msg["name"]] = fn
            msg["fn"] = ComponentDraws(fn, pad=self.pad, score=self.score)


def num_data(trace):
    """N, the number of data points a per-particle objective L_k sums over: the largest product of
    the full plate sizes (Pyro's ``full_size`` of a subsampled plate) over the observed sites of
    ``trace``, SMI's own plates left out; 1 without plates."""
    sizes = [math.prod(f.full_size or f.size for f in site["cond_indep_stack"] if f.name not in SMI_PLATES)
             for site in sample_sites(trace) if site["is_observed"]]
    return max(sizes, default=1)


def _unconstrained(value):
    get = getattr(value, "unconstrained", None)
    return get() if callable(get) else value


def _module_params(fn):
    owner = getattr(fn, "__self__", None)
    return list(owner.parameters()) if isinstance(owner, torch.nn.Module) else []


class SMI:
    """Stein Mixture Inference with Pyro's ``SVI`` interface.

    ``SMI(model, guide, optim, num_particles=M, kernel="rbf", repulsion_temperature=1.0,
    loss_temperature=1.0, num_elbo_particles=S)``; ``loss_temperature`` T > 0 divides the
    attraction (see the module docstring), ``"num_data"`` sets T = N of each step's trace
    (:func:`num_data`); ``kernel_on_scales=False`` computes the kernel on the means a_k alone (the
    log-scales are then attracted but not repelled; see the module docstring); ``optim`` (a ``pyro.optim`` optimiser, e.g. ``Adam({"lr": 1e-3})``)
    updates the shared parameters and ``particle_optim`` (default ``Adam({"lr": 1e-2})``) the
    Stein particles. ``kernel``: a name from :data:`~pyrozoo.inference.kernels.KERNELS` or a
    :class:`~pyrozoo.inference.kernels.Kernel`. ``particle_sites``: names of the guide's
    :class:`SteinMixture` sites to treat as particles (default: all). ``warmup_steps``: the first
    steps update only the shared parameters. ``mixture_score=True`` adds the zero-mean score term
    of log q̄ (the total derivative, as ``Trace_ELBO`` takes it; with M = 1 and α = 0 SMI then
    gives exactly ``Trace_ELBO``'s gradients); the default holds q̄ constant
    (the per-particle objective L_k above).

    :meth:`step` and :meth:`evaluate_loss` return the **loss**, the negative mixture ELBO
    −(1/M) Σ_k L_k (averaged over the S draws), in Pyro's convention, i.e. summed over the
    data points (scaled to the data set when the model's plate gets ``num_data``).
    """

    def __init__(self, model, guide, optim=None, num_particles=5, kernel="rbf", repulsion_temperature=1.0,
                 num_elbo_particles=1, particle_optim=None, particle_sites=None, warmup_steps=0,
                 mixture_score=False, analytic_kl=False, loss_temperature=1.0, kernel_on_scales=True):
        if int(num_particles) < 1:
            raise ValueError(f"SMI needs num_particles >= 1, got {num_particles}")
        if int(num_elbo_particles) < 1:
            raise ValueError(f"num_elbo_particles must be >= 1, got {num_elbo_particles}")
        if not repulsion_temperature >= 0:
            raise ValueError(f"repulsion_temperature must be >= 0, got {repulsion_temperature}")
        if loss_temperature != "num_data" and (isinstance(loss_temperature, (bool, str)) or
                                               not float(loss_temperature) > 0 or
                                               not math.isfinite(float(loss_temperature))):
            raise ValueError(f"loss_temperature must be a number > 0 or 'num_data', got {loss_temperature!r}")
        self.model, self.guide = model, guide
        self.optim = optim if optim is not None else pyro.optim.Adam({"lr": 1e-3})
        self.particle_optim = particle_optim if particle_optim is not None else pyro.optim.Adam({"lr": 1e-2})
        self.num_particles = int(num_particles)
        self.kernel = make_kernel(kernel)
        self.repulsion_temperature = float(repulsion_temperature)
        self.loss_temperature = loss_temperature if loss_temperature == "num_data" else float(loss_temperature)
        self.temperature = 1.0  # T of the last step
        self.kernel_on_scales = bool(kernel_on_scales)
        self._forces = None  # [Σ attraction, Σ repulsion, Σ ratio of norms, steps] since the last period_metrics()
        self.num_elbo_particles = int(num_elbo_particles)
        self.particle_sites = None if particle_sites is None else set(particle_sites)
        self.warmup_steps = int(warmup_steps)
        self.mixture_score = bool(mixture_score)
        self.analytic_kl = bool(analytic_kl)
        self.num_steps = 0
        self.mixtures = {}
        self.dim = particle_dim(model)

    # -- the vectorised objective --------------------------------------------------------------
    def _traces(self, model, guide, args, kwargs, num_samples=None):
        messenger = _ComponentMessenger(pad=-self.dim - 1, num_particles=self.num_particles,
                                        sites=self.particle_sites, score=self.mixture_score)
        m, s = self.num_particles, num_samples or self.num_elbo_particles

        def plated(fn, use_messenger):
            def wrapped(*a, **k):
                with pyro.plate("elbo_particles", s, dim=self.dim - 1), \
                        pyro.plate("stein_particles", m, dim=self.dim):
                    if use_messenger:
                        with messenger:
                            return fn(*a, **k)
                    return fn(*a, **k)
            return wrapped

        with poutine.trace(param_only=True) as params:
            guide_trace = poutine.trace(plated(guide, True)).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(plated(model, False), trace=guide_trace)).get_trace(
                *args, **kwargs)
        if not messenger.mixtures:
            raise ValueError("SMI found no SteinMixture site in the guide: sample the Stein-mixture latent from "
                             "pyrozoo.distributions.SteinMixture(loc, log_scale)" +
                             (f" (particle_sites={sorted(self.particle_sites)})" if self.particle_sites else ""))
        for name, mix in messenger.mixtures.items():
            for t in (mix.loc, mix.log_scale):
                if not (t.is_leaf and t.requires_grad):
                    raise ValueError(f"the Stein particles of site {name!r} must be leaf parameters (nn.Parameter or "
                                     "an unconstrained pyro.param)")
        self.mixtures = messenger.mixtures
        self.temperature = float(num_data(model_trace)) if self.loss_temperature == "num_data" else \
            self.loss_temperature
        shared = [_unconstrained(site["value"]) for site in params.trace.nodes.values()]
        shared += _module_params(self.model) + _module_params(self.guide) + _module_params(model) + \
            _module_params(guide)
        return model_trace, guide_trace, shared

    def _particle_tensors(self):
        mixes = list(self.mixtures.values())
        return [mx.loc for mx in mixes] + [mx.log_scale for mx in mixes]

    def particles(self):
        """The particles as one matrix θ ``(M, P)`` = [locs of every site, log-scales of every site]
        (detached; available after the first step)."""
        if not self.mixtures:
            raise RuntimeError("no particles yet: call step() or evaluate_loss() first")
        return torch.cat([t.detach().reshape(self.num_particles, -1) for t in self._particle_tensors()], -1)

    def _check_distinct(self, theta):
        if self.num_particles < 2:
            return
        d2 = pairwise_sq_distances(theta)
        d2 = d2 + torch.diag(torch.full((self.num_particles,), float("inf"), dtype=d2.dtype, device=d2.device))
        if d2.min() <= 0:
            k, l_ = divmod(int(d2.argmin()), self.num_particles)
            raise ValueError(f"Stein particles {k} and {l_} are identical; initialise the mixture components at "
                             "distinct values (e.g. loc ~ N(0, I))")

    def _loss(self, args, kwargs, model=None, guide=None):
        model_trace, guide_trace, shared = self._traces(model or self.model, guide or self.guide, args, kwargs)
        total = elbo_from_traces(model_trace, guide_trace, analytic_kl=self.analytic_kl)
        return total / self.num_elbo_particles, shared  # Σ_k L_k

    # -- public API ----------------------------------------------------------------------------
    def evaluate_loss(self, *args, **kwargs):
        """The negative mixture ELBO −(1/M) Σ_k L_k without updating anything (a float)."""
        return self.loss(self.model, self.guide, *args, **kwargs)

    def compute_gradients(self, *args, **kwargs):
        """One evaluation of the objective and its update directions, without stepping.

        Returns ``(loss, particle_directions, shared_grads)``: the loss (float), a dict
        ``{tensor: φ-block}`` with the Stein force of each particle tensor (same shape; to be
        ascended) and a dict ``{tensor: ∇ (1/M) Σ_k L_k}`` for each shared parameter.
        """
        return self._directions(*self._loss(args, kwargs))

    def _directions(self, total, shared):
        particles = self._particle_tensors()
        ids = {id(t) for t in particles}
        seen, shared_unique = set(), []
        for p in shared:
            if id(p) not in ids and id(p) not in seen and p.requires_grad:
                seen.add(id(p))
                shared_unique.append(p)
        grads = torch.autograd.grad(total, particles + shared_unique, allow_unused=True)
        m = self.num_particles
        g_particles = [torch.zeros_like(t) if g is None else g for t, g in zip(particles, grads[:len(particles)])]
        theta = self.particles()
        self._check_distinct(theta)
        g_matrix = torch.cat([g.reshape(m, -1) for g in g_particles], -1)  # row k = ∇_{θ_k} L_k
        if self.kernel_on_scales:
            k = self.kernel.setup(theta)
        else:  # the kernel sees the locs only, so nothing repels the log-scales
            width = sum(mx.loc[0].numel() for mx in self.mixtures.values())
            k_loc = self.kernel.setup(theta[:, :width])

            def k(x, y):
                return k_loc(x[..., :width], y[..., :width])
        self.last_kernel = k
        attraction, repulsion = stein_force_terms(k, theta, g_matrix)
        attraction, repulsion = attraction / self.temperature, self.repulsion_temperature / m * repulsion
        self._tally(attraction, repulsion)
        phi = attraction + repulsion
        directions, start = {}, 0
        for t in particles:
            width = t[0].numel() if t.dim() > 1 else 1
            directions[t] = phi[:, start:start + width].reshape(t.shape)
            start += width
        shared_grads = {p: g / m for p, g in zip(shared_unique, grads[len(particles):]) if g is not None}
        return -total.item() / m, directions, shared_grads

    @torch.no_grad()
    def component_log_weights(self, *args, num_samples=1, **kwargs):
        """Local log weights per draw, component and data point ``(S, M, B)``: log p(x_i, z | m) −
        log q(z | x_i, m) with m ~ N(a_k, B_k) (component k) and z ~ q(z | x_i, m), for
        ``model(*args, **kwargs)``. Sites outside the model's ``"data"`` plate (the global m) are left
        out and site scales are ignored (per-point densities, as in
        :func:`~pyrozoo.inference.charts.responsibilities`)."""
        model_trace, guide_trace, _ = self._traces(self.model, self.guide, args, kwargs, num_samples)
        total = 0.0
        for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
            for site in sample_sites(trace):
                frame = _data_frame(site)
                if frame is None:
                    continue
                lp = masked(site["fn"].log_prob(site["value"]), site)
                lp = lp.reshape((1,) * max(0, 1 - self.dim - lp.dim()) + lp.shape)
                keep = [lp.dim() + self.dim - 1, lp.dim() + self.dim, lp.dim() + frame.dim]
                others = [d for d in range(lp.dim()) if d not in keep]
                total = total + sign * (lp.sum(others) if others else lp)
        return total

    def _tally(self, attraction, repulsion):
        pull = attraction.norm()
        ratio = (repulsion.norm() / pull).item() if pull > 0 else math.inf
        if self._forces is None or self._forces[0].shape != attraction.shape:
            self._forces = [torch.zeros_like(attraction), torch.zeros_like(repulsion), 0.0, 0]
        f = self._forces
        f[0] += attraction.detach()
        f[1] += repulsion.detach()
        f[2] += ratio
        f[3] += 1

    @contextlib.contextmanager
    def uncounted(self):
        """A context in which calls do not count: the step count (warm-up) and the force tally are
        restored on exit (e.g. for a probe of which parameters get gradients)."""
        steps, forces = self.num_steps, self._forces
        self._forces = None
        try:
            yield self
        finally:
            self.num_steps, self._forces = steps, forces

    def period_metrics(self, model=None, dataset=None, num_points=500, num_samples=4):
        """Metrics of the steps since the last call (for a training record), then a fresh count.

        ``stein_repulsion_ratio``: the mean over steps of ‖(α/M) Σ_k ∇k‖ / ‖(1/T) Σ_k k ∇L_k‖, the two
        terms of the Stein force over all particles (the attraction of one step carries the mini-batch's
        and the draws' noise); ``stein_mean_force_ratio``: the same ratio of the two terms summed over the
        steps (the noise averages out; about 1 when the particles are at rest); ``stein_loss_temperature``:
        T. With ``dataset``
        (a :class:`~pyrozoo.data.Dataset`) the chart diagnostics of
        :func:`~pyrozoo.inference.charts.chart_metrics` on its first ``num_points`` validation points
        (``num_samples`` draws per component, the same fixed draws every period; labels when it has
        them). ``model`` is unused (the hook's signature). Under ``torch.distributed`` the force terms
        of every rank's micro-batches are pooled, so every rank returns the same record.
        """
        out = {}
        if self._forces is not None:
            att, rep, ratios, steps = self._forces
            # every micro-batch of every rank counts once: a run on R ranks reports what one process with
            # R micro-batches per step reports (the norms' ratio is the same for sums and means)
            att, rep = distributed.all_reduce_mean(att), distributed.all_reduce_mean(rep)
            ratios, steps = distributed.all_reduce_sum([ratios, steps])
            out = {"stein_repulsion_ratio": ratios / steps,
                   "stein_mean_force_ratio": (rep.norm() / att.norm()).item() if att.norm() > 0 else math.inf,
                   "stein_loss_temperature": self.temperature}
        self._forces = None
        if dataset is not None and self.mixtures:
            from pyrozoo.inference.charts import chart_metrics
            x = dataset.valid[:num_points]
            labels = dataset.labels.get("valid")
            if labels is not None and len(labels) != len(dataset.valid):
                labels = None  # labels of another split size do not describe these rows
            # the same draws every period and on every rank (common random numbers), apart from training's RNG
            with pyro.validation_enabled(False), torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
                torch.manual_seed(0)
                lw = self.component_log_weights(x, num_samples=num_samples)
            mixes = list(self.mixtures.values())
            loc, log_scale = (torch.cat([getattr(mx, name).detach() for mx in mixes], -1)
                              for name in ("loc", "log_scale"))
            out.update(chart_metrics(lw, loc, log_scale, None if labels is None else labels[:len(x)]))
        return out

    def differentiable_loss(self, model, guide, *args, **kwargs):
        """A surrogate loss for a plain torch training loop (e.g. :class:`~pyrozoo.inference.TrainingLoop`
        with ``objective=smi`` and ``optimizer=torch.optim.Adam(stein_param_groups(model, ...))``).

        Its value is the loss −(1/M) Σ_k L_k; ``backward()`` leaves −φ in the particles' ``.grad``
        and −∇ (1/M) Σ_k L_k in the shared parameters', so any optimiser step is the SMI update.
        ``model``/``guide`` are the programs to trace (they may be wrapped, e.g. in
        ``scale_latents``). Under ``torch.no_grad()`` it returns the plain loss value.
        """
        total, shared = self._loss(args, kwargs, model, guide)
        if not torch.is_grad_enabled() or not total.requires_grad:
            return (-total / self.num_particles).detach()
        loss, directions, shared_grads = self._directions(total, shared)
        surrogate = 0.0
        moving = list(directions.items()) if self.num_steps >= self.warmup_steps else []
        for p, g in list(shared_grads.items()) + moving:
            surrogate = surrogate - (g.detach() * p).sum()
        self.num_steps += 1
        return surrogate - surrogate.detach() + loss

    def loss(self, model, guide, *args, **kwargs):
        """The loss −(1/M) Σ_k L_k as a float (Pyro's ``ELBO.loss`` signature)."""
        with torch.no_grad():
            total, _ = self._loss(args, kwargs, model, guide)
        return -total.item() / self.num_particles

    def step(self, *args, **kwargs):
        """One SMI update; returns the loss −(1/M) Σ_k L_k before the update (a float)."""
        loss, directions, shared_grads = self.compute_gradients(*args, **kwargs)
        for p, g in shared_grads.items():
            p.grad = -g
        if shared_grads:
            self.optim(list(shared_grads))
        if self.num_steps >= self.warmup_steps:
            for p, phi in directions.items():
                p.grad = -phi
            self.particle_optim(list(directions))
        for p in list(shared_grads) + list(directions):
            p.grad = None
        self.num_steps += 1
        return loss


def stein_param_groups(module, lr=1e-3, particle_lr=1e-2):
    """``torch.optim`` parameter groups for a module holding :class:`~pyrozoo.guides.SteinMixtureGuide`
    parts: the Stein particles (``loc``, ``log_scale``) at ``particle_lr``, everything else at
    ``lr``. Use as ``torch.optim.Adam(stein_param_groups(model))`` with
    :meth:`SMI.differentiable_loss`."""
    from pyrozoo.guides.stein import SteinMixtureGuide
    particles = [p for sub in module.modules() if isinstance(sub, SteinMixtureGuide) for p in (sub.loc, sub.log_scale)]
    if not particles:
        raise ValueError("the module holds no SteinMixtureGuide, so it has no Stein particles")
    ids = {id(p) for p in particles}
    shared = [p for p in module.parameters() if id(p) not in ids]
    return [{"params": shared, "lr": lr}, {"params": particles, "lr": particle_lr}]
