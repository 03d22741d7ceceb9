"""The standard FID: Fréchet distance between Gaussian fits of InceptionV3 pool features.

Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter (2017), "GANs Trained by a Two Time-Scale
Update Rule Converge to a Local Nash Equilibrium", NeurIPS, arXiv:1706.08500, eq. (6):
FID = ‖μ_r − μ_g‖² + tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}).

The features, the preprocessing and the distance are torch-fidelity's (``pip install
"pyrozoo[fid]"``): its ``inception-v3-compat`` extractor (the TensorFlow FID network's weights,
2048-dimensional pool features) takes uint8 RGB images of any size and resizes them to 299 × 299
with TensorFlow-1-compatible bilinear interpolation itself. pyrozoo's images are floats in [0, 1];
:func:`to_inception_input` scales them to 0..255 (rounded) and repeats a grey channel three
times, the usual way of scoring MNIST and Fashion-MNIST with this network; CIFAR-10 is RGB
already.

The weights come from ``weights=PATH`` (a file in torch-fidelity's format), else
``$PYROZOO_INCEPTION_WEIGHTS``, else torch-fidelity downloads them once into torch's hub cache.
Offline, :func:`random_inception_weights` writes randomly initialised weights of the same network,
which exercise the same code (the numbers they give are not FIDs anyone reports).

The classifier-FID of :mod:`pyrozoo.evaluation.images` (features of a small CNN trained on the
data set) stays the offline default; reports name each number ``classifier_fid_*`` or
``inception_fid_*``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

EXTRA = 'pip install "pyrozoo[fid]"'
WEIGHTS_ENV = "PYROZOO_INCEPTION_WEIGHTS"
EXTRACTOR = "inception-v3-compat"
FEATURES = "2048"


def _fidelity():
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
    except ImportError:
        raise ValueError(f"the standard (Inception) FID needs torch-fidelity, which is not installed: {EXTRA}") \
            from None
    return FeatureExtractorInceptionV3, URL_INCEPTION_V3


def weights_path(weights=None) -> str | None:
    """The weights file to use: ``weights``, else ``$PYROZOO_INCEPTION_WEIGHTS``, else None (the
    download); a named file must exist."""
    weights = weights if weights is not None else os.environ.get(WEIGHTS_ENV) or None
    if weights is not None and not Path(weights).is_file():
        raise ValueError(f"InceptionV3 weights file {weights} does not exist (inception_weights or ${WEIGHTS_ENV})")
    return None if weights is None else str(weights)


def check_available(weights=None):
    """Before a run: torch-fidelity must be installed and the weights at hand (the given file, or
    torch-fidelity's download, fetched now into torch's hub cache rather than after training)."""
    _, url = _fidelity()
    if weights_path(weights) is not None:
        return
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    if not cached.is_file():
        _download(url)


def _download(url):
    try:
        torch.hub.load_state_dict_from_url(url, progress=False)
    except (OSError, RuntimeError) as err:  # urllib's URLError is an OSError
        raise ValueError(f"could not download the InceptionV3 weights ({type(err).__name__}: {err}); give a local "
                         f"copy with --inception-weights PATH or ${WEIGHTS_ENV}") from None


def inception(weights=None, device="cpu"):
    """torch-fidelity's InceptionV3 feature extractor (``inception-v3-compat``, the 2048 pool
    features) with the weights of :func:`weights_path`, in evaluation mode on ``device``."""
    extractor, url = _fidelity()
    path = weights_path(weights)
    if path is None:
        check_available()
    try:
        return extractor(EXTRACTOR, [FEATURES], feature_extractor_weights_path=path).to(device)
    except (RuntimeError, KeyError, OSError) as err:
        where = path or "the downloaded weights"
        raise ValueError(f"{where} are not InceptionV3 weights in torch-fidelity's format "
                         f"({str(err).splitlines()[0][:160]})") from None


def random_inception_weights(path, seed: int = 0) -> Path:
    """Write randomly initialised weights of torch-fidelity's InceptionV3 to ``path`` in the format
    :func:`inception` loads: for offline tests of the FID code, not for reporting. The convolutions
    are drawn He-normal (seeded by ``seed``) so that features keep their scale through the ReLU
    layers (PyTorch's default initialisation lets them vanish)."""
    extractor, _ = _fidelity()

    class Unloaded(extractor):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random initialisation
            return None

    path = Path(path)
    torch.save({}, path)  # what the constructor reads before the (skipped) load
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Unloaded(EXTRACTOR, [FEATURES], feature_extractor_weights_path=str(path))
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path


def to_inception_input(images: torch.Tensor) -> torch.Tensor:
    """Images ``(N, C, H, W)`` in [0, 1] with C = 1 or 3 as the extractor takes them: uint8
    ``(N, 3, H, W)``, x·255 rounded, a grey channel repeated three times (resizing to 299 × 299 is
    the extractor's own)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"need images (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
    x = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@torch.no_grad()
def inception_features(net, images: torch.Tensor, batch_size: int = 50, progress: str | None = None) -> torch.Tensor:
    """The 2048 pool features ``(N, 2048)`` (float64, CPU) of images ``(N, C, H, W)`` in [0, 1].
    ``progress``: a label for a bar on a terminal."""
    from tqdm.auto import tqdm
    device = next(net.parameters()).device
    starts = range(0, len(images), batch_size)
    show = progress is not None and sys.stderr.isatty()
    out = [net(to_inception_input(images[i:i + batch_size]).to(device))[0].double().cpu()
           for i in tqdm(starts, disable=not show, desc=progress, unit="batch")]
    return torch.cat(out)


def statistics(features: torch.Tensor) -> dict:
    """Mean and covariance ``{"mu": (F,), "sigma": (F, F)}`` of features ``(N, F)``, N ≥ 2 (as
    torch-fidelity computes them, float64)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics
    if features.dim() != 2 or len(features) < 2:
        raise ValueError(f"need features (N, F) with N >= 2, got shape {tuple(features.shape)}")
    return fid_features_to_statistics(features.detach().double().cpu())


def frechet_distance(stats_a: dict, stats_b: dict) -> float:
    """eq. (6) of Heusel et al. (2017) between two Gaussians given as ``{"mu", "sigma"}`` (numpy
    arrays, as :func:`statistics` returns), by torch-fidelity's formula."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric
    return float(fid_statistics_to_metric(stats_a, stats_b, verbose=False)[KEY_METRIC_FID])


def inception_fid(real: torch.Tensor, fake: torch.Tensor, net=None, weights=None, batch_size: int = 50) -> float:
    """The FID between image sets ``real`` and ``fake`` (each ``(N, C, H, W)`` in [0, 1])."""
    net = net if net is not None else inception(weights, device=real.device)
    return frechet_distance(statistics(inception_features(net, real, batch_size)),
                            statistics(inception_features(net, fake, batch_size)))


@torch.no_grad()
def inception_fid_report(model, dataset, num_points=None, weights=None, batch_size: int = 50,
                         quiet: bool = True) -> dict:
    """The standard FID of ``model``'s samples (decoder means at z ~ p(z)) and reconstructions
    against the first ``num_points`` test images (all by default), as many of each:
    ``{"inception_fid_gen", "inception_fid_rec", "inception_fid_points", "inception_fid_weights"}``."""
    test = dataset.test[:num_points] if num_points else dataset.test
    device = next(model.parameters()).device
    net = inception(weights, device=device)
    model.eval()

    def batched(fn):
        return torch.cat([fn(test[i:i + 500].to(device)) for i in range(0, len(test), 500)])

    label = None if quiet else "Inception features"
    real = statistics(inception_features(net, test, batch_size, label))
    gen = statistics(inception_features(net, batched(lambda x: model.sample(len(x))), batch_size, label))
    rec = statistics(inception_features(net, batched(model.reconstruct), batch_size, label))
    return {"inception_fid_gen": frechet_distance(real, gen), "inception_fid_rec": frechet_distance(real, rec),
            "inception_fid_points": len(test),
            "inception_fid_weights": weights_path(weights) or "torch-fidelity inception-v3-compat (downloaded)"}
