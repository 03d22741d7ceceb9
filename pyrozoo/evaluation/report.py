"""The evaluation report of a trained model: the standard metrics once, and each paper's parts.

:func:`evaluate_report` runs the report *parts* a preset's recipe names (see
:attr:`pyrozoo.zoo.Recipe.report`) and returns one flat dict of metrics; figures go to
``out/figures``. The parts:

=========================  ===============================================================================
``likelihood``             importance-sampled test log p(x) with S samples (Burda et al. 2016; Tomczak &
                           Welling 2018 §5.2); finished batches are kept in ``out/.log_likelihood.partial``
                           so a killed evaluation resumes with the same values
``predictive_likelihood``  the same with a global m integrated out under q(m) (Stein hyperprior), resumable
                           from ``out/.predictive_likelihood.partial``
``elbo``                   test ELBO, reconstruction, KL, active units, PSIS k̂ (200 points)
``figures``                samples, reconstructions, latent means, log-likelihood histogram, k̂ plot
``pseudo_inputs``          VampPrior pseudo-inputs and samples of one component (Tomczak & Welling Fig. 4)
``q_m``                    the Stein mixture q(m): component means and scales, chart diagnostics (separation,
                           per-component ELBO, responsibilities and their agreement with the labels), ``q_m.nc``,
                           a pair plot and the codes of a test batch under each component
``sequence``               teacher-forced and greedy reconstruction accuracy, validity, ``samples.txt``
``geometry``               R-VAE figures in 2D latent spaces: volume measure, a geodesic, Brownian walks
``latent_f1``              macro F1 of a classifier on the latent codes (Kalatzis et al. 2020, Table 3)
``intro_images``           Soft-IntroVAE image metrics: classifier-FID, SVM / k-NN probes, responsibilities
``density2d``              Soft-IntroVAE 2D density scores (gnELBO, histogram KL and JSD) and a figure
=========================  ===============================================================================
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class ReportContext:
    """What the parts share: the model, the data set, where figures go, the settings, and
    results one part leaves for another (``cache``)."""

    model: torch.nn.Module
    dataset: object
    out: Path
    num_samples: int = 5000
    num_points: int | None = None
    grid_size: int = 1024
    quiet: bool = True
    cache: dict = field(default_factory=dict)

    @property
    def figures(self) -> Path:
        path = Path(self.out) / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path


def _points(ctx):
    test = ctx.dataset.test
    return test[:ctx.num_points] if ctx.num_points else test


def _likelihood(ctx):
    from pyrozoo.evaluation.likelihood import log_likelihood
    start = time.perf_counter()
    ll = log_likelihood(ctx.model, _points(ctx), num_samples=ctx.num_samples, progress=not ctx.quiet,
                        resume=Path(ctx.out) / ".log_likelihood.partial")
    ctx.cache["ll"] = ll
    return {"test_log_likelihood": ll.mean().item(), "num_samples": ctx.num_samples, "num_test": len(ll),
            "log_likelihood_seconds": round(time.perf_counter() - start, 2)}


def _predictive_likelihood(ctx):
    from pyrozoo.evaluation.stein import predictive_log_likelihood
    start = time.perf_counter()
    pred = predictive_log_likelihood(ctx.model, _points(ctx), num_samples=ctx.num_samples,
                                     resume=Path(ctx.out) / ".predictive_likelihood.partial")
    ctx.cache["ll"] = pred["log_likelihood"]
    return {"test_log_likelihood": pred["log_likelihood"].mean().item(),
            "test_predictive_elbo": pred["elbo"].mean().item(), "num_samples": ctx.num_samples,
            "num_test": len(pred["log_likelihood"]), "log_likelihood_seconds": round(time.perf_counter() - start, 2)}


def _elbo(ctx):
    from pyrozoo.diagnostics import psis_khat
    from pyrozoo.evaluation.likelihood import active_units, elbo_terms
    test = ctx.dataset.test
    train = getattr(ctx.dataset, "train", None)  # a global latent's KL is shared by the N training points
    terms = elbo_terms(ctx.model, test, num_data=len(train) if train is not None else None)
    au = active_units(ctx.model, test)
    khat = psis_khat(ctx.model, test[:200], num_samples=min(1000, max(ctx.num_samples, 100)))
    ctx.cache["khat"] = khat
    return {"test_elbo": terms["elbo"].mean().item(), "test_reconstruction": terms["reconstruction"].mean().item(),
            "test_kl": terms["kl"].mean().item(), "active_units": {k: v["count"] for k, v in au.items()},
            "psis_khat_mean": khat.mean().item(), "psis_khat_above_0.7": float((khat > 0.7).double().mean())}


@torch.no_grad()
def _figures(ctx):
    from pyrozoo.evaluation.likelihood import distribution_mean
    from pyrozoo.plots import image_grid, khat_plot, latent_scatter, loglik_histogram, reconstructions
    model, test, figures = ctx.model, ctx.dataset.test, ctx.figures
    if ctx.dataset.support != "sequence":
        image_grid(model.sample(64), figures / "samples.png", title="samples from the prior")
        if test.dim() > 2:
            reconstructions(test[:10], model.reconstruct(test[:10]), figures / "reconstructions.png")
    if "ll" in ctx.cache:
        loglik_histogram(ctx.cache["ll"], figures / "loglik_hist.png")
    means = distribution_mean(model.encode(test))
    ctx.cache["means"] = means
    latent_scatter(means, ctx.dataset.labels.get("test"), figures / "latent.png")
    if "khat" in ctx.cache:
        khat_plot(ctx.cache["khat"], figures / "khat.png")
    return {}


@torch.no_grad()
def _pseudo_inputs(ctx):
    """Tomczak & Welling (2018), arXiv:1705.07120, Fig. 4: the pseudo-inputs u_k and samples of q(z|u_0)."""
    from pyrozoo.plots import image_grid
    prior = getattr(ctx.model, "prior", None)
    if not hasattr(prior, "pseudo_inputs") or ctx.dataset.test.dim() <= 2:
        return {}
    image_grid(prior.pseudo_inputs()[:64], ctx.figures / "pseudo_inputs.png", title="pseudo-inputs u_k")
    image_grid(ctx.model.sample(36, z=prior.sample_component(0, 36)), ctx.figures / "samples_pseudo_input_0.png",
               title="samples from q(z|u_0)")
    return {}


def _q_m(ctx, num_points=1000, num_samples=16):
    """The Stein mixture q(m) (design card "VAE with a Stein-Learned Hyperprior", eq. 6): its components, the chart
    diagnostics of :func:`~pyrozoo.inference.charts.chart_metrics` on the first ``num_points`` test points
    (``num_samples`` draws per component), ``q_m.nc`` (ArviZ, with the charts), a pair plot of the means and
    ``figures/charts.png``, the codes of 500 test points under each component."""
    import matplotlib.pyplot as plt

    from pyrozoo.diagnostics import chart_diagnostics, mixture_inference_data, plot_charts, plot_component_means
    from pyrozoo.inference.charts import responsibilities
    x = ctx.dataset.test[:num_points]
    labels = ctx.dataset.labels.get("test")
    labels = None if labels is None or len(labels) != len(ctx.dataset.test) else labels[:len(x)]
    metrics, lw = chart_diagnostics(ctx.model, x, labels, num_samples=num_samples)
    mixture_inference_data(ctx.model, log_weights=lw, labels=labels).to_netcdf(str(Path(ctx.out) / "q_m.nc"))
    ax = plot_component_means(ctx.model)
    ax.figure.savefig(ctx.figures / "q_m_means.png", dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    n = min(500, len(x))
    plot_charts(ctx.model, x[:n], None if labels is None else labels[:n], ctx.figures / "charts.png",
                responsibility=responsibilities(lw[..., :n]))
    mix = ctx.model.q_m()
    loc, scale = mix.loc.detach(), mix.log_scale.detach().exp()
    return {"q_m_loc": loc.tolist(), "q_m_scale": scale.tolist(), "chart_points": len(x),
            "chart_samples": num_samples, **metrics}


@torch.no_grad()
def _sequence(ctx):
    from pyrozoo.data.architectures import decode_types
    from pyrozoo.evaluation.sequence import sequence_metrics, validity
    report = {f"test_{k}": v for k, v in sequence_metrics(ctx.model, ctx.dataset.test).items()}
    report["valid_share_of_samples"] = validity(ctx.model, n=1000)
    lines = [" ".join(t) for t in decode_types(ctx.model.sample(20))]
    (Path(ctx.out) / "samples.txt").write_text("\n".join(lines) + "\n")
    return report


def _geometry(ctx, seed=0):
    """Kalatzis et al. (2020), arXiv:2002.05227, Figs. 3-7, for a 2D latent space: the volume
    measure with the codes, a geodesic interpolation and Brownian walks (learned t and 5 t)."""
    from pyrozoo.evaluation.likelihood import distribution_mean
    from pyrozoo.plots import brownian_plot, interpolation_plot, volume_plot
    model = ctx.model
    if not hasattr(model, "log_volume") or model.z_dim != 2:
        return {}
    codes = ctx.cache.get("means")
    if codes is None:
        with torch.no_grad():
            codes = distribution_mean(model.encode(ctx.dataset.test))
    labels = ctx.dataset.labels.get("test")
    volume_plot(model, codes, labels, ctx.figures / "volume.png")
    g = torch.Generator().manual_seed(seed)
    i, j = torch.randperm(len(codes), generator=g)[:2].tolist()
    interpolation_plot(model, codes[i], codes[j], codes=codes, path=ctx.figures / "geodesic.png")
    t = model.prior.t.item() if hasattr(model.prior, "t") else 1.0
    brownian_plot(model, ctx.figures / "brownian.png", t=t, codes=codes)
    brownian_plot(model, ctx.figures / "brownian_t5.png", t=5 * t, codes=codes)
    return {}


@torch.no_grad()
@torch.no_grad()
def _latent_f1(ctx):
    """Kalatzis et al. (2020), arXiv:2002.05227, Table 3: macro F1 of a small classifier trained on
    the training codes (posterior means) and tested on the test codes."""
    from pyrozoo.evaluation.classifier import latent_f1
    from pyrozoo.evaluation.likelihood import distribution_mean
    labels = ctx.dataset.labels
    if "train" not in labels or "test" not in labels:
        return {}

    def codes(x, batch=1000):
        return torch.cat([distribution_mean(ctx.model.encode(x[i:i + batch])) for i in range(0, len(x), batch)])

    f1 = latent_f1(codes(ctx.dataset.train), labels["train"], codes(ctx.dataset.test), labels["test"])
    return {"latent_f1": f1["average"], "latent_f1_per_class": {str(k): v for k, v in f1["per_class"].items()}}


def _intro_images(ctx, batch_size=500):
    """Athanasiadis et al. (2025), arXiv:2408.13805, §5.2 on images: classifier-FID of prior samples
    (GEN) and reconstructions (REC) against the test images, linear-SVM and k-NN accuracy of the
    latent means, the responsibility entropy and ``figures/latent_prior.png``."""
    from pyrozoo.evaluation.images import classifier_fid, feature_classifier, latent_probes, responsibility_entropy
    from pyrozoo.evaluation.likelihood import distribution_mean
    from pyrozoo.plots import latent_prior_plot
    model, dataset = ctx.model, ctx.dataset
    test, labels = dataset.test, dataset.labels

    def batched(fn, x):
        return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def codes(x):
        return batched(lambda b: distribution_mean(model.encode(b)), x)

    report = {"responsibility_entropy": responsibility_entropy(model, test)}
    test_codes = codes(test)
    if "train" in labels and "test" in labels:
        with torch.enable_grad():
            net = feature_classifier(dataset.name, dataset.train, labels["train"], progress=not ctx.quiet)
        report["classifier_fid_gen"] = classifier_fid(net, test, batched(lambda x: model.sample(len(x)), test))
        report["classifier_fid_rec"] = classifier_fid(net, test, batched(model.reconstruct, test))
        report["feature_classifier_train_accuracy"] = net.train_accuracy
        report.update(latent_probes(codes(dataset.train), labels["train"], test_codes, labels["test"]))
    mix = model.prior()
    means = getattr(mix, "loc", None)
    weights = mix.log_weights.exp() if hasattr(mix, "log_weights") else None
    latent_prior_plot(test_codes, labels.get("test"), means if torch.is_tensor(means) and means.dim() == 2 else None,
                      weights, ctx.figures / "latent_prior.png")
    return report


def _density2d(ctx):
    """Athanasiadis et al. (2025), arXiv:2408.13805, §5.1, Table 1: gnELBO on a ``grid_size``² grid,
    histogram KL and JSD, and ``figures/density.png``."""
    from pyrozoo.evaluation.density2d import evaluate_2d
    from pyrozoo.plots import density_plot
    scores = evaluate_2d(ctx.model, ctx.dataset.name, grid_size=ctx.grid_size)
    density_plot(ctx.model, ctx.dataset.name, ctx.figures / "density.png")
    return scores


#: Parts whose work is shared out over the ranks of a distributed run (the others run on rank 0).
SHARDED_PARTS = ("likelihood", "predictive_likelihood", "elbo")

#: Report parts by name (see the module docstring).
REPORT_PARTS = {"likelihood": _likelihood, "predictive_likelihood": _predictive_likelihood, "elbo": _elbo,
                "figures": _figures, "pseudo_inputs": _pseudo_inputs, "q_m": _q_m, "sequence": _sequence,
                "geometry": _geometry, "latent_f1": _latent_f1, "intro_images": _intro_images,
                "density2d": _density2d}


def evaluate_report(model, dataset, parts, out, num_samples=5000, num_points=None, grid_size=1024,
                    quiet=True) -> dict:
    """Run the report ``parts`` (names of :data:`REPORT_PARTS`, in order) on ``dataset``'s test
    split (the log-likelihood on its first ``num_points``, all by default); figures go to
    ``out/figures``. Returns the metrics as one flat dict. In a distributed run every rank calls
    this: the :data:`SHARDED_PARTS` split their test points over the ranks, the other parts run on
    rank 0, and every rank returns rank 0's report."""
    unknown = [p for p in parts if p not in REPORT_PARTS]
    if unknown:
        raise ValueError(f"unknown report part {unknown[0]!r}; choose from {', '.join(REPORT_PARTS)}")
    from pyrozoo.inference import distributed
    model.eval()
    main = distributed.context().main
    if main:
        Path(out).mkdir(parents=True, exist_ok=True)
    ctx = ReportContext(model, dataset, Path(out), num_samples=num_samples, num_points=num_points,
                        grid_size=grid_size, quiet=quiet or not main)
    report = {}
    for part in parts:
        if main or part in SHARDED_PARTS:  # in a distributed run rank 0 alone draws and writes
            with announce(part, ctx.quiet):
                report.update(REPORT_PARTS[part](ctx))
    return distributed.broadcast_object(report)


@contextmanager
def announce(part: str, quiet: bool):
    """Around a report part: when not ``quiet`` and stderr is a log file or a pipe (where no
    progress bar is drawn), a line as it starts and one with its seconds as it ends."""
    plain = not quiet and not sys.stderr.isatty()
    start = time.perf_counter()
    if plain:
        print(f"evaluate: {part} ...", file=sys.stderr, flush=True)
    yield
    if plain:
        print(f"evaluate: {part} done ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
