"""The direct (trace-free) ELBO and log-weights of the zoo models equal the traced ones: same
random draws, same values, same gradients, for every preset whose programs have a direct path."""

import pyro
import pytest
import torch
from pyro import poutine

from pyrozoo import zoo
from pyrozoo.inference import ELBO, elbo_from_traces, log_weights, scale_latents
from pyrozoo.inference.objectives import direct_elbo
from pyrozoo.inference.traces import get_traces

DIRECT = ["vae", "vae-fullcov", "vae-planar", "vae-iaf", "iwae", "vampprior", "vae-mog", "vampprior-data", "hvae",
          "hvae-vampprior", "sintrovae", "sintrovae-mog", "vae-flowprior", "convhvae-vampprior"]


def _model(preset, digits):
    torch.manual_seed(0)
    options = {"data": digits.train} if zoo.needs_data(preset) else {}
    if preset.startswith(("vampprior", "vae-mog", "hvae", "convhvae")):
        options["num_components"] = 7
    shape = (2,) if preset.startswith("sintrovae") else digits.event_shape
    return zoo.build(preset, event_shape=shape, **options).double(), shape


def _data(digits, shape, preset):
    """12 points in float64 (the comparisons are exact up to summation order)."""
    return torch.randn(12, 2, dtype=torch.float64) if shape == (2,) else digits.test[:12].double()


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("preset", DIRECT)
def test_direct_elbo_equals_the_traced_elbo_and_its_gradients(preset, beta, digits):
    model, shape = _model(preset, digits)
    x = _data(digits, shape, preset)
    m, g = scale_latents(model.model, beta), scale_latents(model.guide, beta)
    pyro.set_rng_seed(3)
    direct = direct_elbo(m, g, (x,), {"num_data": 500})
    assert direct is not None
    grads = torch.autograd.grad(direct, list(model.parameters()), allow_unused=True)
    pyro.set_rng_seed(3)
    traced = elbo_from_traces(*get_traces(m, g, (x,), {"num_data": 500}))
    grads_traced = torch.autograd.grad(traced, list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(direct, traced, rtol=1e-10, atol=1e-9)
    for a, b in zip(grads, grads_traced):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("preset", DIRECT)
def test_direct_log_weights_equal_the_traced_ones(preset, digits):
    model, shape = _model(preset, digits)
    x = _data(digits, shape, preset)
    with torch.no_grad():
        pyro.set_rng_seed(5)
        direct = model.direct_log_weights(x, 7)
        pyro.set_rng_seed(5)
        traced = log_weights(model.model, model.guide, x, num_samples=7)
    assert direct.shape == (7, 12)
    torch.testing.assert_close(direct, traced, rtol=1e-10, atol=1e-9)


def test_the_direct_path_is_taken_only_for_the_models_own_programs(digits):
    model, _ = _model("vae", digits)
    x = digits.test[:4].double()
    elbo = ELBO()
    assert direct_elbo(model.model, model.guide, (x,), {}) is not None
    assert direct_elbo(poutine.scale(model.model, 2.0), model.guide, (x,), {}) is None
    assert direct_elbo(scale_latents(model.model, 0.5), scale_latents(model.guide, 1.0), (x,), {}) is None
    with pyro.plate("outer", 3):  # a handler around the step: the traced ELBO sees it
        assert direct_elbo(model.model, model.guide, (x,), {}) is None
    other, _ = _model("vae", digits)
    assert direct_elbo(model.model, other.guide, (x,), {}) is None
    assert ELBO(num_particles=2).differentiable_loss(model.model, model.guide, x).isfinite()
    seq = zoo.build("seq-vae", event_shape=(12, 9))
    assert seq.direct_elbo(torch.zeros(2, *seq.event_shape)) is None  # a subclass with its own programs
    assert elbo.loss(model.model, model.guide, x) == pytest.approx(elbo.loss(model.model, model.guide, x), rel=0.5)
