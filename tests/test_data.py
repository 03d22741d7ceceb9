import math

import pytest
import torch

from pyrozoo.data import BOXES, DataNotFoundError, load, sample_toy


def test_digits_split_shapes_and_ranges(digits):
    assert digits.event_shape == (1, 8, 8)
    assert (len(digits.train), len(digits.valid), len(digits.test)) == (1197, 300, 300)
    assert 0 <= digits.train.min() and digits.train.max() <= 1 and digits.train.max() == 1
    for split in ("valid", "test"):
        assert set(digits.split(split).unique().tolist()) == {0.0, 1.0}
    # the split is fixed: loading twice gives the same tensors
    again = load("digits")
    assert torch.equal(again.test, digits.test) and torch.equal(again.train, digits.train)


def test_dynamic_binarisation_draws_fresh_samples(digits):
    torch.manual_seed(0)
    a = next(digits.batches("train", 50))
    b = next(digits.batches("train", 50))
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b)  # same images, new Bernoulli draw
    # the mean of many draws approaches the intensities
    draws = torch.stack([next(digits.batches("train", 50)) for _ in range(400)]).mean(0)
    assert (draws - digits.train[:50]).abs().max() < 0.15


def test_mnist_from_shared_raw_files(data_root):
    ds = load("mnist", data_dir=data_root)
    assert ds.train.shape == (50000, 1, 28, 28)
    assert ds.valid.shape == (10000, 1, 28, 28) and ds.test.shape == (10000, 1, 28, 28)
    assert ds.train.min() == 0 and ds.train.max() == 1
    assert set(ds.test.unique().tolist()) == {0.0, 1.0}
    assert ds.labels["train"].shape == (50000,) and set(ds.labels["test"].tolist()) == set(range(10))
    cont = load("mnist", data_dir=data_root, binarize=False)
    # validation is the last 10k of the official training set, continuous in [0, 1] on the /255 grid
    assert torch.equal(cont.valid[-1], cont.valid[-1])
    assert torch.allclose(cont.valid * 255, torch.round(cont.valid * 255), atol=1e-4)
    assert cont.valid.max() == 1 and (cont.valid > 0).float().mean() < 0.3
    # binarised validation set is a fixed-seed draw: identical across loads
    assert torch.equal(load("mnist", data_dir=data_root).valid, ds.valid)


def test_fashion_mnist_from_shared_raw_files(data_root):
    ds = load("fashion-mnist", data_dir=data_root, binarize=False)
    assert ds.train.shape == (50000, 1, 28, 28) and ds.test.shape == (10000, 1, 28, 28)
    assert 0.2 < ds.train.mean() < 0.4


def test_missing_files_give_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="expected .*--download"):
        load("mnist", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="CIFAR10"):
        load("cifar10", data_dir=tmp_path)


def test_unknown_dataset_lists_choices():
    with pytest.raises(ValueError, match="choose from .*digits"):
        load("imagenet")


def _gen(name, n=20000):
    return sample_toy(name, n, generator=torch.Generator().manual_seed(1))


def test_eight_gaussians_support_and_moments():
    x = _gen("8gaussians")
    low, high = BOXES["8gaussians"]
    assert x.min() > low and x.max() < high
    r = x.norm(dim=1)
    assert torch.allclose(r.mean(), torch.tensor(2 / 1.414), atol=0.01)
    assert r.std() < 0.03
    assert x.mean(0).abs().max() < 0.05
    angles = torch.atan2(x[:, 1], x[:, 0]) / (math.pi / 4)
    assert (angles - angles.round()).abs().max() < 0.05  # eight directions 45 degrees apart


def test_two_spirals_support_and_symmetry():
    x = _gen("2spirals")
    assert (x.abs() < 4).all(dim=1).float().mean() > 0.999
    assert x.mean(0).abs().max() < 0.05
    assert 1.0 < x.norm(dim=1).mean() < 2.5
    with pytest.raises(ValueError):
        sample_toy("2spirals", 3)


def test_checkerboard_cells_and_moments():
    x = _gen("checkerboard")
    assert x.min() >= -4 and x.max() <= 4
    raw = x / 2
    parity = (torch.floor(raw[:, 0]) + torch.floor(raw[:, 1])) % 2
    assert (parity == 0).all()  # only the "black" cells
    assert raw[:, 0].var().sub(16 / 12).abs() < 0.05  # x1 ~ U(-2, 2)


def test_rings_radii():
    x = _gen("rings")
    r = x.norm(dim=1)
    nearest = torch.tensor([3.0, 2.25, 1.5, 0.75])[(r[:, None] - torch.tensor([3.0, 2.25, 1.5, 0.75])).abs().argmin(1)]
    assert (r - nearest).std() == pytest.approx(0.08, abs=0.01)
    assert x.abs().max() < 4


def test_toy_sets_load_with_box():
    ds = load("rings")
    assert ds.event_shape == (2,) and ds.box == (-4.0, 4.0) and ds.support == "real"
    with pytest.raises(ValueError, match="cannot be binarised"):
        load("rings", binarize=True)
