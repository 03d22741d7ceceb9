"""Shared fixtures: the offline data root and a small trained VAE."""

import os
from pathlib import Path

import pyro
import pytest
import torch

from helpers import fit

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("PYROZOO_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(autouse=True)
def _fresh_pyro():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield


@pytest.fixture
def data_root():
    if not (DATA_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"no MNIST raw files under {DATA_ROOT}")
    return DATA_ROOT


@pytest.fixture(scope="session")
def digits():
    from pyrozoo.data import load
    return load("digits")


@pytest.fixture(scope="session")
def trained_vae(digits, tmp_path_factory):
    """A VAE trained for 40 epochs on digits (a few seconds)."""
    from pyrozoo import zoo
    torch.manual_seed(0)
    model = zoo.build("vae", event_shape=digits.event_shape)
    fit(model, digits, epochs=40, lr=2e-3, warmup=5)
    return model.eval()

