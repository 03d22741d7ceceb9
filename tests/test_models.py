import pyro
import pytest
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO

from pyrozoo import zoo


def test_presets_and_unknown_preset():
    assert "vae" in zoo.presets()
    with pytest.raises(ValueError, match="choose from .*vae"):
        zoo.build("not-a-model")


def test_plain_pyro_svi_trains_the_vae(digits):
    torch.manual_seed(0)
    vae = zoo.build("vae", event_shape=digits.event_shape)
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 3e-3}), Trace_ELBO())
    n = len(digits.train)
    losses = []
    for _ in range(15):
        for x in digits.batches("train", 100, shuffle=True):
            losses.append(svi.step(x, num_data=n) / n)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 5


def test_predictive_and_site_names(digits):
    vae = zoo.build("vae", event_shape=digits.event_shape)
    x = digits.test[:7]
    post = Predictive(vae.model, guide=vae.guide, num_samples=3)(x)
    assert post["z"].shape == (3, 7, vae.z_dim) and post["x"].shape == (3, 7, 1, 8, 8)
    prior = Predictive(vae.model, num_samples=2)(None, batch_size=5)
    assert prior["x"].shape == (2, 5, 1, 8, 8)
    assert set(prior["x"].unique().tolist()) <= {0.0, 1.0}


def test_model_validates_data_under_pyro_validation(digits):
    vae = zoo.build("vae", event_shape=digits.event_shape)
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        Trace_ELBO().loss(vae.model, vae.guide, digits.train[:5] * 0.5 + 0.1)


def test_vae_follows_parameter_device_and_dtype(digits):
    vae = zoo.build("vae", event_shape=digits.event_shape).double()
    x = digits.test[:4].double()
    loss = Trace_ELBO().differentiable_loss(vae.model, vae.guide, x)
    assert loss.dtype == torch.float64
    assert vae.sample(3).dtype == torch.float64


@pytest.mark.parametrize("preset", sorted(__import__("pyrozoo.zoo", fromlist=["presets"]).presets()))
def test_every_preset_rejects_bad_input_before_work(preset, digits):
    from pyrozoo import zoo
    from pyrozoo.data import load
    data = load("architectures") if zoo.train_defaults(preset).get("dataset") == "architectures" else digits
    model = zoo.build(preset, event_shape=data.event_shape, data=data.train) if zoo.needs_data(preset) else \
        zoo.build(preset, event_shape=data.event_shape)
    good = data.test[:4]
    model.check_data(good)
    nan = good.clone()
    nan.view(-1)[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.check_data(nan)
    with pytest.raises(ValueError, match="shape"):
        model.check_data(good.reshape(len(good), -1)[:, :-1])
    outside = good.clone()
    outside.view(-1)[0] = 1.5  # outside {0, 1} and outside [0, 1]
    if model.decoder.likelihood.support == "real":  # a Gaussian decoder (the Riemannian presets) takes any real
        model.check_data(outside)
    else:
        with pytest.raises(ValueError):
            model.check_data(outside)
