"""The standard FID (pyrozoo.evaluation.fid): the Fréchet distance of known Gaussians in closed
form, torch-fidelity's preprocessing, and the whole InceptionV3 path offline with randomly
initialised weights (plumbing and shapes; the numbers are not FIDs anyone reports)."""

import math

import numpy as np
import pytest
import torch

import pyrozoo
from pyrozoo.cli import main

pytest.importorskip("torch_fidelity")
from pyrozoo.evaluation import fid  # noqa: E402


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    return fid.random_inception_weights(tmp_path_factory.mktemp("inception") / "random.pth", seed=0)


@pytest.fixture(scope="session")
def net(random_weights):
    return fid.inception(random_weights)


def _gaussian(mu, sigma):
    return {"mu": np.asarray(mu, dtype=np.float64), "sigma": np.asarray(sigma, dtype=np.float64)}


def test_the_frechet_distance_of_known_gaussians_is_the_closed_form():
    # commuting covariances Q diag(a) Q^T and Q diag(b) Q^T: ||mu1 - mu2||^2 + sum (sqrt a - sqrt b)^2
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    a, b = np.array([1.0, 4.0, 0.25, 9.0]), np.array([4.0, 1.0, 1.0, 9.0])
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()  # 5 + 1 + 1 + 0.25 + 0 = 7.25
    got = fid.frechet_distance(_gaussian(mu1, q @ np.diag(a) @ q.T), _gaussian(mu2, q @ np.diag(b) @ q.T))
    assert expected == pytest.approx(7.25) and got == pytest.approx(expected, abs=1e-9)
    # one-dimensional case: (m1 - m2)^2 + (s1 - s2)^2
    assert fid.frechet_distance(_gaussian([3.0], [[4.0]]), _gaussian([0.0], [[1.0]])) == pytest.approx(9 + 1)
    # a distance from itself is zero
    assert fid.frechet_distance(_gaussian(mu1, np.diag(a)), _gaussian(mu1, np.diag(a))) == pytest.approx(0, abs=1e-9)


def test_statistics_of_gaussian_samples_recover_the_closed_form():
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x = torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5]) + 1.0
    y = torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor([2.0, 2.0, 1.5])
    expected = 3 * 1.0 + (1 - 2) ** 2 + 0 + (0.5 - 1.5) ** 2  # = 5
    assert fid.frechet_distance(fid.statistics(x), fid.statistics(y)) == pytest.approx(expected, abs=0.05)
    with pytest.raises(ValueError, match="N >= 2"):
        fid.statistics(x[:1])


def test_images_are_converted_as_torch_fidelity_prescribes():
    grey = torch.tensor([0.0, 0.5, 1.0, 0.2]).reshape(1, 1, 2, 2)
    x = fid.to_inception_input(grey)
    assert x.dtype == torch.uint8 and x.shape == (1, 3, 2, 2)
    assert x[0, 0].flatten().tolist() == [0, 128, 255, 51] and torch.equal(x[0, 0], x[0, 2])
    rgb = torch.rand(2, 3, 32, 32)
    assert torch.equal(fid.to_inception_input(rgb), (rgb * 255).round().to(torch.uint8))
    with pytest.raises(ValueError, match="1 or 3"):
        fid.to_inception_input(torch.rand(2, 2, 8, 8))


def test_the_inception_path_runs_offline_with_random_weights(net):
    g = torch.Generator().manual_seed(1)
    grey = torch.rand(4, 1, 8, 8, generator=g)
    colour = torch.rand(4, 3, 32, 32, generator=g)
    f = fid.inception_features(net, grey, batch_size=3)  # two batches
    assert f.shape == (4, 2048) and f.dtype == torch.float64 and torch.isfinite(f).all() and f.std(0).mean() > 0
    assert torch.allclose(f, fid.inception_features(net, grey, batch_size=4), rtol=1e-4, atol=1e-6)
    assert fid.inception_features(net, colour).shape == (4, 2048)
    apart = fid.inception_fid(grey, colour, net=net)
    assert apart > 1e-3 and abs(fid.inception_fid(grey, grey, net=net)) < 1e-4 * apart


def test_a_run_reports_both_fids_under_their_own_names(tmp_path, random_weights, monkeypatch):
    monkeypatch.setenv(fid.WEIGHTS_ENV, str(random_weights))
    run = pyrozoo.train("vae", out=tmp_path / "run", epochs=1, z_dim=2, hidden=[8], eval_samples=2, eval_points=3,
                        inception_fid=True, loggers="none", quiet=True)
    s = run.summary
    assert s["inception_fid_points"] == 3 and s["inception_fid_weights"] == str(random_weights)
    assert math.isfinite(s["inception_fid_gen"]) and math.isfinite(s["inception_fid_rec"])
    assert "fid" not in s and not any(k.startswith("fid") for k in s)
    monkeypatch.delenv(fid.WEIGHTS_ENV)
    report = run.evaluate(num_samples=2, num_points=2, inception_fid=True, inception_weights=str(random_weights))
    assert report["inception_fid_points"] == 2 and "classifier_fid_gen" not in report


def test_the_inception_fid_is_refused_where_it_cannot_run(tmp_path, capsys, monkeypatch):
    assert main(["train", "sintrovae", "--inception-fid", "--out", str(tmp_path / "a")]) == 2
    assert "inception_fid needs image data" in capsys.readouterr().err
    assert main(["train", "vae", "--inception-fid", "--inception-weights", str(tmp_path / "none.pth"),
                 "--out", str(tmp_path / "b")]) == 2
    assert "none.pth does not exist" in capsys.readouterr().err
    monkeypatch.setattr("builtins.__import__", _without("torch_fidelity"))
    assert main(["train", "vae", "--inception-fid", "--out", str(tmp_path / "c")]) == 2
    assert 'pip install "pyrozoo[fid]"' in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in "abc")


def _without(package):
    import builtins
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == package or name.startswith(package + "."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)
    return fake
