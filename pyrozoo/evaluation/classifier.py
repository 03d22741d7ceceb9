"""How useful latent codes are for classification (Kalatzis et al. 2020, §5.2, Table 3)."""

import warnings

import numpy as np
import torch


def latent_f1(train_z, train_y, test_z, test_y, hidden=100, epochs=100, batch_size=64, lr=1e-3, seed=0):
    """Per-class and macro-average F1 of an MLP classifier trained on latent codes.

    The classifier of Appendix C.2: one hidden layer of ``hidden`` (100) ReLU units, Adam with
    learning rate ``lr`` (1e-3), mini-batches of ``batch_size`` (64), ``epochs`` (100) passes
    (scikit-learn's ``MLPClassifier``). ``train_z`` ``(N, d)``, ``train_y`` ``(N,)`` integer labels;
    likewise for the test split. Returns ``{"per_class": {label: F1}, "average": macro F1}``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import f1_score
    from sklearn.neural_network import MLPClassifier

    arrays = [torch.as_tensor(a).detach().cpu().numpy() for a in (train_z, train_y, test_z, test_y)]
    xtr, ytr, xte, yte = arrays
    if xtr.ndim != 2 or xte.ndim != 2 or len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(f"latent_f1 needs codes (N, d) with N labels; got {xtr.shape}/{ytr.shape} and "
                         f"{xte.shape}/{yte.shape}")
    if not (np.isfinite(xtr).all() and np.isfinite(xte).all()):
        raise ValueError("latent codes contain NaN or inf")
    clf = MLPClassifier(hidden_layer_sizes=(int(hidden),), activation="relu", solver="adam", learning_rate_init=lr,
                        batch_size=int(batch_size), max_iter=int(epochs), random_state=int(seed), tol=0.0,
                        n_iter_no_change=int(epochs) + 1)
    with warnings.catch_warnings():  # max_iter reached is the point: a fixed number of epochs
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(xtr, ytr)
    pred = clf.predict(xte)
    labels = np.unique(np.concatenate([ytr, yte]))
    per_class = f1_score(yte, pred, labels=labels, average=None, zero_division=0)
    return {"per_class": {int(c): float(f) for c, f in zip(labels, per_class)},
            "average": float(per_class.mean())}
