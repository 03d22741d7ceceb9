"""Image metrics of the Soft-IntroVAE experiments (pyrozoo/evaluation/images.py)."""

import math

import numpy as np
import pytest
import torch

from pyrozoo import zoo
from pyrozoo.evaluation.images import (classifier_fid, feature_classifier, frechet_distance, latent_probes,
                                       responsibility_entropy)


def test_frechet_distance_of_gaussians():
    g = np.random.default_rng(0)
    a = g.normal(size=(20000, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    # equal covariances: the distance is the squared distance of the means
    shift = np.array([1.0, -2.0, 0.5])
    assert frechet_distance(a, g.normal(size=(20000, 3)) + shift) == pytest.approx(5.25, abs=0.1)
    # N(0, I) against N(0, 4I) in 3D: 3·(1 + 4 − 2·2) = 3
    assert frechet_distance(a, 2 * g.normal(size=(20000, 3))) == pytest.approx(3.0, abs=0.15)
    with pytest.raises(ValueError):
        frechet_distance(a[:, :2], a)


def test_latent_probes_separate_clusters_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 4
    centres = torch.tensor([[5.0, 0], [-5, 0], [0, 5], [0, -5]])
    codes = centres[labels] + torch.randn(400, 2, generator=g)
    good = latent_probes(codes[:300], labels[:300], codes[300:], labels[300:], svm_iterations=(2000,), ks=(5,))
    assert good["svm_2k"] > 0.95 and good["knn_5"] > 0.95
    noise = torch.randn(400, 2, generator=g)
    bad = latent_probes(noise[:300], labels[:300], noise[300:], labels[300:], svm_iterations=(2000,), ks=(5,))
    assert bad["svm_2k"] < 0.5 and bad["knn_5"] < 0.5


def test_feature_classifier_learns_and_is_cached(tmp_path):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(256) % 2
    images = torch.rand(256, 1, 8, 8, generator=g) * 0.2
    images[labels == 1, :, :4] += 0.8  # class 1: a bright upper half
    net = feature_classifier("toy", images, labels, epochs=5, batch_size=32, cache_dir=tmp_path)
    assert net.train_accuracy > 0.95 and len(list(tmp_path.iterdir())) == 1
    again = feature_classifier("toy", images, labels, epochs=5, batch_size=32, cache_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    # the distance between the two classes is larger than between two halves of one class
    ones, zeros = images[labels == 1], images[labels == 0]
    assert classifier_fid(net, ones[:64], zeros[:64]) > 10 * classifier_fid(net, ones[:64], ones[64:])


def test_responsibility_entropy_is_normalised():
    model = zoo.build("sintrovae-prior", event_shape=(2,), num_components=4)
    x = torch.randn(50, 2)
    h = responsibility_entropy(model, x)
    assert 0 <= h <= 1
    assert math.isnan(responsibility_entropy(zoo.build("sintrovae", event_shape=(2,)), x))
