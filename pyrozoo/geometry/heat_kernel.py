"""The Riemannian heat kernel (Brownian-motion transition density) as a Pyro distribution.

Kalatzis, Eklund, Arvanitidis & Hauberg (2020), "Variational Autoencoders with Riemannian Brownian Motion Priors",
ICML, arXiv:2002.05227, §3: prior and posterior of the R-VAE are heat kernels of Brownian motion on the latent
manifold with the decoder's pull-back metric, evaluated by the zeroth-order parametrix (eq. 3.3) and sampled by a
random walk (eq. 3.15).
"""

import math

import torch
from pyro.distributions import TorchDistribution, constraints

from pyrozoo.geometry.brownian import brownian_motion
from pyrozoo.geometry.curves import fit_geodesic
from pyrozoo.geometry.metric import logdet_psd

_DISTANCES = ("local", "geodesic")
_H0 = ("paper", "parametrix", "one")
_MEASURES = ("riemannian", "lebesgue", "det-g")
_SAMPLERS = ("brownian", "euclidean")

#: The geodesic solver of the R-VAE presets (:func:`~pyrozoo.geometry.curves.fit_geodesic` settings): cubic splines
#: with 4 free nodes on 16 points (the authors' code uses 5 nodes on a 16-point grid), up to 10 L-BFGS steps from the
#: straight line, stopped once a step shortens no curve by 1e-4 of its length. On a 2D MNIST R-VAE (3 + 4 epochs on
#: 1000 images, benchmarks/rvae_distance.py) its l² from the prior centre to 100 test codes is within 1.6e-4 (max,
#: median 1e-5) of a 60-step solve.
GEODESIC_SOLVER = dict(num_nodes=4, num_points=16, iterations=10, optimizer="lbfgs", lr=1.0, tol=1e-4)


def geodesic_options(immersion=None):
    """``geodesic_kwargs`` for :class:`HeatKernel` with :data:`GEODESIC_SOLVER`: chords measured in the
    ``immersion``'s output space when one is given (``rule="chord"``, no metric tensor on the curves),
    else the metric at the chords' midpoints."""
    return {**GEODESIC_SOLVER, "rule": "chord", "immersion": immersion} if immersion is not None \
        else dict(GEODESIC_SOLVER)


def _compact(x, batch_dims):
    """``x`` ``(*batch, d)`` with every expanded (stride-0) batch dimension cut to size 1."""
    index = tuple(slice(0, 1) if x.stride(i) == 0 and x.shape[i] > 1 else slice(None) for i in range(batch_dims))
    return x[index]


class HeatKernel(TorchDistribution):
    r"""Heat kernel p_t(z | mu) of Brownian motion started at ``mu`` and run for time ``t``.

    Shapes: ``mu`` ``(B, d)`` (any batch shape ``(..., d)``), ``t`` a float or a tensor
    broadcastable to the batch shape; event shape ``(d,)``. ``metric_fn`` maps ``(n, d)`` to the
    metric tensors ``(n, d, d)`` (e.g. :class:`~pyrozoo.geometry.metric.PullbackMetric`); it is
    kept as a callable, so any metric works.

    **Density** (zeroth-order parametrix, eq. 3.3 / 3.6-3.7)::

        log p(z) = -(d/2) log(2 pi t) + log H0(z, mu) - l²(z, mu) / (2 t)

    **Base measure.** With ``base_measure="riemannian"`` (default, the paper's choice, §3.1) this
    is a density with respect to the Riemannian volume measure dM_z = sqrt(det G(z)) dz, not
    Lebesgue measure. The ELBO (eq. 3.4) is then an integral against dM, and log q - log p is the
    same under either base measure as long as prior and posterior share it: use a
    ``HeatKernel`` for *both* (or pass ``base_measure="lebesgue"``, which adds
    log sqrt(det G(z)) and returns a density w.r.t. dz that can be compared with ordinary
    Lebesgue densities such as a Gaussian guide). ``base_measure="det-g"`` (only with
    ``h0="paper"``) gives the density w.r.t. det G(z) dz: the ½ log det G(z) of H0 moves into the
    base measure, so the density needs the metric only at mu, and for a prior and a posterior
    that both use it log q − log p is exactly eq. (3.8) at a third of the cost (no metric at z).

    **H0** (``h0``):

    - ``"paper"`` (default): H0 = (det G(z) / det G(mu))^{1/2}, the ratio of the Riemannian
      volume densities at z and at mu, exactly as printed under eq. (3.3); it yields the
      ½[log det G(mu_p) - log det G(mu_q)] term of the paper's KL estimate (eq. 3.8).
    - ``"parametrix"``: H0 = (det G(mu) / det G(z))^{1/4}. The classical parametrix (Hsu 2002)
      has H0 = Θ^{-1/2}, Θ the volume density of normal coordinates at mu; approximating the
      log-map's Jacobian by the identity gives Θ ≈ (det G(z)/det G(mu))^{1/2}, i.e. this
      choice. It is what makes p dM agree with N(mu, t G(mu)^{-1}) to first order around mu.
    - ``"one"``: H0 = 1.

    All three coincide when G is constant; then ``p(z) sqrt(det G) = N(z; mu, t G^{-1})``.

    **l²** (``distance``): ``"geodesic"`` (the paper's: the squared geodesic distance, §3.1 and
    Appendix B) solves for the geodesic between mu and every z by curve-energy minimisation
    (:func:`fit_geodesic` with ``geodesic_kwargs``, e.g. :func:`geodesic_options`; all curves of a
    call in one batched solve) and uses its squared length, differentiable through the envelope
    gradient. ``"local"`` (the class default, cheap) uses (z - mu)ᵀ G(mu) (z - mu), the squared
    distance in the tangent space at mu, exact for constant metrics and accurate for z near mu; on
    a short-trained 2D MNIST R-VAE it is 0.94-1.39× the geodesic l² from the prior centre to 100
    test codes (benchmarks/rvae_distance.py).

    **Sampling** (``sampler``). ``"brownian"`` (default): ``rsample`` runs Brownian motion from mu
    for time t in ``num_steps`` steps (eq. 3.15, :func:`~pyrozoo.geometry.brownian.brownian_motion`),
    reparameterised in mu, t and the metric's parameters. ``"euclidean"``: z = mu + sqrt(t) ε,
    ε ~ N(0, I), the cheap reparameterisation the authors' code uses for q(z|x); its draws
    ignore the metric, so ``log_prob`` is then a score of those draws, not their exact density.
    ``generator`` optionally fixes the noise.

    Per ``log_prob`` call with N points: one metric evaluation at the B centres and (unless
    ``h0="one"`` with the Riemannian base) one at the N points, plus N d x d Choleskys.
    """

    arg_constraints = {"mu": constraints.real_vector, "t": constraints.positive}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, mu, t, metric_fn, distance="local", h0="paper", base_measure="riemannian", num_steps=10,
                 geodesic_kwargs=None, generator=None, sampler="brownian", validate_args=None):
        if mu.dim() < 1:
            raise ValueError("HeatKernel needs mu of shape (..., d)")
        if not callable(metric_fn):
            raise ValueError("metric_fn must be a callable (n, d) -> (n, d, d)")
        for name, value, allowed in (("distance", distance, _DISTANCES), ("h0", h0, _H0),
                                     ("base_measure", base_measure, _MEASURES), ("sampler", sampler, _SAMPLERS)):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose from {allowed}")
        if base_measure == "det-g" and h0 != "paper":
            raise ValueError("base_measure='det-g' absorbs the paper's H0 and needs h0='paper'")
        if int(num_steps) < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        t = torch.as_tensor(t, dtype=mu.dtype, device=mu.device)
        batch_shape = torch.broadcast_shapes(mu.shape[:-1], t.shape)
        self.mu = mu.expand(batch_shape + mu.shape[-1:])
        self.t = t.expand(batch_shape)
        self.metric_fn = metric_fn
        self._options = dict(distance=distance, h0=h0, base_measure=base_measure, num_steps=int(num_steps),
                             geodesic_kwargs=dict(geodesic_kwargs or {}), generator=generator, sampler=sampler)
        super().__init__(batch_shape, mu.shape[-1:], validate_args=validate_args)

    @property
    def distance(self):
        """How l² is computed: ``"local"`` or ``"geodesic"``."""
        return self._options["distance"]

    @property
    def mean(self):
        """mu for ``sampler="euclidean"`` (the exact mean of its draws); Brownian motion drifts
        from mu where the metric varies, so that sampler has no closed-form mean (raises
        ``NotImplementedError``; :func:`pyrozoo.guides.distribution_mean` then averages draws)."""
        if self._options["sampler"] == "euclidean":
            return self.mu
        raise NotImplementedError("the mean of Riemannian Brownian motion has no closed form")

    def expand(self, batch_shape, _instance=None):
        """The same heat kernel with ``mu`` and ``t`` expanded to ``batch_shape``."""
        batch_shape = torch.Size(batch_shape)
        return HeatKernel(self.mu.expand(batch_shape + self.event_shape), self.t.expand(batch_shape),
                          self.metric_fn, validate_args=self._validate_args, **self._options)

    def _flat(self, shape):
        d = self.event_shape[0]
        return self.mu.expand(shape + (d,)).reshape(-1, d), self.t.expand(shape).reshape(-1)

    def log_prob(self, value):
        """log p(z) (eq. 3.3) for ``value`` ``(..., d)`` broadcastable with the batch; returns ``(...)``."""
        if self._validate_args:
            self._validate_sample(value)
        d = self.event_shape[0]
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        z = value.expand(shape + (d,)).reshape(-1, d)
        t = self.t.expand(shape).reshape(-1)
        # The metric (and its log-determinant) once per distinct centre: a prior expanded over the
        # data plate has one centre, not B.
        compact = _compact(self.mu, len(self.batch_shape))
        g_c = self.metric_fn(compact.reshape(-1, d)).reshape(compact.shape + (d,))
        g_mu = g_c.expand(shape + (d, d)).reshape(-1, d, d)
        mu = self.mu.expand(shape + (d,)).reshape(-1, d)
        opts = self._options
        if opts["distance"] == "local":
            delta = z - mu
            sq = torch.einsum("ni,nij,nj->n", delta, g_mu, delta)
        else:
            sq = fit_geodesic(self.metric_fn, mu, z, **opts["geodesic_kwargs"]).sq_length
        out = -0.5 * d * torch.log(2 * math.pi * t) - sq / (2 * t)
        logdet_mu = logdet_psd(g_c).expand(shape).reshape(-1)
        if opts["base_measure"] == "det-g":
            return (out - 0.5 * logdet_mu).reshape(shape)
        need_gz = opts["h0"] != "one" or opts["base_measure"] == "lebesgue"
        if need_gz:
            logdet_z = logdet_psd(self.metric_fn(z))
            if opts["h0"] == "paper":
                out = out + 0.5 * (logdet_z - logdet_mu)
            elif opts["h0"] == "parametrix":
                out = out + 0.25 * (logdet_mu - logdet_z)
            if opts["base_measure"] == "lebesgue":
                out = out + 0.5 * logdet_z
        return out.reshape(shape)

    def rsample(self, sample_shape=torch.Size()):
        """Reparameterised draws ``sample_shape + batch_shape + (d,)``: Brownian motion (eq. 3.15)
        or, with ``sampler="euclidean"``, mu + sqrt(t) ε."""
        shape = torch.Size(sample_shape) + self.batch_shape
        mu, t = self._flat(shape)
        if self._options["sampler"] == "euclidean":
            eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=self._options["generator"])
            return (mu + t.sqrt()[:, None] * eps).reshape(shape + self.event_shape)
        z = brownian_motion(self.metric_fn, mu, t, self._options["num_steps"], generator=self._options["generator"])
        return z.reshape(shape + self.event_shape)
