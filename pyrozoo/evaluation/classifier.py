"""How useful latent codes are for classification (Kalatzis et al. 2020, §5.2, Table 3)."""

import warnings

import numpy as np

from pyrozoo import checks


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

    xtr = checks.rows("train_z", train_z)
    xte = checks.rows("test_z", test_z, columns=xtr.shape[1])
    ytr, yte = checks.labels("train_y", train_y, len(xtr)), checks.labels("test_y", test_y, len(xte))
    hidden, epochs, batch_size = (checks.count(n, v) for n, v in
                                  (("hidden", hidden), ("epochs", epochs), ("batch_size", batch_size)))
    lr, seed = checks.number("lr", lr, positive=True), checks.count("seed", seed, 0)
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
