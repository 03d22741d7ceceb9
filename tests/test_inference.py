import json
import math

import pyro
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO

from pyrozoo import zoo
from pyrozoo.inference import (ELBO, IWAE, TrainConfig, Trainer, TrainingDiverged, load_checkpoint, log_weights,
                                make_objective, scale_latents)


def _vae(digits, seed=0):
    torch.manual_seed(seed)
    return zoo.build("vae", event_shape=digits.event_shape, z_dim=4, hidden=(32,))


def test_elbo_matches_trace_elbo_in_expectation(digits):
    vae = _vae(digits)
    x = digits.test[:64]
    with torch.no_grad():
        pyro_est = torch.tensor([Trace_ELBO().loss(vae.model, vae.guide, x) for _ in range(300)]).mean()
        mc = torch.tensor([ELBO(analytic_kl=False).loss(vae.model, vae.guide, x) for _ in range(300)]).mean()
        analytic = torch.tensor([ELBO().loss(vae.model, vae.guide, x) for _ in range(300)]).mean()
    assert abs(pyro_est - mc) / 64 < 0.1
    assert abs(pyro_est - analytic) / 64 < 0.1


def test_elbo_works_inside_svi_and_scales_minibatch(digits):
    vae = _vae(digits)
    x = digits.test[:50]
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-3}), ELBO())
    loss = svi.step(x, num_data=1000)
    with torch.no_grad():
        torch.manual_seed(1)
        full = ELBO().loss(vae.model, vae.guide, x)
        torch.manual_seed(1)
        scaled = ELBO().loss(vae.model, vae.guide, x, num_data=1000)
    assert scaled == pytest.approx(full * 20, rel=1e-5)
    assert math.isfinite(loss) and len(pyro.get_param_store()) > 0


def test_beta_scales_only_the_kl(digits):
    vae = _vae(digits)
    x = digits.test[:20]
    obj = ELBO()
    with torch.no_grad():
        torch.manual_seed(0)
        l1 = obj.loss(vae.model, vae.guide, x)
        torch.manual_seed(0)
        l0 = obj.loss(scale_latents(vae.model, 0.0), scale_latents(vae.guide, 0.0), x)
        torch.manual_seed(0)
        lh = obj.loss(scale_latents(vae.model, 0.5), scale_latents(vae.guide, 0.5), x)
    # loss = rec + beta * kl: linear in beta
    assert lh == pytest.approx((l1 + l0) / 2, rel=1e-5)
    assert l1 > l0


def test_iwae_with_one_sample_is_the_elbo_and_grows_with_k(trained_vae, digits):
    x = digits.test[:100]
    torch.manual_seed(0)
    lw = log_weights(trained_vae.model, trained_vae.guide, x, num_samples=1)
    torch.manual_seed(0)
    mc = ELBO(analytic_kl=False).loss(trained_vae.model, trained_vae.guide, x)
    assert -lw.sum().item() == pytest.approx(mc, rel=1e-5)
    torch.manual_seed(0)
    assert IWAE(1).loss(trained_vae.model, trained_vae.guide, x) == pytest.approx(mc, rel=1e-5)
    bounds = [-sum(IWAE(k).loss(trained_vae.model, trained_vae.guide, x) for _ in range(5)) / 5 for k in (1, 10, 100)]
    assert bounds[0] <= bounds[1] <= bounds[2]


def test_make_objective_rejects_unknown():
    with pytest.raises(ValueError, match="choose from"):
        make_objective("vi")
    with pytest.raises(ValueError):
        make_objective("iwae", 0)


def test_resumed_run_matches_uninterrupted(digits, tmp_path):
    cfg = TrainConfig(epochs=4, warmup=2, quiet=True, seed=7)
    full = _vae(digits)
    Trainer(full, digits, cfg, tmp_path / "a").fit()
    part = _vae(digits)
    Trainer(part, digits, cfg, tmp_path / "b").fit(stop_after=2)  # "killed" after epoch 2
    resumed = _vae(digits, seed=99)  # a fresh process with different init
    trainer = Trainer(resumed, digits, cfg, tmp_path / "b").resume()
    assert trainer.epoch == 2
    trainer.fit()
    for (name, p), q in zip(full.named_parameters(), resumed.parameters()):
        assert torch.equal(p, q), name
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2, 3, 4]
    a = [json.loads(ln)["valid_elbo"] for ln in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(ln)["valid_elbo"] for ln in lines]
    assert a == b


def test_resume_maps_optimizer_state_by_parameter_name(digits, tmp_path):
    """A checkpoint whose optimiser listed the parameters in another order (another version of a
    model class) resumes onto the right parameters and finishes like the uninterrupted run."""
    cfg = TrainConfig(epochs=3, warmup=1, quiet=True, seed=3)
    full = _vae(digits)
    Trainer(full, digits, cfg, tmp_path / "a").fit()
    part = _vae(digits)
    backwards = torch.optim.Adam(list(part.parameters())[::-1], lr=cfg.lr)
    Trainer(part, digits, cfg, tmp_path / "b", optimizer=backwards).fit(stop_after=1)
    resumed = Trainer(_vae(digits, seed=5), digits, cfg, tmp_path / "b").resume()
    resumed.fit()
    for (name, p), q in zip(full.named_parameters(), resumed.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_checkpoint_is_weights_only_and_complete(digits, tmp_path):
    vae = _vae(digits)
    Trainer(vae, digits, TrainConfig(epochs=1, quiet=True), tmp_path).fit()
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert set(state) >= {"model", "optimizer", "rng", "epoch"} and state["epoch"] == 1
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


class _NaNAfter(ELBO):
    def __init__(self, steps):
        super().__init__()
        self.calls, self.steps = 0, steps

    def differentiable_loss(self, model, guide, *args, **kwargs):
        loss = super().differentiable_loss(model, guide, *args, **kwargs)
        self.calls += 1
        return loss * float("nan") if self.calls > self.steps else loss


def test_divergence_stops_and_keeps_last_good_checkpoint(digits, tmp_path):
    vae = _vae(digits)
    steps_per_epoch = math.ceil(len(digits.train) / 100)
    trainer = Trainer(vae, digits, TrainConfig(epochs=5, quiet=True), tmp_path, objective=_NaNAfter(steps_per_epoch + 3))
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        trainer.fit()
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize("bad, match", [("nan", "NaN"), ("shape", "shape"), ("support", r"\{0, 1\}")])
def test_bad_data_is_rejected_before_training(digits, tmp_path, bad, match):
    import copy
    ds = copy.copy(digits)
    if bad == "nan":
        ds.valid = ds.valid.clone()
        ds.valid[3, 0, 2, 2] = float("nan")
    elif bad == "shape":
        ds.test = ds.test.reshape(len(ds.test), -1)
    else:
        ds.test = ds.test * 0.5
    vae = _vae(digits)
    before = [p.clone() for p in vae.parameters()]
    with pytest.raises(ValueError, match=match):
        Trainer(vae, ds, TrainConfig(epochs=1, quiet=True), tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(before, vae.parameters()))
    assert not (tmp_path / "checkpoints").exists()


def test_bad_config_is_rejected(digits, tmp_path):
    with pytest.raises(ValueError, match="lr"):
        Trainer(_vae(digits), digits, TrainConfig(lr=-1.0), tmp_path)
    with pytest.raises(ValueError, match="device"):
        Trainer(_vae(digits), digits, TrainConfig(device="tpu"), tmp_path)
