"""The sequence VAE of Pavesi (2024), "Variational Auto Encoders" (lecture notes), §4.1: architecture data, the
LayerSequence likelihood, the model/guide pair."""

import math

import pyro
import pytest
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO

from pyrozoo.data.architectures import (HAS_VALUE, LAYER_TYPES, MAX_LEN, N_TYPES, decode_types, generate, is_valid,
                                        load_architectures, sequence_lengths)
from pyrozoo.distributions import StandardNormalPrior
from pyrozoo.distributions.sequence import LayerSequence, SequenceLikelihood, truncated_normal_log_prob, validate
from pyrozoo.evaluation import elbo_terms, log_likelihood
from pyrozoo.evaluation.sequence import sequence_metrics, validity
from pyrozoo.inference.objectives import IWAE
from pyrozoo.models.seqvae import SequenceVAE, seq_vae

END = LAYER_TYPES.index("end")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny LSTM steps run fastest on one thread, and far faster when other jobs share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gen(n, seed=0, **kw):
    return generate(n, generator=torch.Generator().manual_seed(seed), **kw)


# data -------------------------------------------------------------------------------------
def test_generated_descriptions_follow_the_grammar_and_format():
    x = _gen(300)
    assert x.shape == (300, MAX_LEN, N_TYPES + 1) and x.dtype == torch.float32
    types, values = x[..., :-1], x[..., -1]
    hot = types.sum(-1)
    assert ((types == 0) | (types == 1)).all() and ((hot == 0) | (hot == 1)).all()
    assert ((values >= 0) & (values <= 1)).all()
    lengths = sequence_lengths(x)
    names = decode_types(x)
    for i, seq in enumerate(names):
        assert is_valid(seq), seq
        assert seq[0] == "input" and seq[-1] == "end" and len(seq) == lengths[i]
        assert (x[i, lengths[i]:] == 0).all()  # padding after end
        assert x[i, lengths[i] - 1, END] == 1
    no_value = ~torch.tensor(HAS_VALUE)[types.argmax(-1)] & (hot == 1)
    assert (values[no_value] == 0).all() and (values[~no_value & (hot == 1)] > 0).all()
    assert len({tuple(s) for s in names}) > 50  # a varied set
    validate(x, valued=HAS_VALUE)


def test_generation_is_seeded_and_respects_max_len():
    assert torch.equal(_gen(50, seed=3), _gen(50, seed=3))
    assert not torch.equal(_gen(50, seed=3), _gen(50, seed=4))
    short = _gen(100, max_len=8)
    assert short.shape[1] == 8 and all(is_valid(s) and len(s) <= 8 for s in decode_types(short))
    with pytest.raises(ValueError, match="max_len"):
        _gen(3, max_len=4)
    ds = load_architectures(seed=1, sizes=(20, 5, 6))
    assert ds.name == "architectures" and ds.support == "sequence" and ds.event_shape == (MAX_LEN, N_TYPES + 1)
    assert [len(ds.train), len(ds.valid), len(ds.test)] == [20, 5, 6]
    assert torch.equal(ds.train, load_architectures(seed=1, sizes=(20, 5, 6)).train)


def test_is_valid_rejects_ungrammatical_sequences():
    assert is_valid(["input", "conv", "relu", "linear", "end"])
    assert is_valid(["input", "conv", "batchnorm", "relu", "pool", "linear", "relu", "dropout", "linear", "end"])
    for bad in (["conv", "relu", "linear", "end"], ["input", "conv", "relu", "end"],
                ["input", "conv", "relu", "linear"], ["input", "conv", "relu", "linear", "end", "end"],
                ["input", "conv", "pool", "relu", "linear", "end"], ["input", "linear", "end"],
                ["input", "conv", "relu", "linear", "dropout", "linear", "end"], ["input", "conv", "relu", "lstm"]):
        assert not is_valid(bad), bad


# likelihood --------------------------------------------------------------------------------
def _phi(a):
    return 0.5 * (1 + math.erf(a / math.sqrt(2)))


def _tn(v, mu, s=0.1):
    """log density of N(mu, s²) truncated to [0, 1], by hand."""
    mass = _phi((1 - mu) / s) - _phi(-mu / s)
    return -0.5 * ((v - mu) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi)) - math.log(mass)


def test_layer_sequence_log_prob_matches_a_hand_computation():
    torch.manual_seed(0)
    logits, loc = torch.randn(2, 3, 3), torch.rand(2, 3)  # T = 3, K = 3 (types a, b, end)
    x = torch.tensor([[[1, 0, 0, 0.3], [0, 0, 1, 0.0], [0, 0, 0, 0.0]],
                      [[0, 1, 0, 0.5], [1, 0, 0, 0.9], [0, 0, 1, 0.0]]])
    lp = LayerSequence(logits, loc).log_prob(x)
    ls = torch.log_softmax(logits, -1)
    hand0 = ls[0, 0, 0] + _tn(0.3, loc[0, 0].item()) + ls[0, 1, 2] + _tn(0.0, loc[0, 1].item())
    # at the last position only `end` has mass: its type term is log 1 = 0
    hand1 = (ls[1, 0, 1] + _tn(0.5, loc[1, 0].item()) + ls[1, 1, 0] + _tn(0.9, loc[1, 1].item())
             + _tn(0.0, loc[1, 2].item()))
    assert lp.shape == (2,)
    assert torch.allclose(lp, torch.stack([hand0, hand1]), atol=1e-5)
    # padding is ignored: other logits/locations after the end leave the log-density unchanged
    logits2, loc2 = logits.clone(), loc.clone()
    logits2[0, 2] = torch.tensor([9.0, -3.0, 1.0])
    loc2[0, 2] = 0.99
    assert torch.allclose(LayerSequence(logits2, loc2).log_prob(x), lp)
    logits2[0, 1] += torch.tensor([0.0, 0.0, 2.0])  # a position that counts
    assert not torch.allclose(LayerSequence(logits2, loc2).log_prob(x)[0], lp[0])
    # a type that carries no value has no value term
    valued = torch.tensor([True, True, False])
    lp_v = LayerSequence(logits, loc, valued=valued).log_prob(x)
    assert torch.allclose(lp_v[0], hand0 - _tn(0.0, loc[0, 1].item()), atol=1e-5)


def test_layer_sequence_is_normalised():
    # values: the truncated normal integrates to one on [0, 1]
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)
    for mu in (0.0, 0.3, 1.0):
        dens = truncated_normal_log_prob(grid, torch.tensor(mu, dtype=torch.float64), torch.tensor(0.1)).exp()
        assert abs(torch.trapezoid(dens, grid).item() - 1) < 1e-6
    # types: T = 3, types (a, end), no values -> [end], [a, end], [a, a, end] carry all the mass
    torch.manual_seed(1)
    d = LayerSequence(torch.randn(3, 2), torch.rand(3), valued=torch.tensor([False, False]))
    seqs = torch.tensor([[[0, 1, 0], [0, 0, 0], [0, 0, 0]], [[1, 0, 0], [0, 1, 0], [0, 0, 0]],
                         [[1, 0, 0], [1, 0, 0], [0, 1, 0]]], dtype=torch.float32)
    assert abs(d.log_prob(seqs).exp().sum().item() - 1) < 1e-6


def test_validation_names_the_problem():
    x = _gen(4)
    lik = SequenceLikelihood(x.shape[1:], valued=HAS_VALUE)
    lik.validate(x)
    lengths = sequence_lengths(x)
    j = int(lengths.argmin())  # a sequence with padding after its end
    n = int(lengths[j])
    assert n < x.shape[1]

    def broken(fn):
        y = x.clone()
        fn(y)
        return y

    cases = [
        (broken(lambda y: y[0, 1, :2].fill_(1)), "unknown layer type"),  # two hot entries
        (broken(lambda y: y[j, -1, -1].fill_(0.5)), "unknown layer type"),  # a value without a type
        (broken(lambda y: y[0, 1, 3].fill_(0.5)), "unknown layer type"),  # not 0/1
        (broken(lambda y: y[1, 0, -1].fill_(1.5)), r"\[0, 1\]"),
        (broken(lambda y: y[1, 0, -1].fill_(-0.2)), r"\[0, 1\]"),
        (broken(lambda y: y[2, 3, 0].fill_(float("nan"))), "NaN"),
        (broken(lambda y: y[j, n - 1].zero_()), "end token"),  # the end row removed
        (broken(lambda y: y[j, n, LAYER_TYPES.index("relu")].fill_(1)), "after its end"),
        (broken(lambda y: y[0, 2].zero_()), "padding row"),
        (x[..., :-1], "shape"),
        (x[0], "shape"),
        (x.tolist(), "torch.Tensor"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            lik.validate(bad)
    relu = broken(lambda y: y[0, 2, -1].fill_(0.3))  # row 2 (after input, conv) is relu or batchnorm
    assert decode_types(x[:1])[0][2] in ("relu", "batchnorm")
    with pytest.raises(ValueError, match="carries no value"):
        lik.validate(relu)
    validate(relu)  # without the valued flags the value is fine


# the model ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def arch():
    return load_architectures(seed=0, sizes=(32, 32, 8), max_len=12)


@pytest.fixture(scope="module")
def trained(arch):
    """A small sequence VAE trained with plain Pyro SVI for 150 steps, and its losses."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    model = seq_vae(arch.event_shape, z_dim=8, hidden=32)
    svi = SVI(model.model, model.guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
    losses = [svi.step(arch.train) / len(arch.train) for _ in range(150)]
    return model.eval(), losses


def test_svi_trains_and_log_likelihood_bounds_the_elbo(arch, trained):
    model, losses = trained
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 10
    x = arch.valid
    ll = log_likelihood(model, x, num_samples=50)
    elbo = elbo_terms(model, x, num_samples=10)["elbo"]
    assert ll.shape == (len(x),) and torch.isfinite(ll).all()
    assert ll.mean() >= elbo.mean()
    m = sequence_metrics(model, x)
    assert set(m) == {"tf_type_accuracy", "tf_value_mae", "free_type_accuracy", "free_value_mae",
                      "free_exact_match"}
    assert m["tf_type_accuracy"] > 0.5 and 0 <= m["tf_value_mae"] < 0.3
    assert 0 <= m["free_type_accuracy"] <= 1 and 0 <= validity(model, n=20) <= 1


def test_iwae_and_particle_dims(arch, trained):
    model, _ = trained
    x = arch.test
    loss = IWAE(num_particles=4).differentiable_loss(model.model, model.guide, x)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad()
    # the teacher-forced likelihood at z (S, B, z_dim) equals S separate evaluations at (B, z_dim)
    z = torch.randn(3, len(x), model.z_dim)
    lp = model.decoder(z, x).log_prob(x)
    assert lp.shape == (3, len(x))
    assert torch.allclose(lp, torch.stack([model.decoder(zs, x).log_prob(x) for zs in z]), atol=1e-4)
    gen = model.generate(z)
    assert gen.shape == (3, len(x)) + model.event_shape
    assert torch.equal(gen[1], model.generate(z[1]))


def test_predictive_samples_valid_data(arch, trained):
    model, _ = trained
    prior = Predictive(model.model, num_samples=3, parallel=True)(None, batch_size=5)
    assert prior["z"].shape == (3, 5, model.z_dim) and prior["x"].shape == (3, 5) + model.event_shape
    model.check_data(prior["x"].reshape((-1,) + model.event_shape))
    post = Predictive(model.model, guide=model.guide, num_samples=2)(arch.test[:4])
    assert post["z"].shape == (2, 4, model.z_dim)
    samples = model.sample(10)
    assert samples.shape == (10,) + model.event_shape
    model.check_data(samples)


def test_model_and_guide_reject_bad_data_before_work(trained):
    model, _ = trained
    bad = _gen(3, max_len=12)
    bad[0, 0, -1] = 2.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Trace_ELBO().loss(model.model, model.guide, bad)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        log_likelihood(model, bad, num_samples=2)


def test_teacher_forced_and_greedy_decoders_agree_when_certain():
    pyro.set_rng_seed(0)
    x1 = _gen(20, seed=3, max_len=12)
    i = int(sequence_lengths(x1).argmax())  # a long sequence
    length = int(sequence_lengths(x1[i:i + 1]))
    x = x1[i:i + 1].expand(4, -1, -1).contiguous()
    model = seq_vae(x.shape[1:], z_dim=4, hidden=32)
    svi = SVI(model.model, model.guide, pyro.optim.Adam({"lr": 3e-2}), Trace_ELBO())
    for step in range(300):
        svi.step(x)
        if step % 10 == 9:
            with torch.no_grad():
                p = torch.softmax(model.decoder(model.encoder(x).mean, x).type_logits, -1)
            if p[0, :length].max(-1).values.min() > 0.95:
                break
    assert p[0, :length].max(-1).values.min() > 0.95, "the model did not become certain"
    greedy = model.reconstruct(x)
    forced = model.teacher_forced(x)
    assert decode_types(greedy) == decode_types(x)
    assert decode_types(forced[:, :length]) == decode_types(greedy)
    assert (greedy[:, :length, -1] - forced[:, :length, -1]).abs().max() < 0.05
    m = sequence_metrics(model, x)
    assert m["tf_type_accuracy"] == 1 and m["free_type_accuracy"] == 1 and m["free_exact_match"] == 1


class _Stub:
    """Stands in for a model with known teacher-forced and free-running outputs."""

    def __init__(self, forced, free):
        self.forced, self.free = forced, free

    def check_data(self, x):
        validate(x)

    def teacher_forced(self, x):
        return self.forced

    def reconstruct(self, x, mean=True):
        return self.free

    def sample(self, n):
        return self.free[:n]


def test_sequence_metrics_count_missing_positions_as_errors():
    x = _gen(6)
    lengths = sequence_lengths(x)
    free = x.clone()
    free[0, lengths[0] - 2:] = 0  # sequence 0 misses its last two rows
    free[1, 0, -1] += 0.1  # a value error of 0.1
    total = int(lengths.sum())
    m = sequence_metrics(_Stub(x, free), x)
    assert m["tf_type_accuracy"] == 1 and m["tf_value_mae"] == 0
    assert abs(m["free_type_accuracy"] - (1 - 2 / total)) < 1e-6
    assert abs(m["free_value_mae"] - (2 + 0.1) / total) < 1e-5
    assert abs(m["free_exact_match"] - 5 / 6) < 1e-6
    assert validity(_Stub(x, x), n=6) == 1
    assert validity(_Stub(x, free), n=6) == 5 / 6


def test_builder_options_and_errors():
    model = seq_vae()
    assert isinstance(model, SequenceVAE) and model.event_shape == (MAX_LEN, N_TYPES + 1) and model.z_dim == 16
    assert seq_vae(max_len=10).event_shape == (10, N_TYPES + 1)
    assert seq_vae((12, 5), z_dim=3, hidden=8, prior=StandardNormalPrior(3)).event_shape == (12, 5)
    with pytest.raises(ValueError, match="max_len"):
        seq_vae((12, 9), max_len=10)
    with pytest.raises(ValueError, match="event_shape"):
        seq_vae((12,))
    with pytest.raises(ValueError, match="z_dim"):
        seq_vae(z_dim=4, prior=StandardNormalPrior(3))
    assert seq_vae(max_len=8, hidden=[16], likelihood="sequence").decoder.hidden == 16
    with pytest.raises(ValueError, match="likelihood"):
        seq_vae(likelihood="bernoulli")
    with pytest.raises(ValueError, match="one hidden size"):
        seq_vae(hidden=[16, 16])


def test_follows_dtype():
    model = seq_vae(max_len=8, z_dim=3, hidden=8).double()
    x = _gen(5, max_len=8).double()
    loss = Trace_ELBO().differentiable_loss(model.model, model.guide, x)
    assert loss.dtype == torch.float64 and torch.isfinite(loss)
    assert model.sample(3).dtype == torch.float64


@pytest.mark.parametrize("posterior", ["fullcov", "planar", "iaf"])
def test_sequence_vae_takes_every_posterior_family(posterior):
    """Pavesi 2024 notes §4 run the same decoder under diagonal, full-covariance, planar and IAF posteriors."""
    from pyrozoo.evaluation import log_likelihood
    from pyrozoo.inference import IWAE
    torch.manual_seed(0)
    x = generate(6, max_len=12, generator=torch.Generator().manual_seed(1))
    model = seq_vae(x.shape[1:], z_dim=4, hidden=16, posterior=posterior, flow_steps=None if posterior == "fullcov" else 2)
    loss = IWAE(3).differentiable_loss(model.model, model.guide, x)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)
    assert torch.isfinite(log_likelihood(model, x, num_samples=20)).all()
