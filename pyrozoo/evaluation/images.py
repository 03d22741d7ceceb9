"""Image metrics of the Soft-IntroVAE experiments (§5.2, Tables 2 and 5) of Athanasiadis, Lindsten & Felsberg (2025),
"Prior Learning in Introspective VAEs", TMLR, arXiv:2408.13805.

* FID(GEN) and FID(REC): the Fréchet distance between Gaussian fits of features of test images and
  of prior samples (GEN) or reconstructions (REC). The paper uses InceptionV3 pool3 features; this
  machine cannot fetch those weights, so :func:`feature_classifier` trains a small CNN classifier on
  the data set's training split and caches it, and its penultimate layer gives the features. Numbers
  from it are called **classifier-FID**: comparable between our runs on one data set, not with the
  paper's Inception FID.
* Linear-SVM accuracy with 2k and 10k iterations and k-NN accuracy (k = 5, 100) on the posterior
  means (scikit-learn).
* The normalised entropy of the prior's responsibilities averaged over posterior samples (§4.2.3).
"""

import hashlib
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pyrozoo import checks

#: Where trained feature classifiers are cached (one file per data set and image shape).
CACHE = Path.home() / ".cache" / "pyrozoo" / "features"


class FeatureNet(nn.Module):
    """A small CNN classifier: two 3×3 conv + ReLU + 2×2 max-pool stages (32, 64 maps), a 128-unit
    hidden layer (the features) and a linear read-out to ``num_classes``."""

    def __init__(self, event_shape, num_classes=10, width=128):
        super().__init__()
        event_shape = checks.shape("event_shape", event_shape)
        if len(event_shape) != 3:
            raise ValueError(f"FeatureNet takes images (C, H, W), got event_shape {event_shape}")
        num_classes, width = checks.count("num_classes", num_classes, 2), checks.count("width", width)
        c, h, w = event_shape
        self.event_shape = tuple(event_shape)
        self.convs = nn.Sequential(nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), width), nn.ReLU())
        self.out = nn.Linear(width, num_classes)

    def features(self, x):
        """Penultimate features ``(N, width)`` of images ``(N, C, H, W)`` (or flattened)."""
        return self.hidden(self.convs(x.reshape((-1,) + self.event_shape)))

    def forward(self, x):
        """Class logits ``(N, num_classes)``."""
        return self.out(self.features(x))


def feature_classifier(name, images, labels, epochs=3, batch_size=128, lr=1e-3, seed=0, cache_dir=None,
                       progress=False):
    """A :class:`FeatureNet` trained on ``images`` ``(N, C, H, W)`` in [0, 1] with integer
    ``labels`` ``(N,)``, loaded from ``cache_dir`` (default :data:`CACHE`) when a net for the same
    data set ``name``, image shape and data was trained before. Returns the net in eval mode on the
    images' device, with ``train_accuracy`` set."""
    checks.tensor("images", images)
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    checks.points(images, images.shape[1:], name="images")
    checks.labels("labels", labels, len(images))
    epochs, batch_size = checks.count("epochs", epochs), checks.count("batch_size", batch_size)
    lr, seed = checks.number("lr", lr, positive=True), checks.count("seed", seed, 0)
    key = hashlib.sha1(f"{name}{tuple(images.shape)}{float(images[:64].sum()):.4f}{epochs}{seed}".encode()).hexdigest()
    path = Path(cache_dir or CACHE) / f"{name}-{key[:12]}.pt"
    net = FeatureNet(images.shape[1:], int(labels.max()) + 1)
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state["model"])
        net.train_accuracy = state["train_accuracy"]
        return net.to(images.device).eval()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = net.to(images.device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    labels = labels.to(images.device).long()
    from tqdm.auto import tqdm
    show = progress and sys.stderr.isatty()
    for _ in tqdm(range(epochs), disable=not show, desc="feature classifier", unit="epoch"):
        perm = torch.randperm(len(images), generator=gen).to(images.device)
        for start in range(0, len(images), batch_size):
            idx = perm[start:start + batch_size]
            loss = nn.functional.cross_entropy(net(images[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        correct = sum((net(images[i:i + 1000]).argmax(-1) == labels[i:i + 1000]).sum().item()
                      for i in range(0, len(images), 1000))
    net.train_accuracy = correct / len(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {k: v.cpu() for k, v in net.state_dict().items()}, "train_accuracy": net.train_accuracy},
               path)
    return net


def frechet_distance(a, b):
    """‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}) between Gaussian fits of feature sets
    ``a`` ``(N, F)`` and ``b`` ``(M, F)`` (the FID formula of Heusel et al. 2017), in float64."""
    from scipy import linalg
    a = checks.rows("a", a, min_rows=2)
    b = checks.rows("b", b, columns=a.shape[1], min_rows=2)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # a singular product is handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():  # near-singular products: regularise the covariances
            eps = np.eye(len(cov_a)) * 1e-6
            root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    root = root.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


@torch.no_grad()
def classifier_fid(net, real, fake, batch_size=1000):
    """Classifier-FID between images ``real`` and ``fake`` (each ``(N, C, H, W)``) with the
    features of ``net`` (a :class:`FeatureNet`)."""
    batch_size = checks.count("batch_size", batch_size)
    for name, x in (("real", real), ("fake", fake)):
        checks.points(x, net.event_shape, min_points=2, name=name)

    def feats(x):
        x = x.to(next(net.parameters()).device)
        return torch.cat([net.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    return frechet_distance(feats(real), feats(fake))


def latent_probes(train_codes, train_labels, test_codes, test_labels, svm_iterations=(2000, 10000), ks=(5, 100),
                  max_train=None, seed=0):
    """Test accuracies of classifiers fitted on latent codes (§5.2): a linear SVM (scikit-learn
    ``LinearSVC`` on standardised codes) stopped after each count in ``svm_iterations``, and k-NN
    with each k in ``ks``. ``max_train`` caps the training points (a seeded subset). Returns
    ``{"svm_2k": acc, "svm_10k": acc, "knn_5": acc, "knn_100": acc}``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    xtr = checks.rows("train_codes", train_codes)
    xte = checks.rows("test_codes", test_codes, columns=xtr.shape[1])
    ytr = checks.labels("train_labels", train_labels, len(xtr))
    yte = checks.labels("test_labels", test_labels, len(xte))
    svm_iterations, ks = checks.counts("svm_iterations", svm_iterations), checks.counts("ks", ks)
    seed = checks.count("seed", seed, 0)
    if max(ks) > len(xtr):
        raise ValueError(f"ks must be at most the number of training codes ({len(xtr)}), got {list(ks)}")
    if max_train is not None and len(xtr) > checks.count("max_train", max_train, max(ks)):
        idx = np.random.default_rng(seed).choice(len(xtr), int(max_train), replace=False)
        xtr, ytr = xtr[idx], ytr[idx]
    out = {}
    for it in svm_iterations:
        clf = make_pipeline(StandardScaler(), LinearSVC(max_iter=int(it), random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(xtr, ytr)
        out[f"svm_{int(it) // 1000}k" if it % 1000 == 0 else f"svm_{it}"] = float((clf.predict(xte) == yte).mean())
    for k in ks:
        knn = KNeighborsClassifier(n_neighbors=int(k)).fit(xtr, ytr)
        out[f"knn_{k}"] = float((knn.predict(xte) == yte).mean())
    return out


@torch.no_grad()
def responsibility_entropy(model, x, batch_size=500):
    """Normalised entropy (in [0, 1]) of the prior components' responsibilities averaged over one
    posterior draw z ~ q(z|x) per point of ``x`` (§4.2.3, eq. 11); ``nan`` for a prior that is not
    a mixture."""
    from pyrozoo.distributions.intro_prior import normalized_entropy, responsibilities
    batch_size = checks.count("batch_size", batch_size)
    model.check_data(x, support=False)
    mixture = model.prior()
    if not hasattr(mixture, "component_log_prob"):
        return math.nan
    total, n = 0.0, 0
    for start in range(0, len(x), batch_size):
        z = model.encoder(x[start:start + batch_size]).sample()
        total = total + responsibilities(mixture, z).sum(0)
        n += len(z)
    return float(normalized_entropy(total / n))
