"""Posterior families: full covariance, planar and IAF flows (Pavesi (2024), "Variational Auto Encoders" (lecture
notes), eqs. 24-33; Rezende & Mohamed (2015), "Variational Inference with Normalizing Flows", arXiv:1505.05770; Kingma
et al. (2016), "Improved Variational Inference with Inverse Autoregressive Flow", arXiv:1606.04934)."""

import pytest
import torch
from torch.autograd.functional import jacobian

from pyrozoo import zoo
from pyrozoo.guides import POSTERIORS, make_encoder
from pyrozoo.nn import MLP

from helpers import fit

Z = 3


def _encoder(posterior, flow_steps=None):
    torch.manual_seed(0)
    net = MLP([5, 16], final_activation="tanh")
    return make_encoder(posterior, net, 16, Z, flow_steps=flow_steps).double()


def _conditioned_steps(enc, x):
    h = enc.base.features(x)[0]
    return [t.condition(h) if hasattr(t, "condition") else t for t in enc.transforms]


@pytest.mark.parametrize("posterior", ["planar", "iaf"])
def test_flow_log_det_matches_autograd_jacobian(posterior):
    enc = _encoder(posterior, flow_steps=3)
    x = torch.randn(1, 5, dtype=torch.float64)
    for step in _conditioned_steps(enc, x):
        for _ in range(5):
            z = 2 * torch.randn(1, Z, dtype=torch.float64)
            y = step(z)
            jac = jacobian(lambda v: step(v.unsqueeze(0)).squeeze(0), z.squeeze(0))
            _, logdet = torch.linalg.slogdet(jac)
            assert float(step.log_abs_det_jacobian(z, y).detach().sum()) == pytest.approx(float(logdet), abs=1e-4)


@pytest.mark.parametrize("posterior", ["planar", "iaf"])
def test_flow_density_is_base_density_minus_log_det_of_whole_flow(posterior):
    enc = _encoder(posterior, flow_steps=2)
    x = torch.randn(1, 5, dtype=torch.float64)
    q = enc(x)
    z = q.rsample()
    log_q = float(q.log_prob(z).detach())
    steps = q.transforms
    z0 = z  # recover z0 through the transforms' caches, then push it through the flow by hand
    for t in reversed(steps):
        z0 = t.inv(z0)

    def flow(v):
        for t in steps:
            v = t(v)
        return v

    jac = jacobian(lambda v: flow(v.unsqueeze(0)).squeeze(0), z0.squeeze(0).detach())
    expected = q.base_dist.log_prob(z0) - torch.linalg.slogdet(jac)[1]
    assert log_q == pytest.approx(float(expected.detach()), abs=1e-4)


def test_planar_stays_invertible_under_adversarial_parameters():
    enc = _encoder("planar", flow_steps=1)
    params = enc.transforms[0].nn
    with torch.no_grad():  # raw u = −10 w: wᵀu ≪ −1 before the û correction
        params.linear.weight.zero_()
        w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
        params.linear.bias.copy_(torch.cat([torch.tensor([0.3], dtype=torch.float64), -10 * w, w]))
    x = torch.randn(200, 5, dtype=torch.float64)
    step = _conditioned_steps(enc, x)[0]
    bias, u, w_out = params(enc.base.features(x)[0])
    assert ((w_out * u).sum(-1) < -1).all()
    u_hat = step.u_hat(u, w_out)
    assert ((w_out * u_hat).sum(-1) >= -1 - 1e-9).all()
    z = 3 * torch.randn(200, Z, dtype=torch.float64)
    for i in range(0, 200, 40):  # the Jacobian determinant never changes sign
        jac = jacobian(lambda v: step(v.unsqueeze(0).expand(200, Z)).narrow(0, i, 1).squeeze(0), z[i])
        assert torch.linalg.det(jac) > 0


def test_full_covariance_matches_torch_multivariate_normal():
    enc = _encoder("fullcov")
    with torch.no_grad():
        enc.offdiag.weight.normal_()
    x = torch.randn(4, 5, dtype=torch.float64)
    q = enc(x)
    loc, tril = enc.params(x)
    assert torch.all(torch.triu(tril, diagonal=1) == 0)
    ref = torch.distributions.MultivariateNormal(loc, covariance_matrix=tril @ tril.transpose(-1, -2))
    z = torch.randn(7, 4, Z, dtype=torch.float64)
    assert torch.allclose(q.log_prob(z), ref.log_prob(z), atol=1e-8)
    # the registered closed-form KL against the standard-normal prior equals the MVN–MVN KL
    prior = zoo.build("vae-fullcov", event_shape=(5,), z_dim=Z, hidden=(16,), likelihood="gaussian").prior.double()()
    std = torch.distributions.MultivariateNormal(torch.zeros(Z, dtype=torch.float64),
                                                 torch.eye(Z, dtype=torch.float64))
    assert torch.allclose(torch.distributions.kl_divergence(q, prior),
                          torch.distributions.kl_divergence(ref, std), atol=1e-8)


@pytest.mark.parametrize("posterior", list(POSTERIORS))
def test_posterior_density_is_normalised(posterior):
    """E_{z~q}[f(z)/q(z)] = ∫ f = 1 for a normalised Gaussian f narrower than q (finite variance):
    checks log q, the log-det signs included."""
    enc = _encoder(posterior)
    x = torch.randn(1, 5, dtype=torch.float64)
    q = enc(x).expand((40000, 1))
    with torch.no_grad():
        z = q.rsample()
        f = torch.distributions.Normal(z.mean(0), 0.5 * z.std(0))
        z = q.rsample()
        log_f = f.log_prob(z).sum(-1)
        ratio = torch.exp(log_f - q.log_prob(z))
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("preset", ["vae-fullcov", "vae-planar", "vae-iaf"])
def test_flow_presets_log_likelihood_above_elbo(preset, digits):
    from pyrozoo.evaluation import elbo_terms, log_likelihood
    torch.manual_seed(0)
    model = zoo.build(preset, event_shape=digits.event_shape, flow_steps=None) if preset == "vae-fullcov" else \
        zoo.build(preset, event_shape=digits.event_shape, flow_steps=2)
    fit(model, digits, _tmp(), epochs=3, lr=2e-3)
    x = digits.test[:100]
    ll = log_likelihood(model, x, num_samples=200)
    elbo = elbo_terms(model, x, num_samples=20)["elbo"]
    assert torch.isfinite(ll).all()
    assert ll.mean() > elbo.mean()


def _tmp():
    import tempfile
    return tempfile.mkdtemp()


def test_unknown_posterior_and_bad_flow_steps():
    with pytest.raises(ValueError, match="unknown posterior 'gauss'.*diagonal, fullcov, planar, iaf"):
        _encoder("gauss")
    with pytest.raises(ValueError, match="flow_steps"):
        _encoder("iaf", flow_steps=0)
    with pytest.raises(ValueError, match="fixes the posterior"):
        zoo.build("vae-iaf", event_shape=(1, 8, 8), posterior="planar")
    with pytest.raises(ValueError, match="unknown option"):
        zoo.build("vae-iaf", event_shape=(1, 8, 8), flows=3)


def test_iaf_scores_its_own_samples_without_the_sequential_inverse():
    """log q(z) of a guide sample must come from the transforms' caches: IAF's inverse needs
    z_dim network passes per step (a 10x slowdown seen when Reverse did not cache)."""
    enc = _encoder("iaf", flow_steps=3)
    calls = []
    for t in enc.transforms:
        if hasattr(t, "nn"):
            t.nn.register_forward_hook(lambda *a: calls.append(1))
    q = enc(torch.randn(4, 5, dtype=torch.float64))
    z = q.rsample()
    forward_calls = len(calls)
    q.log_prob(z)
    assert forward_calls == 3 and len(calls) == 3
