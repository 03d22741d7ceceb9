"""Every preset trains, evaluates and samples on CUDA from the command line (skipped without a GPU),
and a run trained on CUDA evaluates on the CPU."""

import json
import math

import pytest
import torch

from pyrozoo import zoo
from pyrozoo.cli import main

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _budget(preset):
    """The smallest budget that runs every part of ``preset``'s training and evaluation."""
    recipe = zoo.recipe(preset)
    defaults = recipe.defaults
    if recipe.regime == "introspective":
        return ["--iterations", "20", "--warmup-iterations", "10", "--batch-size", "64"]
    dataset = ["--dataset", "architectures" if defaults.get("dataset") == "architectures" else "digits"]
    if recipe.regime == "two-phase":
        return dataset + ["--phase-epochs", "1,1", "--num-centres", "16", "--eval-samples", "10"]
    return dataset + ["--epochs", "1", "--eval-samples", "10"]


@pytest.mark.parametrize("preset", sorted(zoo.presets()))
def test_preset_trains_and_evaluates_on_cuda(preset, tmp_path):
    out = tmp_path / preset
    assert main(["train", preset, "--device", "cuda", "--out", str(out), "--quiet", *_budget(preset)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    scores = [summary[k] for k in ("test_log_likelihood", "test_elbo", "gnelbo", "kl", "jsd") if k in summary]
    assert scores and all(math.isfinite(v) for v in scores)
    if "test_log_likelihood" in summary:
        assert summary["test_log_likelihood"] < 0 or zoo.train_defaults(preset).get("likelihood") == "gaussian"
    assert main(["sample", str(out), "-n", "4"]) == 0  # the CUDA checkpoint is rebuilt on the CPU


@pytest.mark.parametrize("preset", ["vae-iaf", "stein-hyperprior", "rvae"])
def test_cuda_run_evaluates_on_the_cpu_like_on_the_gpu(preset, tmp_path):
    out = tmp_path / preset
    assert main(["train", preset, "--device", "cuda", "--out", str(out), "--quiet", "--seed", "1",
                 *_budget(preset)]) == 0
    assert main(["evaluate", str(out), "--num-samples", "200", "--quiet"]) == 0
    gpu = json.loads((out / "summary.json").read_text())
    cpu = json.loads((out / "evaluations" / "s200" / "evaluation.json").read_text())
    # the same parameters give the same ELBO up to Monte-Carlo noise of one draw per point
    assert abs(gpu["test_elbo"] - cpu["test_elbo"]) < 0.05 * abs(gpu["test_elbo"]) + 1.0


def test_bf16_autocast_trains_the_conv_hvae_on_cuda_like_float32(tmp_path):
    import pyrozoo
    options = dict(epochs=1, z_dim=4, hidden=[32], num_components=10, evaluate=False, quiet=True, seed=3,
                   device="cuda")
    full = pyrozoo.train("convhvae-vampprior", "digits", tmp_path / "fp32", **options)
    half = pyrozoo.train("convhvae-vampprior", "digits", tmp_path / "bf16", autocast="bf16", **options)
    a, b = full.metrics[-1]["train_loss"], half.metrics[-1]["train_loss"]
    assert a != b and abs(a - b) < 5e-3 * abs(a)


@pytest.mark.parametrize("preset, prior, normalize", [("vae", None, False), ("vae", None, True),
                                                     ("vampprior", "vampprior", True), ("hvae", "vampprior", True)])
def test_a_step_captured_in_a_cuda_graph_matches_the_eager_step(tmp_path, preset, prior, normalize):
    """Three eager warm-up steps, then the captured step replayed: the same losses and parameters
    as eager training on the GPU (400 points, so every batch is full), with and without the
    VampPrior authors' normalised gradients (a captured step that dropped them would drift), for
    the VAE and for the VAE and HVAE with a VampPrior (whose mixture density must not read a
    number back to the host inside the capture). Both runs use Adam's capturable arithmetic, which
    rounds differently from the default Adam: the test compares the capture, not two Adams."""
    import copy

    import pyro

    from pyrozoo.data import load
    from pyrozoo.inference import SVIStrategy, TrainConfig, TrainingLoop
    data = load("digits")
    data.train = data.train[:400]
    options = {} if prior is None else {"prior": prior, "num_components": 20}

    def run(graph):
        pyro.clear_param_store()
        torch.manual_seed(0)
        model = zoo.build(preset, event_shape=data.event_shape, **options)
        cfg = TrainConfig(epochs=3, batch_size=100, warmup=1, device="cuda", quiet=True, cuda_graph=graph,
                          normalize_gradients=normalize)
        adam = None if graph else (lambda params: torch.optim.Adam(params, lr=cfg.lr, capturable=True))
        loop = TrainingLoop(SVIStrategy(model, copy.copy(data), cfg, optimizer=adam), tmp_path / f"{graph}")
        loop.fit()
        return loop

    eager, graph = run(False), run(True)
    for a, b in zip(eager.history, graph.history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["valid_elbo"] == pytest.approx(a["valid_elbo"], rel=1e-5)
    for (name, p), q in zip(eager.model.named_parameters(), graph.model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)


def test_cuda_graph_is_refused_where_a_step_cannot_be_captured(digits):
    from pyrozoo.inference import IWAE, SVIStrategy, TrainConfig, TrainingLoop
    model = zoo.build("vae", event_shape=digits.event_shape)
    strategy = SVIStrategy(model, digits, TrainConfig(device="cuda", cuda_graph=True, accumulate=2), objective=IWAE(5))
    with pytest.raises(ValueError, match="cuda_graph needs accumulate 1, the elbo objective"):
        TrainingLoop(strategy).fit()
