"""bf16 autocast of the MLP, convolutional, residual and PixelCNN coders (pyrozoo.nn.precision)."""

import pytest
import torch

import pyrozoo
from pyrozoo import zoo
from pyrozoo.evaluation import log_likelihood
from pyrozoo.nn import MLP, ConvDecoderNet, ResidualEncoderNet, autocast_modules, gated_mlp, set_autocast


def _record_dtypes(module, kind=torch.nn.Conv2d):
    seen = []
    for m in module.modules():
        if isinstance(m, kind):
            m.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("make,shape,kind", [
    (lambda: ConvDecoderNet(6, (1, 8, 8), channels=8, num_layers=2), (5, 6), torch.nn.Conv2d),
    (lambda: ResidualEncoderNet((3, 8, 8), channels=(4, 8)), (5, 3, 8, 8), torch.nn.Conv2d),
    (lambda: MLP([6, 16, 16, 5]), (5, 6), torch.nn.Linear),
    (lambda: gated_mlp([6, 16, 5]), (5, 6), torch.nn.Linear)])
def test_bf16_runs_the_coders_in_bf16_only_while_training_and_hands_back_float32(make, shape, kind):
    torch.manual_seed(0)
    net = make()
    x = torch.randn(shape)
    reference = net(x)
    assert set_autocast(net, "bf16") == 1
    seen = _record_dtypes(net, kind)
    out = net(x)
    assert seen and set(seen) == {torch.bfloat16}
    assert out.dtype == torch.float32 and out.requires_grad
    err = (out - reference).abs().max().item()
    assert 0 < err < 0.05 * reference.abs().max().item()  # rounded to bf16, not wrong
    seen.clear()
    with torch.no_grad():  # evaluation: float32 throughout, bit for bit the unconverted net
        assert torch.equal(net(x), reference.detach())
    assert set(seen) == {torch.float32}
    set_autocast(net, None)
    seen.clear()
    assert torch.equal(net(x), reference) and set(seen) == {torch.float32}


def test_set_autocast_finds_the_coders_of_a_preset_and_refuses_models_without_them():
    model = zoo.build("convhvae-vampprior", event_shape=(1, 8, 8), z_dim=4, hidden=[16], num_components=5)
    names = sorted(type(m).__name__ for m in autocast_modules(model))
    assert names == ["ConvDecoderNet", "ConvEncoderNet", "ConvEncoderNet", "DenseStack", "DenseStack", "DenseStack"]
    assert sorted(type(m).__name__ for m in autocast_modules(zoo.build("vae", event_shape=(1, 8, 8)))) == ["MLP"] * 2
    with pytest.raises(ValueError, match="unknown autocast 'fp16'; choose from bf16"):
        set_autocast(model, "fp16")
    with pytest.raises(ValueError, match="applies to MLP, convolutional, residual and PixelCNN coders, and "
                                         "LSTM has none"):
        set_autocast(torch.nn.LSTM(3, 4), "bf16")
    rvae = zoo.build("rvae", event_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="not offered for RiemannianVAE: its metric Jacobians"):
        set_autocast(rvae, "bf16")
    assert all(getattr(m, "autocast_dtype", None) is None for m in autocast_modules(rvae))


def test_a_bf16_run_tracks_the_float32_run_and_evaluates_in_float32(digits, tmp_path):
    """One epoch of convhvae-vampprior on digits, float32 against bf16 autocast from the same seed:
    the training losses agree to a fraction of a per cent (and differ: autocast did act), and the
    bf16 run's log-likelihood is computed in float32 (equal to that of its weights without autocast)."""
    options = dict(epochs=1, z_dim=4, hidden=[32], num_components=10, evaluate=False, quiet=True, seed=3)
    full = pyrozoo.train("convhvae-vampprior", "digits", tmp_path / "fp32", **options)
    half = pyrozoo.train("convhvae-vampprior", "digits", tmp_path / "bf16", autocast="bf16", **options)
    assert half.config["options"]["autocast"] == "bf16"
    assert all(m.autocast_dtype == torch.bfloat16 for m in autocast_modules(half.model))
    for a, b in zip(full.metrics, half.metrics):
        assert a["train_loss"] != b["train_loss"]
        assert abs(a["train_loss"] - b["train_loss"]) < 5e-3 * abs(a["train_loss"])
    x = digits.test[:20]
    torch.manual_seed(0)
    ll = log_likelihood(half.model, x, num_samples=50)
    set_autocast(half.model, None)
    torch.manual_seed(0)
    assert torch.equal(ll, log_likelihood(half.model, x, num_samples=50))
    resumed = pyrozoo.load(tmp_path / "bf16")  # the option travels with the run
    assert all(m.autocast_dtype == torch.bfloat16 for m in autocast_modules(resumed.model))


def test_a_bf16_mlp_vae_tracks_the_float32_run(digits, tmp_path):
    """The vae preset's MLP coders under bf16: three epochs on digits track float32 from the same seed
    to half a per cent of the training loss, and do differ (autocast acted)."""
    options = dict(epochs=3, evaluate=False, quiet=True, seed=4, loggers="none")
    full = pyrozoo.train("vae", "digits", tmp_path / "fp32", **options)
    half = pyrozoo.train("vae", "digits", tmp_path / "bf16", autocast="bf16", **options)
    for a, b in zip(full.metrics, half.metrics):
        assert a["train_loss"] != b["train_loss"]
        assert abs(a["train_loss"] - b["train_loss"]) < 5e-3 * abs(a["train_loss"])
        assert abs(a["valid_elbo"] - b["valid_elbo"]) < 5e-3 * abs(a["valid_elbo"])


def test_autocast_on_a_preset_that_refuses_it_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="autocast 'bf16' is not offered for RiemannianVAE"):
        pyrozoo.train("rvae", "digits", tmp_path / "run", autocast="bf16", phase_epochs=[1, 1], quiet=True)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="autocast"):
        pyrozoo.train("convhvae-vampprior", "digits", tmp_path / "run", autocast="fp16", epochs=1, quiet=True)
    assert not (tmp_path / "run").exists()
