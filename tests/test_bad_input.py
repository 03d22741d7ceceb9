"""Bad input gets a one-line ``ValueError`` (exit status 2 from the command line) that names the
problem and what is accepted, before any work, with nothing left behind: the Python API
(metrics, diagnostics, models, zoo), data files and the command line.

Every public function of ``pyrozoo.evaluation``, ``pyrozoo.diagnostics`` and ``pyrozoo.zoo`` has
a case here (``test_every_public_function_has_a_case`` keeps it so); their checks live in
``pyrozoo.checks`` and ``ZooModel.check_data``.

Cases of the run engine covered elsewhere and exercised again only briefly here: bad run options
and their names/types (tests/test_runs.py::test_every_setting_is_checked_before_any_work,
::test_options_are_checked_by_name_and_type_from_python), existing, locked or broken run
directories and checkpoints (tests/test_runs.py, tests/test_loop.py::test_run_directory_modes,
::test_unreadable_checkpoints_get_a_one_line_error), bad training data
(tests/test_loop.py::test_bad_data_is_rejected_before_training) and the README's usage block
against the parser, choice lists included
(tests/test_cli.py::test_the_readme_usage_block_lists_exactly_the_parser_flags). The cases in
:data:`REFUSED_BEFORE` were already refused before the shared checks existed; the others were not.
"""

import gzip
import os
import re
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import pyrozoo
from pyrozoo import data, diagnostics, evaluation, zoo
from pyrozoo.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ctx():
    """Untrained models of each kind and a few digits (the checks come before any numbers)."""
    torch.manual_seed(0)
    digits = data.load("digits")
    x = digits.test[:10]
    return SimpleNamespace(
        x=x, labels=digits.labels["test"][:10], vae=zoo.build("vae", event_shape=(1, 8, 8)),
        hvae=zoo.build("hvae", event_shape=(1, 8, 8)), stein=zoo.build("stein-hyperprior", event_shape=(1, 8, 8)),
        seq=zoo.build("seq-vae", event_shape=(21, 9)), intro=zoo.build("sintrovae", event_shape=(2,)),
        points=torch.randn(50, 2), tmp=None)


def _nan(x):
    x = x.clone()
    x[3, 0, 2, 2] = float("nan")
    return x


def _bad_dtype(dtype):
    return lambda c: evaluation.log_likelihood(c.vae, c.x.to(dtype), num_samples=2)


DTYPE_MATCH = r"data has dtype torch.{}, the model expects torch.float32 \(the dtype of its parameters\); " \
              r"convert the data with data.to\(torch.float32\)"

# (case id "function/what", call on the ctx fixture, regex the one-line message must match)
CASES = [
    # silent wrong results before
    ("psis_khat/num_samples=20", lambda c: diagnostics.psis_khat(c.vae, c.x, num_samples=20),
     r"num_samples must be >= 21 \(PSIS fits a Pareto tail to the largest S/5 weights and needs 5 of them\), got 20"),
    ("psis_khat/num_samples=1", lambda c: diagnostics.psis_khat(c.vae, c.x, num_samples=1), r"must be >= 21"),
    ("psis_khat/num_samples=0", lambda c: diagnostics.psis_khat(c.vae, c.x, num_samples=0), r"must be >= 21"),
    ("active_units/one point", lambda c: evaluation.active_units(c.vae, c.x[:1]),
     r"data has 1 point .*; at least 2 points needed: active units are a variance across points"),
    ("log_likelihood/num_samples=2.5", lambda c: evaluation.log_likelihood(c.vae, c.x, num_samples=2.5),
     r"num_samples must be an integer >= 1, got 2.5"),
    ("reconstruct/flat", lambda c: c.vae.reconstruct(c.x.reshape(10, 64)),
     r"data has shape \(10, 64\), expected \(N, 1, 8, 8\); flattened points must be reshaped: "
     r"data.reshape\(-1, 1, 8, 8\)"),
    ("reconstruct/unbatched", lambda c: c.vae.reconstruct(c.x[0]),
     r"data has shape \(1, 8, 8\), expected \(N, 1, 8, 8\); one point needs its batch dim: data.unsqueeze\(0\)"),
    ("reconstruct/hvae unbatched", lambda c: c.hvae.reconstruct(c.x[0]), r"one point needs its batch dim"),
    # deep tracebacks before: dtypes (never converted), empty data, zero sizes, NaN, another device
    ("log_likelihood/float64", _bad_dtype(torch.float64),
     DTYPE_MATCH.format("float64") + r" or the model with model.to\(torch.float64\)"),
    ("log_likelihood/int64", _bad_dtype(torch.int64), DTYPE_MATCH.format("int64") + "$"),
    ("log_likelihood/float16", _bad_dtype(torch.float16), DTYPE_MATCH.format("float16")),
    ("log_likelihood/bool", _bad_dtype(torch.bool), DTYPE_MATCH.format("bool") + "$"),
    ("reconstruct/float64", lambda c: c.vae.reconstruct(c.x.double()), DTYPE_MATCH.format("float64")),
    ("log_likelihood/numpy", lambda c: evaluation.log_likelihood(c.vae, c.x.numpy()),
     r"data must be a torch.Tensor, got numpy.ndarray; convert with torch.as_tensor\(data, dtype=torch.float32\)"),
    ("log_likelihood/empty", lambda c: evaluation.log_likelihood(c.vae, c.x[:0]),
     r"data has 0 points \(shape \(0, 1, 8, 8\)\); at least one point needed"),
    ("elbo_terms/empty", lambda c: evaluation.elbo_terms(c.vae, c.x[:0]), r"data has 0 points"),
    ("active_units/empty", lambda c: evaluation.active_units(c.vae, c.x[:0]), r"data has 0 points"),
    ("psis_khat/empty", lambda c: diagnostics.psis_khat(c.vae, c.x[:0]), r"data has 0 points"),
    ("to_inference_data/empty", lambda c: diagnostics.to_inference_data(c.vae, c.x[:0]), r"data has 0 points"),
    ("predictive_log_likelihood/empty", lambda c: evaluation.predictive_log_likelihood(c.stein, c.x[:0]),
     r"data has 0 points"),
    ("reconstruct/empty", lambda c: c.vae.reconstruct(c.x[:0]), r"data has 0 points"),
    ("encode/empty", lambda c: c.vae.encode(c.x[:0]), r"data has 0 points"),
    ("log_likelihood/batch_size=0", lambda c: evaluation.log_likelihood(c.vae, c.x, batch_size=0),
     r"batch_size must be >= 1, got 0"),
    ("log_likelihood/chunk_size=0", lambda c: evaluation.log_likelihood(c.vae, c.x, chunk_size=0),
     r"chunk_size must be >= 1, got 0"),
    ("elbo_terms/batch_size=0", lambda c: evaluation.elbo_terms(c.vae, c.x, batch_size=0), r"batch_size must be >= 1"),
    ("to_inference_data/num_samples=0", lambda c: diagnostics.to_inference_data(c.vae, c.x, num_samples=0),
     r"num_samples must be >= 1, got 0"),
    ("reconstruct/NaN", lambda c: c.vae.reconstruct(_nan(c.x)),
     r"data contains NaN or inf values \(first rows: \[3\]\)"),
    ("log_likelihood/NaN", lambda c: evaluation.log_likelihood(c.vae, _nan(c.x)), r"NaN"),
    ("log_likelihood/another device", lambda c: evaluation.log_likelihood(c.vae, c.x.to("meta")),
     r"data is on meta but the model is on cpu; move one of them, e.g. data.to\('cpu'\)"),
    ("sample/n=0", lambda c: c.vae.sample(0), r"n must be >= 1, got 0"),
    ("sample/n=2.5", lambda c: c.hvae.sample(2.5), r"n must be an integer >= 1, got 2.5"),
    ("sample/z of another size", lambda c: c.vae.sample(3, z=torch.zeros(3, 5)),
     r"z has shape \(3, 5\), expected \(N, 8\)"),
    ("sample/m of another count", lambda c: c.stein.sample(3, m=torch.zeros(2, 8)),
     r"m holds 2 rows but n=3 were asked for"),
    ("encode/m of another size", lambda c: c.stein.encode(c.x, m=torch.zeros(3)),
     r"m must be one value of the global latent, a tensor of shape \(8,\), got \(3,\)"),
    # the rest of pyrozoo.evaluation
    ("FeatureNet/event_shape", lambda c: evaluation.FeatureNet((28, 28)), r"FeatureNet takes images \(C, H, W\)"),
    ("classifier_fid/one fake image", lambda c: evaluation.classifier_fid(evaluation.FeatureNet((1, 8, 8)), c.x,
                                                                          c.x[:1]),
     r"fake has 1 point .*at least 2 points needed"),
    ("feature_classifier/lr", lambda c: evaluation.feature_classifier("digits", c.x, c.labels, lr=-1.0,
                                                                      cache_dir=c.tmp), r"lr must be > 0, got -1.0"),
    ("feature_classifier/float labels", lambda c: evaluation.feature_classifier("digits", c.x, c.labels.float(),
                                                                                cache_dir=c.tmp),
     r"labels must be 10 integer labels"),
    ("frechet_distance/one row", lambda c: evaluation.frechet_distance(np.zeros((1, 4)), np.ones((5, 4))),
     r"a must have shape \(n, d\) with n >= 2, got \(1, 4\)"),
    ("frechet_distance/NaN", lambda c: evaluation.frechet_distance(np.ones((3, 4)), np.full((5, 4), np.nan)),
     r"b contains NaN or inf values \(first rows: \[0, 1, 2, 3, 4\]\)"),
    ("latent_probes/k above the codes", lambda c: evaluation.latent_probes(c.points[:10], c.labels, c.points[:10],
                                                                           c.labels, ks=(100,)),
     r"ks must be at most the number of training codes \(10\)"),
    ("latent_probes/one label too few", lambda c: evaluation.latent_probes(c.points[:10], c.labels[:9],
                                                                           c.points[:10], c.labels),
     r"train_labels must be 10 integer labels"),
    ("evaluate_report/unknown part", lambda c: evaluation.evaluate_report(c.vae, None, ("fid",), c.tmp / "r"),
     r"unknown report part 'fid'; choose from likelihood"),
    ("sequence_metrics/flat", lambda c: evaluation.sequence_metrics(c.seq, torch.zeros(4, 21 * 9)),
     r"data has shape \(4, 189\), expected \(N, 21, 9\)"),
    ("validity/n=0", lambda c: evaluation.validity(c.seq, n=0), r"n must be >= 1, got 0"),
    ("latent_f1/epochs=2.5", lambda c: evaluation.latent_f1(c.points[:10], c.labels, c.points[:10], c.labels,
                                                            epochs=2.5), r"epochs must be an integer >= 1, got 2.5"),
    ("latent_f1/NaN codes", lambda c: evaluation.latent_f1(c.points[:10] / 0 * 0, c.labels, c.points[:10], c.labels),
     r"train_z contains NaN"),
    ("active_units/threshold", lambda c: evaluation.active_units(c.vae, c.x, threshold=-1),
     r"threshold must be >= 0, got -1"),
    ("distribution_mean/not a distribution", lambda c: evaluation.distribution_mean(c.x),
     r"distribution_mean needs a distribution \(such as model.encode\(x\)\), got Tensor"),
    ("distribution_mean/num_samples=0", lambda c: evaluation.distribution_mean(c.vae.encode(c.x), num_samples=0),
     r"num_samples must be >= 1, got 0"),
    ("evaluate_2d/grid_size=1", lambda c: evaluation.evaluate_2d(c.intro, "8gaussians", grid_size=1),
     r"grid_size must be >= 2, got 1"),
    ("grid_normalized_elbo/reversed box", lambda c: evaluation.grid_normalized_elbo(lambda p: p.sum(-1), c.points,
                                                                                    (1.0, -1.0)),
     r"box must have high > low, got \(1.0, -1.0\)"),
    ("histogram_kl/points of 3 columns", lambda c: evaluation.histogram_kl(torch.zeros(5, 3), c.points, (-1, 1)),
     r"points must have shape \(n, 2\) with n >= 1, got \(5, 3\)"),
    ("histogram_jsd/NaN", lambda c: evaluation.histogram_jsd(c.points, c.points / 0 * 0, (-1, 1)),
     r"points contains NaN or inf values"),
    ("point_loss/float64", lambda c: evaluation.point_loss(c.intro, c.points.double()),
     DTYPE_MATCH.format("float64")),
    ("predictive_log_likelihood/global_sites", lambda c: evaluation.predictive_log_likelihood(c.stein, c.x,
                                                                                             global_sites="m"),
     r"global_sites must be a tuple of site names such as \('m',\), got 'm'"),
    # the rest of pyrozoo.diagnostics
    ("mixture_inference_data/num_draws=0", lambda c: diagnostics.mixture_inference_data(c.stein, num_draws=0),
     r"num_draws must be >= 1, got 0"),
    ("mixture_inference_data/no q(m)", lambda c: diagnostics.mixture_inference_data(c.vae),
     r"needs a model with a q_m part \(such as stein-hyperprior\).*got VAE"),
    ("plot_component_means/dims", lambda c: diagnostics.plot_component_means(c.stein, dims=(0, 8)),
     r"dims must be two coordinates of m in 0..7, got \(0, 8\)"),
    ("chart_diagnostics/num_samples=0", lambda c: diagnostics.chart_diagnostics(c.stein, c.x, num_samples=0),
     r"num_samples must be >= 1, got 0"),
    ("chart_diagnostics/labels of another length", lambda c: diagnostics.chart_diagnostics(c.stein, c.x, c.labels[:3]),
     r"labels must be 10 integer labels \(one per row\), got shape \(3,\)"),
    ("chart_diagnostics/no q(m)", lambda c: diagnostics.chart_diagnostics(c.vae, c.x),
     r"needs a model with a q_m part \(such as stein-hyperprior\).*got VAE"),
    ("plot_charts/image of another shape", lambda c: diagnostics.plot_charts(c.stein, torch.zeros(10, 1, 4, 4)),
     r"data has shape \(10, 1, 4, 4\), expected \(N, 1, 8, 8\)"),
    ("plot_charts/responsibility", lambda c: diagnostics.plot_charts(c.stein, c.x, responsibility=torch.ones(10, 2)),
     r"responsibility must have shape \(B, M\) = \(10, 5\).*got \(10, 2\)"),
    # pyrozoo.zoo: options named with the preset's valid ones (build already refused most of them)
    ("build/z_dim=2.5", lambda c: zoo.build("vae", z_dim=2.5), r"z_dim must be an integer >= 1, got 2.5"),
    ("build/prior of vae", lambda c: zoo.build("vae", prior="foo"),
     r"prior is not an option of preset 'vae'; its model options are z_dim, hidden, likelihood, posterior"),
    ("build/unknown prior", lambda c: zoo.build("vampprior", prior="foo"),
     r"unknown prior 'foo'; choose from standard, mog, vampprior, vampprior-data, vampprior-weighted"),
    ("build/event_shape", lambda c: zoo.build("vae", event_shape=64),
     r"event_shape must be a non-empty tuple of positive integers such as \(1, 28, 28\), got 64"),
    ("build/num_bins=2.5", lambda c: zoo.build("vampprior", likelihood="dlogistic", num_bins=2.5),
     r"num_bins must be an integer >= 2, got 2.5"),
    ("build/flat training images", lambda c: zoo.build("vampprior-data", data=c.x.reshape(10, 64)),
     r"data has shape \(10, 64\), expected \(N, 1, 8, 8\); flattened points"),
    ("needs_data/unknown preset", lambda c: zoo.needs_data("vea"), r"unknown preset 'vea'; choose from vae"),
    ("recipe/unknown preset", lambda c: zoo.recipe("vea"), r"unknown preset 'vea'; choose from vae"),
    ("train_defaults/unknown preset", lambda c: zoo.train_defaults("vea"), r"unknown preset 'vea'"),
    ("register/unknown regime", lambda c: zoo.register("x", "x", regime="sgd")(lambda event_shape: None),
     r"preset 'x': unknown regime 'sgd'; choose from svi, smi, two-phase, introspective"),
    ("Recipe/unknown report part", lambda c: zoo.Recipe("x", "x", lambda event_shape: None, report=("fid",)),
     r"unknown report part 'fid'"),
    ("with_prior/not a name", lambda c: zoo.with_prior(zoo.gated_vae, 5),
     r"prior must be the name of a prior part, got 5"),
    ("mlp_vae/z_dim=2.5", lambda c: zoo.mlp_vae((1, 8, 8), z_dim=2.5), r"z_dim must be an integer >= 1, got 2.5"),
    ("mlp_vae/hidden=(2.5,)", lambda c: zoo.mlp_vae((1, 8, 8), hidden=(2.5,)),
     r"hidden\[0\] must be an integer >= 1, got 2.5"),
    ("make_prior/z_dim=2.5", lambda c: zoo.make_prior("mog", 2.5), r"z_dim must be an integer >= 1, got 2.5"),
    ("gated_vae/event_shape", lambda c: zoo.gated_vae((1, 8.5, 8)), r"event_shape must be a non-empty tuple"),
    ("hvae/z_dim=0", lambda c: zoo.hvae((1, 8, 8), z_dim=0), r"z_dim must be >= 1, got 0"),
    ("convhvae/z_dim=2.5", lambda c: zoo.convhvae((1, 28, 28), z_dim=2.5), r"z_dim must be an integer >= 1"),
    ("riemannian_vae/z_dim=2.5", lambda c: zoo.riemannian_vae((1, 8, 8), z_dim=2.5), r"z_dim must be an integer"),
    ("intro_vae/z_dim=2.5", lambda c: zoo.intro_vae((2,), z_dim=2.5), r"z_dim must be an integer >= 1, got 2.5"),
    ("intro_config/iterations=2.5", lambda c: zoo.intro_config("sintrovae", "8gaussians", iterations=2.5),
     r"iterations must be an integer >= 1, got 2.5"),
    ("stein_hyperprior_vae/m_dim=2.5", lambda c: zoo.stein_hyperprior_vae((1, 8, 8), m_dim=2.5),
     r"m_dim must be an integer >= 1, got 2.5"),
    ("flow_prior_vae/num_flows=0", lambda c: zoo.flow_prior_vae((1, 8, 8), num_flows=0),
     r"num_flows must be >= 1, got 0"),
]

#: Cases of CASES that pyrozoo refused (with these messages) before the shared checks existed.
REFUSED_BEFORE = {"log_likelihood/NaN", "evaluate_report/unknown part", "validity/n=0", "build/z_dim=2.5",
                  "build/prior of vae", "build/unknown prior", "needs_data/unknown preset", "recipe/unknown preset",
                  "train_defaults/unknown preset", "register/unknown regime", "Recipe/unknown report part",
                  "intro_config/iterations=2.5"}


@pytest.mark.parametrize("call, match", [pytest.param(f, m, id=i) for i, f, m in CASES])
def test_bad_input_gets_a_one_line_value_error(ctx, tmp_path, call, match):
    ctx.tmp = tmp_path
    before = {k: v.clone() for k, v in ctx.vae.state_dict().items()}
    with pytest.raises(ValueError, match=match) as err:
        call(ctx)
    assert "\n" not in str(err.value)
    assert all(torch.equal(v, ctx.vae.state_dict()[k]) for k, v in before.items())
    assert not list(tmp_path.iterdir())  # no cached classifier, no report folder


def test_every_public_function_has_a_case():
    """Each public function (and class) of the three packages is in CASES, except ``presets()``
    (no arguments) and ``ReportContext`` (a container that evaluate_report fills)."""
    covered = {case[0].split("/")[0] for case in CASES} | {"encode", "reconstruct", "sample"}
    public = {name for module in (evaluation, diagnostics, zoo) for name in module.__all__
              if callable(getattr(module, name)) and not isinstance(getattr(module, name), dict)}
    assert public - covered == {"presets", "ReportContext"}
    assert REFUSED_BEFORE <= {case[0] for case in CASES}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_data_on_another_device_than_the_model_on_cuda(ctx):
    model = zoo.build("vae", event_shape=(1, 8, 8)).to("cuda")
    with pytest.raises(ValueError, match=r"data is on cpu but the model is on cuda:0; move one of them"):
        evaluation.log_likelihood(model, ctx.x, num_samples=2)
    with pytest.raises(ValueError, match=r"data is on cuda:0 but the model is on cpu"):
        ctx.vae.reconstruct(ctx.x.cuda())
    assert evaluation.log_likelihood(model, ctx.x.cuda(), num_samples=2).device.type == "cuda"


def test_good_input_passes_the_same_checks(ctx):
    """The checks refuse only what is wrong: the same calls on good input give numbers."""
    assert diagnostics.psis_khat(ctx.vae, ctx.x, num_samples=21).isfinite().all()
    assert evaluation.active_units(ctx.vae, ctx.x[:2])["z"]["variance"].isfinite().all()
    assert evaluation.log_likelihood(ctx.vae, ctx.x, num_samples=np.int64(2)).shape == (10,)
    assert ctx.vae.reconstruct(ctx.x).shape == ctx.x.shape and ctx.hvae.sample(2).shape == (2, 1, 8, 8)
    assert ctx.stein.encode(ctx.x, m=torch.zeros(8)).batch_shape == (10,)
    assert evaluation.histogram_kl(ctx.points, ctx.points, (-3, 3)) == pytest.approx(0.0, abs=1e-9)


# -- data files ----------------------------------------------------------------------------------
def _idx(n, truncate=0):
    """An IDX image file of ``n`` blank 28x28 images, ``truncate`` bytes short."""
    raw = struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28) + bytes(n * 784)
    return raw[:len(raw) - truncate]


@pytest.mark.parametrize("kind, named", [
    ("truncated .gz", "train-images-idx3-ubyte.gz is truncated or corrupt (EOFError"),
    ("not a .gz", "train-images-idx3-ubyte.gz is truncated or corrupt (BadGzipFile"),
    (".gz of a truncated file", "train-images-idx3-ubyte.gz holds an incomplete train-images-idx3-ubyte"),
    ("truncated decompressed file", "train-images-idx3-ubyte is truncated: 15596 bytes, its header promises 15696"),
])
def test_a_broken_mnist_file_is_named_and_leaves_nothing_behind(tmp_path, capsys, kind, named):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    archive, target = raw / "train-images-idx3-ubyte.gz", raw / "train-images-idx3-ubyte"
    if kind == "truncated .gz":
        whole = gzip.compress(_idx(20))
        archive.write_bytes(whole[:len(whole) // 2])
    elif kind == "not a .gz":
        archive.write_bytes(b"<html>not found</html>")
    elif kind == ".gz of a truncated file":
        archive.write_bytes(gzip.compress(_idx(20, truncate=100)))
    else:
        target.write_bytes(_idx(20, truncate=100))
    before = sorted(p.name for p in raw.iterdir())
    with pytest.raises(data.DataFileError, match="--download") as err:
        data.load("mnist", data_dir=tmp_path)
    assert isinstance(err.value, ValueError) and str(raw / named) in str(err.value)
    assert sorted(p.name for p in raw.iterdir()) == before  # no .tmp, no partial file
    out = tmp_path / "run"
    assert main(["train", "vae", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0]
    assert not out.exists() and sorted(p.name for p in raw.iterdir()) == before


def test_two_processes_decompressing_the_same_archive_each_put_a_whole_file_in_place(tmp_path, monkeypatch):
    """A second process (another pid) decompresses the archive while the first is half-way through
    writing it: each writes its own temporary file, both finish, and the file in place is whole."""
    from pyrozoo.data import images
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    whole = _idx(20)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(whole))
    real_copy, pid, nested = images.shutil.copyfileobj, images.os.getpid(), []

    def interleaved(src, dst, *a, **k):
        if not nested:  # the first process has opened its temporary file: the second runs to the end now
            nested.append(True)
            monkeypatch.setattr(images.os, "getpid", lambda: pid + 1)
            images._decompress_raw(tmp_path, "MNIST")
            monkeypatch.setattr(images.os, "getpid", lambda: pid)
        return real_copy(src, dst, *a, **k)

    monkeypatch.setattr(images.shutil, "copyfileobj", interleaved)
    images._decompress_raw(tmp_path, "MNIST")
    assert nested and (raw / "train-images-idx3-ubyte").read_bytes() == whole
    assert not [p for p in raw.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize("loader", [pyrozoo.load, pyrozoo.from_pretrained])
def test_a_broken_config_json_is_named(tmp_path, loader):
    (tmp_path / "config.json").write_text('{"preset": "vae", ')
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'config.json'} is not valid JSON")):
        loader(tmp_path)


# -- the command line ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    pyrozoo.train("vae", out=out, epochs=1, evaluate=False, quiet=True)
    return out


def test_out_inside_a_file_is_refused(tmp_path, capsys, run_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for argv in (["train", "vae", "--quiet"], ["evaluate", str(run_dir), "--quiet", "--num-samples", "2"],
                 ["sample", str(run_dir), "-n", "2"]):
        assert main([*argv, "--out", str(blocker / "out")]) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and str(blocker) in lines[0], (argv, lines)
    assert blocker.read_text() == "" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.parametrize("how", ["chmod", "simulated"])
def test_out_in_an_unwritable_folder_is_refused(tmp_path, capsys, monkeypatch, how):
    locked = tmp_path / "locked"
    locked.mkdir()
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        locked.chmod(0o555)
    else:  # as a user without write permission sees it
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode))
    try:
        assert main(["train", "vae", "--quiet", "--out", str(locked / "run")]) == 2
    finally:
        locked.chmod(0o755)
    assert f"{locked} is not writable; choose another output folder" in capsys.readouterr().err
    assert not list(locked.iterdir())


@pytest.mark.parametrize("flag, value, read", [("--lr", "-1e-3", "lr must be > 0, got -0.001"),
                                               ("--lr", "-1E+3", "lr must be > 0, got -1000.0"),
                                               ("--beta", "-.5e-3", "beta must be >= 0, got -0.0005"),
                                               ("--free-bits", "-2e0", "free_bits must be >= 0, got -2.0")])
def test_negative_numbers_in_scientific_notation_are_values(tmp_path, capsys, flag, value, read):
    """Each value is read as the flag's number (then refused by its range), not as an option."""
    out = tmp_path / "r"
    assert main(["train", "vae", "--quiet", "--out", str(out), flag, value]) == 2
    assert read in capsys.readouterr().err and not out.exists()


def test_negative_counts_of_evaluate_and_sample_are_values(capsys, run_dir):
    assert main(["evaluate", str(run_dir), "--num-samples", "-5", "--quiet"]) == 2
    assert "got -5" in capsys.readouterr().err
    assert main(["sample", str(run_dir), "-n", "-4"]) == 2
    assert "n must be an integer >= 1, got -4" in capsys.readouterr().err
    assert not (run_dir / "evaluations").exists() and not (run_dir / "samples").exists()


def test_the_readme_names_the_kernels_the_parser_accepts():
    """The README once listed ``ppk``; it must list exactly the kernel names (the general check of
    every choice list is tests/test_cli.py::test_the_readme_usage_block_lists_exactly_the_parser_flags)."""
    from pyrozoo.inference.kernels import KERNELS
    readme = (REPO / "README.md").read_text()
    assert f"[--kernel {'|'.join(KERNELS)}]" in readme and "ppk" not in readme
