"""pyrozoo's ``vampprior`` preset against the VampPrior authors' own code, trained and scored at an equal budget.

Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120: the one-level VAE with the VampPrior
of eq. 9 on dynamic MNIST.

For each seed it trains (a) the ``vampprior`` preset through the public API (``pyrozoo.train``, resumable) and
(b) the class ``VAE`` of the authors' ``models/VAE.py`` (github.com/jmtomczak/vae_vampprior, imported from a local
checkout given by ``--authors-code``; nothing of it is copied here) with their optimiser ``AdamNormGrad``
(``utils/optimizer.py``), their loss ``calculate_loss(x, beta, average=True)`` and their per-epoch warm-up
(``utils/training.py``), in a small loop of this file (their ``train_vae`` reads ``.data[0]`` of 0-dim tensors,
which current PyTorch refuses). Both then get ONE evaluator, :func:`log_likelihood_from_weights`: the
importance-sampled log p(x) with S draws from each model's q(z|x) (Burda et al. 2016; §5.2 of the paper) and, from
the same draws, the ELBO, on the same first ``--test-points`` test images. Commands::

    git clone https://github.com/jmtomczak/vae_vampprior /somewhere/vae_vampprior   # outside this repository
    python benchmarks/vampprior_authors.py --authors-code /somewhere/vae_vampprior --threads 1
    # smoke test (minutes): also checks the shared evaluator against pyrozoo.evaluation.log_likelihood
    python benchmarks/vampprior_authors.py --authors-code /somewhere/vae_vampprior --epochs 1 --warmup 1 \\
        --seeds 0 --train-points 2000 --test-points 50 --samples 100 --threads 1 --check-evaluator \\
        --results /tmp/smoke.json

``--sides pyrozoo-same-init`` trains the preset once more per seed, started from the authors' initial weights of
that seed (:func:`authors_initial_weights`; their run starts from the same ones): with the initial draw shared,
the gap ``gap_same_init_*`` measures the two codes alone, where the plain gap also carries the luck of two
independent initial draws.

Results (``benchmarks/results/vampprior_authors.json`` by default) are rewritten after every job (one model of
one seed); a killed run skips finished jobs, and each training continues from its checkpoint under
``benchmarks/runs/vampprior_authors/``.

The same in both trainings: the 50 000 / 10 000 MNIST split of ``pyrozoo.data.load("mnist")`` and the very same
dynamically binarised batches (this loop draws them as pyrozoo's ``SVIStrategy`` does: ``micro_batches`` of the
epoch, the RNG reseeded per batch by ``seed_micro_batch``, then ``torch.bernoulli``); batch 100; lr 5e-4;
per-tensor gradient normalisation before Adam; gated MLPs 784-300-300 / 40-300-300-784, z = 40, K = 500;
He-normal weights of every ``nn.Linear``, PyTorch-default biases; log-variances through hardtanh(−6, 2);
pseudo-inputs hardtanh_[0,1](W) with W ~ N(0.05, 0.01²); Bernoulli probabilities bounded to [1e-5, 1 − 1e-5];
single-sample Monte-Carlo KL (no closed form for a mixture prior); the best-validation-ELBO weights are scored.

What still differs (their code first; ranked by how much each is expected to matter at this budget):

1. Warm-up schedule: now the same. Theirs (``utils/training.py``, ``train_vae``): one β per epoch, β = epoch /
   warmup with epochs counted from 1. The preset's default ``kl_schedule="epochs"`` (``inference/annealing.py``,
   ``epoch_warmup``) does the same; before it, pyrozoo's β rose per step from 0 (``linear_warmup``), about
   0.5/warmup lower in every warm-up epoch, with one epoch fewer at β = 1 at a 10-epoch budget.
2. Early stopping (``utils/perform_experiment.py``, ``experiment_vae``): stop when the validation loss has not
   improved for MORE than 50 epochs, the counter held at 0 while epoch < warmup; pyrozoo stops after 50 epochs
   without improvement, counting warm-up epochs too. Validation is their ``calculate_loss`` at β = 1, batch 100,
   against pyrozoo's ``mean_elbo``, batch 500 (the same single-sample estimate). No effect at 10 epochs (it
   never triggers); with the paper's 2000 epochs and warm-up 100 pyrozoo may stop a little earlier.
3. Adam's ε (``utils/optimizer.py``, ``AdamNormGrad.step``): their step is lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε),
   torch.optim.Adam's lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε), i.e. ε scaled by √(1−β₂ᵗ) (0.03 at step 1). With
   unit-norm gradients per tensor (elements of about 1/√numel ≥ 1.6e-3) ε = 1e-8 makes no difference. Both normalise
   each parameter tensor by its L2 norm + 1e-7; pyrozoo's loss is a sum scaled by N/B, theirs a batch mean,
   which the normalisation makes irrelevant.
4. The mixture's log-density. Theirs (``models/VAE.py``, ``VAE.log_p_z``): the broadcast (B, K, 40) form,
   ``log_Normal_diag`` then a max-shifted log-sum-exp. pyrozoo (``distributions/mixtures.py``,
   ``DiagonalGaussianMixture``): the expanded quadratic form as one matrix product, float64 when its rounding
   bound asks; its d/d log σ² keeps float32 products, with errors up to about 4e-4 of the largest gradient
   component. Small against a step's Monte-Carlo noise.
5. The Bernoulli's numerics (``utils/distributions.py``, ``log_Bernoulli``): theirs takes log p and log(1 − p)
   of float32 sigmoid probabilities clamped to [1e-5, 1 − 1e-5]; pyrozoo clamps the logits to ±log((1−ε)/ε)
   and works from logits. Same value and the same zero gradient past the bound; theirs loses float32
   precision in log(1 − p) near the bound (about 0.6 % of 1 − p there).
6. Pseudo-input bounds at the edges: their ``nn.Hardtanh(0, 1)`` (``models/Model.py``, ``add_pseudoinputs``)
   passes no gradient at exactly 0 or 1, pyrozoo's ``torch.clamp`` passes it there; their W is the weight of
   ``Linear(eye(K))`` (a 784 x 500 matrix) and pyrozoo's a (500, 1, 28, 28) tensor: the same numbers, the same
   norm for the gradient normalisation.
7. Data and evaluation outside this benchmark: their dynamic MNIST (``utils/load_data.py``,
   ``load_dynamic_mnist``) binarises validation and test once with NumPy seed 777, pyrozoo with torch seeds 1234
   and 1235 (here both models see pyrozoo's test images); their ``calculate_likelihood`` forms the log-mean-exp of
   float32 weights in NumPy per point with MB = 100 draws at a time (here: float64, one function for both).
8. Random streams: their ``reparameterize`` draws ε with ``torch.FloatTensor(...).normal_()`` from the global RNG
   (reseeded per batch here, as pyrozoo's loop does), pyrozoo's ``Normal.rsample``; the same distribution.

Checked (``--check-evaluator``, :func:`same_step_error`): with their initial weights copied into the preset, the
two compute the same log-weights at the same draws of z and the same normalised gradients at a given β, up to
float32 rounding, so the forward and backward passes hold no further difference; what is left is the list above
(above all the warm-up) and the random draws of the initial weights (the same distributions).

Their ``log_Normal_diag`` and ``log_Normal_standard`` omit −½ log 2π per dimension. In the adapter
(:func:`authors_log_weights`) log p(z) = logsumexp_k [log N'(z; μ_k, σ_k²)] − log K and log q(z|x) = log N'(z; μ,
σ²) both lack the same 40 · ½ log 2π (a constant shifts every term of the log-sum-exp alike), so log p(z) −
log q(z|x) is exact; ``--check-evaluator`` verifies this against ``torch.distributions.Normal`` with all constants.
"""

import argparse
import contextlib
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

from pyrozoo.data import load
from pyrozoo.evaluation.likelihood import elbo_terms, log_likelihood
from pyrozoo.inference.distributed import seed_micro_batch
from pyrozoo.runs import engine

from common import RESULTS, RUNS, load_results, save_entry, save_results, train_run

#: the files of jmtomczak/vae_vampprior this benchmark imports (or reads) from ``--authors-code``
AUTHORS_FILES = ("models/VAE.py", "models/Model.py", "utils/nn.py", "utils/distributions.py", "utils/optimizer.py",
                 "utils/visual_evaluation.py", "utils/training.py")
FOLDER = "vampprior_authors"
SIDES = ("pyrozoo", "authors", "pyrozoo-same-init")
BATCH, LR, Z_DIM, K = 100, 5e-4, 40, 500
EARLY_STOPPING = 50  # their experiment.py --early_stopping_epochs
EVAL_BATCH, EVAL_CHUNK = 20, 50  # test points per batch, draws per chunk: 1000 z at a time


def check_authors_code(path):
    """The files of ``AUTHORS_FILES`` missing under ``path`` (empty when it looks like their checkout)."""
    return [f for f in AUTHORS_FILES if not (Path(path) / f).is_file()]


def import_authors(path):
    """Import the authors' ``VAE``, ``AdamNormGrad`` and densities from the checkout at ``path``: a shim for
    ``scipy.misc.logsumexp`` (gone from SciPy; their ``models/VAE.py`` imports it), then ``path`` and
    ``path/models`` on ``sys.path``. Returns a namespace of the four."""
    import scipy.misc
    import scipy.special
    if not hasattr(scipy.misc, "logsumexp"):
        scipy.misc.logsumexp = scipy.special.logsumexp
    path = Path(path).resolve()
    for p in (str(path / "models"), str(path)):
        if p not in sys.path:
            sys.path.insert(0, p)
    from models.VAE import VAE
    from utils.distributions import log_Bernoulli, log_Normal_diag
    from utils.optimizer import AdamNormGrad
    return SimpleNamespace(VAE=VAE, AdamNormGrad=AdamNormGrad, log_Bernoulli=log_Bernoulli,
                           log_Normal_diag=log_Normal_diag)


def authors_args(epochs, warmup, seed, samples, device):
    """The ``args`` their ``experiment.py`` builds for ``--model_name vae --prior vampprior --dataset_name
    dynamic_mnist`` (with what their ``load_dynamic_mnist`` then sets: binary input, pseudo-inputs N(0.05, 0.01²))."""
    return argparse.Namespace(
        batch_size=BATCH, test_batch_size=BATCH, epochs=epochs, lr=LR, early_stopping_epochs=EARLY_STOPPING,
        warmup=warmup, no_cuda=device.type != "cuda", cuda=device.type == "cuda", seed=seed, z1_size=Z_DIM,
        z2_size=Z_DIM, input_size=[1, 28, 28], activation=None, number_components=K, pseudoinputs_mean=0.05,
        pseudoinputs_std=0.01, use_training_data_init=False, model_name="vae", prior="vampprior",
        input_type="binary", S=samples, MB=100, dataset_name="dynamic_mnist", dynamic_binarization=True)


def their_beta(epoch, warmup):
    """The KL weight of 0-based ``epoch`` by their ``train_vae``: epoch (counted from 1) / warmup, at most 1."""
    return 1.0 if warmup == 0 else min(1.0, (epoch + 1) / warmup)


@torch.no_grad()
def their_validation_loss(model, x, seed, epoch):
    """Their validation loss: the mean over batches of 100 of ``calculate_loss(x, average=True)`` (β = 1)."""
    seed_micro_batch(seed, -2, epoch)
    losses = [model.calculate_loss(x[i:i + BATCH].flatten(1), average=True)[0].item()
              for i in range(0, len(x), BATCH)]
    return sum(losses) / len(losses)


def _save(obj, path):
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_authors(authors, data, args, seed, out, device):
    """Train their ``VAE`` for ``args.epochs`` epochs on pyrozoo's batches of ``data`` with their optimiser, loss,
    warm-up and early-stopping rule, checkpointing to ``out/authors.pt`` after every epoch (a rerun continues).
    Returns the model with its best-validation weights and the training record."""
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "authors.pt"
    torch.manual_seed(seed)
    model = authors.VAE(authors_args(args.epochs, args.warmup, seed, args.samples, device)).to(device)
    opt = authors.AdamNormGrad(model.parameters(), lr=LR)
    state = {"epoch": 0, "best": math.inf, "best_epoch": 0, "best_model": None, "wait": 0, "stopped": False,
             "history": []}
    if ckpt.exists():
        saved = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        state = saved["state"]
    train = data.train.to(device)
    for epoch in range(state["epoch"], args.epochs):
        if state["stopped"]:
            break
        beta, start, total = their_beta(epoch, args.warmup), time.perf_counter(), 0.0
        model.train()
        for step, [(j, index)] in data.micro_batches(epoch, seed, BATCH):
            seed_micro_batch(seed, epoch, step, j)
            x = data.binarized(train[index.to(device)]).flatten(1)
            opt.zero_grad()
            loss, _, _ = model.calculate_loss(x, beta, average=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
        seconds = time.perf_counter() - start
        model.eval()
        valid = their_validation_loss(model, data.valid.to(device), seed, epoch)
        # their experiment_vae: keep the best validation loss; stop after more than 50 epochs without a better one
        if valid < state["best"]:
            state.update(best=valid, best_epoch=epoch + 1, wait=0,
                         best_model={k: v.detach().clone() for k, v in model.state_dict().items()})
        else:
            state["wait"] = 0 if epoch + 1 < args.warmup else state["wait"] + 1
            state["stopped"] = state["wait"] > EARLY_STOPPING
        state["stopped"] = state["stopped"] or math.isnan(valid)
        state["epoch"] = epoch + 1
        state["history"].append({"epoch": epoch + 1, "beta": beta, "train_loss": total / len(train),
                                 "valid_loss": valid, "seconds": round(seconds, 2)})
        _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": state}, ckpt)
        if not args.quiet:
            print(f"  authors epoch {epoch + 1}/{args.epochs}: beta {beta:.2f}, train loss {total / len(train):.2f}, "
                  f"valid loss {valid:.2f} ({seconds:.1f} s)", file=sys.stderr, flush=True)
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    model.eval()
    return model, {"epochs": state["epoch"], "best_epoch": state["best_epoch"],
                   "best_valid_elbo": -state["best"], "train_seconds": round(sum(h["seconds"] for h in
                                                                                 state["history"]), 1)}


def authors_log_weights(authors, model):
    """``fn(x, s)``: log p(x|z) + log p(z) − log q(z|x) ``(s, B)`` for ``s`` draws z ~ q(z|x) of their model, per
    image of ``x`` ``(B, 1, 28, 28)``, from their own pieces: ``q_z``, ``reparameterize``, ``p_x``, ``log_p_z``
    (the VampPrior) and their ``log_Bernoulli`` (with its clamp) and ``log_Normal_diag``. Both Gaussian
    log-densities lack −½ log 2π per dimension, the same 40 of them, so the difference is exact (see the module
    docstring; ``--check-evaluator`` checks it)."""

    def fn(x, s):
        x = x.flatten(1)
        mean, logvar = model.q_z(x)  # (B, 40)
        z = model.reparameterize(mean.expand(s, *mean.shape), logvar.expand(s, *logvar.shape))  # (s, B, 40)
        flat = z.reshape(-1, z.shape[-1])  # row s_i * B + b
        x_mean, _ = model.p_x(flat)
        log_px = authors.log_Bernoulli(x.repeat(s, 1), x_mean, dim=1)
        log_pz = model.log_p_z(flat)
        log_qz = authors.log_Normal_diag(z, mean, logvar, dim=2).reshape(-1)
        return (log_px + log_pz - log_qz).reshape(s, len(x))

    return fn


@torch.no_grad()
def log_likelihood_from_weights(log_weight_fn, x, num_samples, chunk=EVAL_CHUNK, batch_size=EVAL_BATCH, seed=0):
    """The shared evaluator: from log-weights log w_s = log p(x, z_s) − log q(z_s|x), z_s ~ q(z|x), given by
    ``log_weight_fn(xb, s) -> (s, B)``, the importance-sampled log p(x_i) ≈ log (1/S) Σ_s w_s (Burda et al.
    2016; Tomczak & Welling 2018, §5.2) and the ELBO_i ≈ (1/S) Σ_s log w_s, for each point of ``x``
    ``(N, *event)``; S = ``num_samples`` drawn ``chunk`` at a time, ``batch_size`` points at a time, the RNG
    seeded per batch. The log-mean-exp and the mean are taken in float64. Returns two float64 ``(N,)``."""
    ll, elbo = [], []
    for i, start in enumerate(range(0, len(x), batch_size)):
        xb = x[start:start + batch_size]
        seed_micro_batch(seed, i)
        acc, total, remaining = None, 0.0, num_samples
        while remaining > 0:
            s = min(chunk, remaining)
            lw = log_weight_fn(xb, s).double()
            part = torch.logsumexp(lw, 0)
            acc = part if acc is None else torch.logaddexp(acc, part)
            total = total + lw.sum(0)
            remaining -= s
        ll.append(acc - math.log(num_samples))
        elbo.append(total / num_samples)
    return torch.cat(ll), torch.cat(elbo)


@torch.no_grad()
def authors_constant_error(authors, model, x):
    """max_i |[log p(z_i) − log q(z_i|x_i)] by their functions − the same with every constant
    (``torch.distributions.Normal``)| at one draw per point: 0 up to float32 rounding when the omitted
    −½ log 2π terms cancel."""
    from torch.distributions import Normal
    x = x.flatten(1)
    mean, logvar = model.q_z(x)
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    theirs = model.log_p_z(z) - authors.log_Normal_diag(z, mean, logvar, dim=1)
    p_mean, p_logvar = model.q_z(model.means(model.idle_input))  # (K, 40)
    log_p = torch.logsumexp(Normal(p_mean, torch.exp(0.5 * p_logvar)).log_prob(z[:, None]).sum(-1), -1) - math.log(K)
    log_q = Normal(mean, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    return (theirs - (log_p - log_q)).abs().max().item()


@torch.no_grad()
def authors_adapter_error(authors, model, x, seed):
    """max_i |log w_i of :func:`authors_log_weights` at one draw − (−their ``calculate_loss(x)``) at β = 1|, both
    drawing z from the same reseeded RNG (the same normals in the same order): 0 up to float32 rounding when the
    adapter computes their single-sample ELBO term."""
    seed_micro_batch(seed, -3)
    mine = authors_log_weights(authors, model)(x, 1)[0]
    seed_micro_batch(seed, -3)
    theirs = -model.calculate_loss(x.flatten(1))[0]
    return (mine - theirs).abs().max().item()


def copy_authors_weights(authors_model, model):
    """Copy the weights of their ``VAE`` into a ``vampprior`` model of pyrozoo (module by module; their
    pseudo-input matrix W ``(784, K)`` transposed into pyrozoo's ``(K, 1, 28, 28)``). Returns the name pairs."""
    pairs = {"prior.pseudo_weights": "means.linear.weight"}
    for wb in ("weight", "bias"):
        pairs.update({f"encoder.loc.{wb}": f"q_z_mean.{wb}", f"encoder.logvar.{wb}": f"q_z_logvar.linear.{wb}",
                      f"decoder.net.1.{wb}": f"p_x_mean.linear.{wb}"})
        for ours, theirs in (("encoder.net", "q_z_layers"), ("decoder.net.0", "p_x_layers")):
            pairs.update({f"{ours}.{i}.{hg}.{wb}": f"{theirs}.{i}.{hg}.{wb}" for i in (0, 1) for hg in "hg"})
    mine, theirs = dict(model.named_parameters()), dict(authors_model.named_parameters())
    if set(mine) != set(pairs):
        raise ValueError(f"unexpected parameters of the vampprior preset: {sorted(set(mine) ^ set(pairs))}")
    with torch.no_grad():
        for a, b in pairs.items():
            mine[a].copy_(theirs[b].t().reshape(mine[a].shape) if a == "prior.pseudo_weights" else theirs[b])
    return pairs


def same_step_error(authors, x, beta=0.5):
    """Their fresh ``VAE`` and the ``vampprior`` preset with its weights: the largest |difference| of the log-weights
    at the same draws of z, and of the per-tensor normalised gradients of the training loss at ``beta`` (each
    model's own loss, the same ε): both 0 up to float32 rounding when the two compute the same step."""
    from pyrozoo.zoo.vampprior import gated_vae
    theirs = authors.VAE(authors_args(1, 1, 0, 1, x.device)).to(x.device)
    mine = gated_vae((1, 28, 28), prior="vampprior").to(x.device)
    pairs = copy_authors_weights(theirs, mine)
    with torch.no_grad():
        seed_micro_batch(0, -4)
        lw_theirs = authors_log_weights(authors, theirs)(x, 2)
        seed_micro_batch(0, -4)
        lw_mine = mine.direct_log_weights(x, 2)
    seed_micro_batch(0, -5)
    theirs.calculate_loss(x.flatten(1), beta, average=True)[0].backward()
    seed_micro_batch(0, -5)
    (-mine.direct_elbo(x, beta=beta)).backward()
    grads_mine, grads_theirs = dict(mine.named_parameters()), dict(theirs.named_parameters())
    worst = 0.0
    for a, b in pairs.items():
        g, h = grads_mine[a].grad.flatten(), grads_theirs[b].grad
        h = (h.t() if a == "prior.pseudo_weights" else h).flatten()
        worst = max(worst, (g / g.norm() - h / h.norm()).abs().max().item())
    return {"log_weights_max_abs_error": (lw_theirs - lw_mine).abs().max().item(),
            "normalised_gradients_max_abs_error": worst}


@torch.no_grad()
def their_elbo(model, x, seed):
    """Their own test ELBO (their ``calculate_lower_bound``: mean over batches of 100 of −``calculate_loss``)."""
    return -their_validation_loss(model, x, seed, 0)


@contextlib.contextmanager
def first_train_points(n):
    """Smoke tests only: while active, pyrozoo's run data loader (``pyrozoo.runs.engine.load_dataset``) keeps
    the first ``n`` training images (all when ``n`` is 0); the public API has no such option."""
    if not n:
        yield
        return
    original = engine.load_dataset

    def load_first(config):
        return truncate(original(config), n)

    engine.load_dataset = load_first
    try:
        yield
    finally:
        engine.load_dataset = original


@contextlib.contextmanager
def authors_initial_weights(authors, seed, device):
    """While active, every model pyrozoo's run engine builds (``engine.build_model``) starts from the initial
    weights of the authors' ``VAE`` built as :func:`train_authors` builds it (``torch.manual_seed(seed)`` then
    ``VAE(args)``), copied by :func:`copy_authors_weights`; a model loaded from a checkpoint is then overwritten
    by it as usual. With it the two trainings differ only in their code, not in their initial draw."""
    original = engine.build_model

    def build_from_theirs(config, event_shape, data=None):
        model = original(config, event_shape, data)
        torch.manual_seed(seed)
        copy_authors_weights(authors.VAE(authors_args(1, 1, seed, 1, device)), model)
        return model

    engine.build_model = build_from_theirs
    try:
        yield
    finally:
        engine.build_model = original


def truncate(data, n):
    """``data`` with its training split cut to the first ``n`` images (all when ``n`` is 0)."""
    if n:
        data.train = data.train[:n]
        if "train" in data.labels:
            data.labels["train"] = data.labels["train"][:n]
    return data


def evaluate(log_weight_fn, x, args, seed):
    """Mean test log p(x) and ELBO of one model by :func:`log_likelihood_from_weights` and its seconds, and the
    per-point log p(x) ``(N,)``."""
    start = time.perf_counter()
    ll, elbo = log_likelihood_from_weights(log_weight_fn, x, args.samples, seed=seed)
    return {"test_log_likelihood": round(ll.mean().item(), 4), "test_elbo": round(elbo.mean().item(), 4),
            "eval_seconds": round(time.perf_counter() - start, 1)}, ll


def mean_and_error(values):
    """``{"mean", "standard_error"}`` of a float tensor ``(N,)`` (N >= 2)."""
    return {"mean": round(values.mean().item(), 4), "standard_error": round((values.std() / len(values) ** 0.5).item(),
                                                                             4)}


def run_pyrozoo(args, seed, x_test, tag, authors=None):
    """Train the ``vampprior`` preset through the public API and score it; returns its result dict. With
    ``authors`` (the side ``pyrozoo-same-init``) it starts from their initial weights of the same seed."""
    same = authors_initial_weights(authors, seed, args.device) if authors is not None else contextlib.nullcontext()
    with first_train_points(args.train_points), same:
        run = train_run("vampprior", "mnist", FOLDER, tag, epochs=args.epochs, batch_size=BATCH, lr=LR,
                        warmup=args.warmup, normalize_gradients=True, seed=seed, device=str(args.device),
                        quiet=args.quiet, data_dir=args.data_dir)
    model = run.model.eval()
    result = {"epochs": run.summary["epochs"], "best_epoch": run.summary.get("best_epoch"),
              "best_valid_elbo": run.summary.get("best_valid_elbo"),
              "train_seconds": round(sum(m["seconds"] for m in run.metrics), 1)}
    scores, shared = evaluate(model.direct_log_weights, x_test, args, seed)
    result.update(scores)
    if args.check_evaluator:  # pyrozoo's own evaluator on the same points, other draws
        ll = log_likelihood(model, x_test, num_samples=args.samples, seed=seed + 1000)
        result["check_pyrozoo_log_likelihood"] = round(ll.mean().item(), 4)
        result["check_shared_minus_pyrozoo"] = mean_and_error(shared - ll.double())
        elbo = elbo_terms(model, x_test, num_samples=10, seed=seed)["elbo"]
        result["check_pyrozoo_elbo"] = round(elbo.mean().item(), 4)
    return result


def run_authors(args, seed, x_test, tag, authors):
    """Train their ``VAE`` on pyrozoo's batches and score it with the shared evaluator; returns its result dict."""
    data = truncate(load("mnist", data_dir=args.data_dir), args.train_points)
    model, result = train_authors(authors, data, args, seed, Path(RUNS) / FOLDER / f"{tag}-authors", args.device)
    x = x_test.to(args.device)
    result.update(evaluate(authors_log_weights(authors, model), x, args, seed)[0])
    result["their_test_elbo"] = round(their_elbo(model, x, seed), 4)
    if args.check_evaluator:
        result["check_constants_max_abs_error"] = authors_constant_error(authors, model, x)
        result["check_adapter_vs_their_loss_max_abs_error"] = authors_adapter_error(authors, model, x, seed)
        result["check_same_weights_same_step"] = same_step_error(authors, x[:100])
    return result


def summarise(seeds):
    """Per-seed gaps (authors − pyrozoo, and authors − pyrozoo from their initial weights: ``gap_same_init_*``)
    and their mean ± sd over the seeds that have both models."""
    gaps = {}
    for mine, prefix in (("pyrozoo", "gap_"), ("pyrozoo-same-init", "gap_same_init_")):
        for key in ("test_log_likelihood", "test_elbo"):
            values = []
            for entry in seeds.values():
                if mine in entry and "authors" in entry:
                    entry[f"{prefix}{key}"] = round(entry["authors"][key] - entry[mine][key], 4)
                    values.append(entry[f"{prefix}{key}"])
            if values:
                gaps[f"{prefix}{key}"] = {"mean": round(statistics.mean(values), 4), "n": len(values),
                                          "sd": round(statistics.stdev(values), 4) if len(values) > 1 else None}
    for side in SIDES:
        values = [e[side]["test_log_likelihood"] for e in seeds.values() if side in e]
        if values:
            gaps[f"{side}_test_log_likelihood"] = {"mean": round(statistics.mean(values), 4), "n": len(values),
                                                   "sd": round(statistics.stdev(values), 4) if len(values) > 1
                                                   else None}
    return gaps


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--authors-code", required=True, help="a local checkout of github.com/jmtomczak/vae_vampprior")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--sides", default="pyrozoo,authors",
                   help=f"what to train per seed, from {', '.join(SIDES)}: pyrozoo-same-init is the preset started "
                        "from the authors' initial weights of the seed (the gap then measures the code alone)")
    p.add_argument("--test-points", type=int, default=2000)
    p.add_argument("--samples", type=int, default=5000, help="importance samples S of log p(x)")
    p.add_argument("--train-points", type=int, default=0, help="first N training images (0: all; smoke tests)")
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir")
    p.add_argument("--results", default="vampprior_authors.json",
                   help="results file (a bare name goes to benchmarks/results/)")
    p.add_argument("--check-evaluator", action="store_true",
                   help="also score pyrozoo's model with pyrozoo.evaluation and check the adapter's constants")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    missing = check_authors_code(args.authors_code)
    if missing:
        p.error(f"--authors-code {args.authors_code} is not a checkout of jmtomczak/vae_vampprior: missing "
                f"{', '.join(missing)} (expected {', '.join(AUTHORS_FILES)})")
    args.sides = [x.strip() for x in args.sides.split(",") if x.strip()]
    unknown = [x for x in args.sides if x not in SIDES]
    if unknown or not args.sides:
        p.error(f"--sides takes {', '.join(SIDES)} (comma-separated), got {unknown or args.sides}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    for name in ("epochs", "test_points", "samples"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("warmup", "train_points"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.train_points and args.train_points < BATCH:
        p.error(f"--train-points must be 0 (all) or >= {BATCH}, got {args.train_points}")
    try:
        args.device = torch.device(args.device)
    except RuntimeError:
        p.error(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    args.results = Path(args.results) if Path(args.results).is_absolute() else RESULTS / args.results
    return args


def main(argv=None):
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=r"This overload of add", category=UserWarning)  # their optimiser
    authors = import_authors(args.authors_code)
    x_test = load("mnist", data_dir=args.data_dir).test[:args.test_points].to(args.device)
    budget = [args.epochs, args.warmup, args.test_points, args.samples, args.train_points]
    setup = (f"dynamic MNIST, gated MLPs 300 units, z=40, K={K}, batch {BATCH}, normalised-gradient Adam {LR}, "
             f"warm-up {args.warmup}, {args.epochs} epochs, training points {args.train_points or 'all'}; shared "
             f"evaluator: log p(x) S={args.samples} and ELBO on the first {len(x_test)} test points; threads "
             f"{torch.get_num_threads()}, device {args.device}; budget key [epochs, warmup, test points, samples, "
             f"train points]")
    for seed in args.seeds:
        tag = f"s{seed}-e{args.epochs}-w{args.warmup}" + (f"-n{args.train_points}" if args.train_points else "")
        for side in args.sides:
            done = load_results(args.results).get("seeds", {}).get(str(seed), {}).get(side)
            if done and done.get("budget") == budget:
                print(f"seed {seed} {side}: already done, skipping")
                continue
            if side == "authors":
                result = run_authors(args, seed, x_test, tag, authors)
            else:
                same = side == "pyrozoo-same-init"
                result = run_pyrozoo(args, seed, x_test, tag + ("-same-init" if same else ""),
                                     authors if same else None)
            result["budget"] = budget
            entry = load_results(args.results).get("seeds", {}).get(str(seed), {})
            entry = {k: v for k, v in entry.items() if not k.startswith("gap_")}
            entry[side] = result
            results = save_entry(args.results, "seeds", str(seed), entry, setup=setup)
            results["summary"] = summarise(results["seeds"])  # also writes each seed's gaps
            save_results(args.results, results)
            print(f"seed {seed} {side}: log p(x) {result['test_log_likelihood']:.2f}, ELBO {result['test_elbo']:.2f}, "
                  f"{result['train_seconds']} s training, {result['eval_seconds']} s evaluation", flush=True)
    summary = load_results(args.results).get("summary", {})
    for prefix, what in (("gap_", "pyrozoo"), ("gap_same_init_", "pyrozoo from their initial weights")):
        gap = summary.get(f"{prefix}test_log_likelihood")
        if gap:
            sd = f" ± {gap['sd']:.2f}" if gap["sd"] is not None else ""
            print(f"gap authors − {what}, test log p(x): {gap['mean']:.2f}{sd} nats over {gap['n']} seed(s)")


if __name__ == "__main__":
    main()
