import math

import pytest
import torch
from torch import nn

from pyrozoo.distributions import GaussianLikelihood, StandardNormalPrior
from pyrozoo.evaluation import active_units, elbo_terms, log_likelihood
from pyrozoo.guides import GaussianEncoder
from pyrozoo.models import VAE, Decoder


def linear_gaussian_vae(D=5, d=2, sigma=0.5, q_inflate=1.15):
    """p(z)=N(0,I), p(x|z)=N(Wz+b, σ²I) with orthogonal columns of W, so p(x) = N(b, WWᵀ+σ²I)
    and the exact posterior is diagonal; q uses the exact mean and an inflated std."""
    torch.manual_seed(3)
    W = torch.linalg.qr(torch.randn(D, d))[0] * torch.tensor([2.0, 1.0])
    b = torch.randn(D)
    dec_net = nn.Linear(d, D)
    dec_net.weight.data, dec_net.bias.data = W.clone(), b.clone()
    cov = torch.linalg.inv(torch.eye(d) + W.T @ W / sigma**2)  # diagonal
    A = cov @ W.T / sigma**2
    enc = GaussianEncoder(nn.Identity(), D, d, event_dim=1)
    enc.loc.weight.data, enc.loc.bias.data = A.clone(), -(A @ b)
    enc.logvar.weight.data.zero_()
    enc.logvar.bias.data = torch.log(torch.diagonal(cov)) + 2 * math.log(q_inflate)
    vae = VAE(enc, Decoder(dec_net, GaussianLikelihood((D,), scale=sigma)), StandardNormalPrior(d))
    marginal = torch.distributions.MultivariateNormal(b, W @ W.T + sigma**2 * torch.eye(D))
    return vae, marginal


def test_importance_sampled_log_likelihood_matches_closed_form():
    vae, marginal = linear_gaussian_vae()
    x = marginal.sample((20,))
    ll = log_likelihood(vae, x, num_samples=5000, chunk_size=700)
    exact = marginal.log_prob(x)
    assert (ll - exact).abs().max() < 0.05
    # the ELBO is a strict lower bound with this inexact q, and the gap is the KL to the posterior
    assert (elbo_terms(vae, x, num_samples=2000)["elbo"] < exact).all()


def test_elbo_terms_closed_form_matches_monte_carlo():
    vae, marginal = linear_gaussian_vae()
    x = marginal.sample((10,))
    exact = elbo_terms(vae, x)
    torch.manual_seed(0)
    mc = elbo_terms(vae, x, num_samples=4000, analytic_kl=False)
    assert torch.allclose(exact["kl"], mc["kl"], atol=0.05)
    assert (exact["kl"] >= 0).all()
    assert torch.allclose(exact["elbo"], exact["reconstruction"] - exact["kl"])


def test_log_likelihood_is_above_elbo_and_grows_with_samples(trained_vae, digits):
    x = digits.test[:150]
    torch.manual_seed(0)
    terms = elbo_terms(trained_vae, x)
    assert (terms["kl"] >= 0).all()
    means = [log_likelihood(trained_vae, x, num_samples=s).mean().item() for s in (1, 10, 100, 1000)]
    assert means[-1] >= terms["elbo"].mean().item()
    assert abs(means[0] - terms["elbo"].mean().item()) < 1.0  # S=1 is an unbiased ELBO estimate
    assert all(b >= a - 0.02 for a, b in zip(means, means[1:])), means
    assert means[-1] - means[0] > 0.05


def test_evaluation_builds_no_autograd_graph(trained_vae, digits):
    """The estimators run without autograd (a graph per chunk of S draws cost time and memory): their
    outputs do not require gradients although the model's parameters do."""
    x = digits.test[:20]
    assert any(p.requires_grad for p in trained_vae.parameters())
    assert not log_likelihood(trained_vae, x, num_samples=10).requires_grad
    assert not any(t.requires_grad for t in elbo_terms(trained_vae, x).values())


def test_active_units_counts_variance_of_means(trained_vae, digits):
    au = active_units(trained_vae, digits.test)
    means = trained_vae.encode(digits.test).mean
    var = means.var(0)
    assert au["z"]["count"] == int((var > 0.01).sum())
    assert 1 <= au["z"]["count"] <= trained_vae.z_dim


def _hvae_z1_means(model, x, num_draws):
    """E_{q(z2|x)}[μ1(x, z2)] by ``num_draws`` draws of z2 (the reference for z1's activity)."""
    z2 = model.encoder_z2(x).sample((num_draws,))
    return model.encoder_z1(x, z2).mean.mean(0)


def test_hvae_z1_activity_averages_over_q_z2(digits):
    """Tomczak & Welling (2018), Fig. 3: z1's activity is Cov_x(E_{q(z2|x)}[μ1(x, z2)]), not μ1 at one z2 draw."""
    from pyrozoo import zoo
    torch.manual_seed(0)
    model = zoo.build("hvae", event_shape=digits.event_shape, z_dim=4, hidden=(32,))
    x = digits.test[:200]
    with torch.no_grad():
        for head in (model.encoder_z2.loc, model.encoder_z2.logvar):  # q(z2|x) = N(b, I) for every x
            head.weight.zero_()
        model.encoder_z2.logvar.bias.zero_()
        model.encoder_z2.loc.bias.copy_(torch.arange(4.0))
        model.encoder_z1.z_net[0].h.weight.mul_(3.0)  # μ1 moves a lot with z2 ...
        model.encoder_z1.x_net[0].h.weight.mul_(3.0)  # ... and its average over z2 with x
        one_draw = model.encoder_z1(x, model.encoder_z2(x).sample()).mean.var(0)
        exact = _hvae_z1_means(model, x, 4000).var(0)
    au = active_units(model, x, num_samples=400)
    assert au["z2"]["variance"].max() < 1e-10 and au["z2"]["count"] == 0
    assert (one_draw > 3 * exact).all()  # a single z2 draw inflates every unit's variance
    assert torch.allclose(au["z1"]["variance"], exact, rtol=0.15)


def test_a_global_site_is_charged_once_per_training_set_not_per_batch(digits):
    """The training ELBO counts log q(m) − log p(m) once for the N training points, so the per-point
    test ELBO charges each point 1/N of it, whatever the evaluation batch size."""
    import pyro
    import pyro.distributions as dist
    from pyrozoo import zoo

    class GlobalOffset(VAE):
        """A VAE with a global m ~ N(0, 1) and a point-mass guide for it (log q(m) = 0)."""

        def model(self, x=None, num_data=None, batch_size=None):
            pyro.sample("m", dist.Normal(x.new_zeros(()), 1.0))
            return super().model(x, num_data, batch_size)

        def guide(self, x, num_data=None, batch_size=None):
            pyro.sample("m", dist.Delta(self.m_loc))
            return super().guide(x, num_data)

    torch.manual_seed(0)
    vae = zoo.build("vae", event_shape=digits.event_shape, z_dim=3, hidden=(16,))
    model = GlobalOffset(vae.encoder, vae.decoder, vae.prior)
    model.m_loc = nn.Parameter(torch.tensor(1.5))
    x, n_train = digits.test[:60], len(digits.train)
    global_term = -dist.Normal(0.0, 1.0).log_prob(torch.tensor(1.5))  # log q(m) − log p(m) at the Delta
    local_kl = elbo_terms(vae, x)["kl"]  # closed form: no randomness
    for batch_size in (7, 60):
        kl = elbo_terms(model, x, batch_size=batch_size, num_data=n_train)["kl"]
        assert torch.allclose(kl, local_kl + global_term / n_train, atol=1e-5)
    assert torch.allclose(elbo_terms(model, x, batch_size=7)["kl"], local_kl + global_term / len(x), atol=1e-5)


def test_auto_chunk_sizes_chunks_by_what_the_decoder_keeps_per_sample():
    """An MLP decoder keeps one output per data number; the sequence VAE's LSTM keeps its gates and state
    at every step, so its chunks of importance samples are smaller by that factor."""
    from pyrozoo import zoo
    from pyrozoo.evaluation.likelihood import auto_chunk
    x = torch.zeros(100, 1, 28, 28)
    assert auto_chunk(x, 5000, budget=2 ** 20, model=zoo.build("vae", event_shape=(1, 28, 28))) == 2 ** 20 // 78400
    seq = zoo.build("seq-vae", event_shape=(21, 9))
    s = torch.zeros(100, 21, 9)
    assert seq.numbers_per_sample(s) == 100 * 21 * 6 * seq.decoder.lstm.hidden_size
    assert auto_chunk(s, 5000, budget=2 ** 24, model=seq) == 2 ** 24 // seq.numbers_per_sample(s) < auto_chunk(s, 5000)
    assert auto_chunk(s, 3, budget=2 ** 30, model=seq) == 3 and auto_chunk(s, 5000, budget=1, model=seq) == 1


def test_convolutional_decoders_get_chunks_sized_by_their_feature_maps():
    """A decoder with convolutions keeps two maps of its widest convolution's channels per pixel (a gated
    convolution), so its chunks are that many times smaller than an MLP decoder's."""
    from pyrozoo import zoo
    from pyrozoo.evaluation.likelihood import auto_chunk
    x = torch.zeros(100, 1, 8, 8)
    conv = zoo.build("convhvae-vampprior", event_shape=(1, 8, 8))
    widest = max(m.out_channels for m in conv.decoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert widest == 64 and conv.numbers_per_sample(x) == x.numel() * 128
    assert auto_chunk(x, 5000, budget=2 ** 24, model=conv) == 2 ** 24 // (6400 * 128)
    assert zoo.build("hvae", event_shape=(1, 8, 8)).numbers_per_sample(x) == x.numel()


class _Interrupt(Exception):
    pass


def test_a_killed_log_likelihood_resumes_from_its_store_with_the_same_values(trained_vae, digits, tmp_path,
                                                                            monkeypatch):
    """``resume`` keeps each finished batch: an evaluation killed in its third batch and started again
    computes only the batches it had not finished and returns, bit for bit, the uninterrupted values;
    the store is gone afterwards, and a store left by other weights is not used."""
    x, store = digits.test[:250], tmp_path / "ll.partial"
    whole = log_likelihood(trained_vae, x, num_samples=20, batch_size=50)
    real, calls = trained_vae.direct_log_weights, []

    def dying(xb, s):
        calls.append(len(xb))
        if len(calls) == 3:
            raise _Interrupt
        return real(xb, s)

    monkeypatch.setattr(trained_vae, "direct_log_weights", dying)
    try:
        log_likelihood(trained_vae, x, num_samples=20, batch_size=50, resume=store)
    except _Interrupt:
        pass
    assert store.exists() and not list(tmp_path.glob(".*.tmp"))
    calls.clear()
    monkeypatch.setattr(trained_vae, "direct_log_weights", lambda xb, s: calls.append(len(xb)) or real(xb, s))
    resumed = log_likelihood(trained_vae, x, num_samples=20, batch_size=50, resume=store)
    assert len(calls) == 3  # batches 3, 4, 5 of five; 1 and 2 came from the store
    assert torch.equal(resumed, whole)
    assert not store.exists()

    # a store written for other weights (or points, or S) is another evaluation's and is not reused
    monkeypatch.setattr(trained_vae, "direct_log_weights", dying)
    calls.clear()
    try:
        log_likelihood(trained_vae, x, num_samples=20, batch_size=50, resume=store)
    except _Interrupt:
        pass
    monkeypatch.undo()
    with torch.no_grad():
        first = next(trained_vae.parameters())
        kept = first.clone()
        first.add_(0.01)
        try:
            other = log_likelihood(trained_vae, x, num_samples=20, batch_size=50, resume=store)
            fresh = log_likelihood(trained_vae, x, num_samples=20, batch_size=50)
        finally:
            first.copy_(kept)
    assert torch.equal(other, fresh) and not torch.equal(other[:100], whole[:100])


def test_an_unreadable_store_is_ignored_with_a_warning(trained_vae, digits, tmp_path):
    """A truncated or foreign ``resume`` file does not stop the evaluation: it warns, computes every
    batch (the values of a run without the file) and removes the file."""
    x, store = digits.test[:60], tmp_path / "ll.partial"
    store.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable evaluation store"):
        got = log_likelihood(trained_vae, x, num_samples=10, batch_size=30, resume=store)
    assert torch.equal(got, log_likelihood(trained_vae, x, num_samples=10, batch_size=30)) and not store.exists()


def test_the_store_fingerprint_covers_settings_that_are_not_weights():
    """Two R-VAEs with the same weights but the heat kernel's local or geodesic l² give different
    log p(x); a store of one must not be resumed by the other, so their fingerprints differ, while
    two builds of one configuration agree."""
    from pyrozoo.evaluation.sharding import fingerprint
    from pyrozoo.zoo import build

    torch.manual_seed(0)
    local = build("rvae", event_shape=(1, 8, 8), z_dim=2, distance="local")
    geodesic = build("rvae", event_shape=(1, 8, 8), z_dim=2, distance="geodesic")
    again = build("rvae", event_shape=(1, 8, 8), z_dim=2, distance="local")
    geodesic.load_state_dict(local.state_dict())
    again.load_state_dict(local.state_dict())
    assert fingerprint(local) == fingerprint(again)
    assert fingerprint(local) != fingerprint(geodesic)
