import json

import numpy as np
import pytest

from pyrozoo.cli import main


def test_unknown_preset_is_one_line_error_with_choices(capsys):
    assert main(["train", "no-such-model"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "vae" in lines[0]


def test_unknown_dataset_and_bad_values(capsys, tmp_path):
    assert main(["train", "vae", "--dataset", "imagenet"]) == 2
    assert "digits" in capsys.readouterr().err
    assert main(["train", "vae", "--epochs", "0", "--out", str(tmp_path / "r")]) == 2
    assert "epochs" in capsys.readouterr().err
    assert main(["train", "vae", "--device", "tpu", "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_train_evaluate_sample_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "vae", "--epochs", "3", "--eval-samples", "50", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("test_log_likelihood", "test_elbo", "test_kl"):
        assert summary[key] == summary[key] and abs(summary[key]) < 1e4
    assert summary["test_log_likelihood"] >= summary["test_elbo"] - 0.5
    assert summary["active_units"]["z"] >= 0
    for fig in ("samples.png", "reconstructions.png", "latent.png", "khat.png"):
        assert (out / "figures" / fig).stat().st_size > 1000
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    assert json.loads((out / "config.json").read_text())["preset"] == "vae"
    # resume for two more epochs
    assert main(["train", "vae", "--epochs", "5", "--eval-samples", "20", "--out", str(out), "--resume",
                 "--quiet"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 5
    capsys.readouterr()
    figures = {p.name: p.stat().st_mtime_ns for p in (out / "figures").iterdir()}
    assert main(["evaluate", str(out), "--num-samples", "20", "--quiet"]) == 0
    assert json.loads((out / "evaluations" / "s20" / "evaluation.json").read_text())["num_samples"] == 20
    assert "evaluations/s20" in capsys.readouterr().err
    assert main(["sample", str(out), "-n", "9"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "samples" / "n9-seed0")
    assert (out / "samples" / "n9-seed0" / "samples.png").exists()
    assert np.load(out / "samples" / "n9-seed0" / "samples.npy").shape == (9, 1, 8, 8)
    # evaluate and sample never touch the training run's own figures
    assert {p.name: p.stat().st_mtime_ns for p in (out / "figures").iterdir()} == figures
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device")
def test_train_on_cuda(tmp_path):
    out = tmp_path / "cuda"
    assert main(["train", "vae", "--epochs", "2", "--eval-samples", "20", "--device", "cuda", "--out", str(out),
                 "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["test_elbo"] < 0


@pytest.mark.parametrize("preset,extra,objective", [
    ("vae-iaf", ["--flow-steps", "2"], "elbo"), ("iwae", [], "iwae"), ("vae-freebits", [], "free-bits"),
    ("vae", ["--posterior", "planar", "--kl-schedule", "cyclical", "--beta", "2"], "elbo"),
    ("seq-vae", ["--posterior", "iaf", "--flow-steps", "2", "--objective", "elbo"], "elbo"),
    ("seq-vae", [], "free-bits")])
def test_family_presets_train_from_the_command_line(tmp_path, preset, extra, objective):
    out = tmp_path / preset
    assert main(["train", preset, "--epochs", "1", "--eval-samples", "20", "--out", str(out), "--quiet", *extra]) == 0
    config = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert config["options"]["objective"] == objective
    assert summary["test_log_likelihood"] < 0 and summary["test_elbo"] < 0
    if preset == "iwae":
        assert config["options"]["particles"] == 5
    if preset == "seq-vae":
        assert config["dataset"] == "architectures"
        assert 0 <= summary["test_tf_type_accuracy"] <= 1 and 0 <= summary["valid_share_of_samples"] <= 1
    assert main(["evaluate", str(out), "--num-samples", "10", "--quiet"]) == 0  # rebuilds flows from config.json


def test_family_options_are_checked_before_training(tmp_path, capsys):
    assert main(["train", "vae", "--posterior", "gauss"]) == 2
    assert "fullcov" in capsys.readouterr().err
    out = tmp_path / "fb"
    assert main(["train", "vae-iaf", "--objective", "free-bits", "--out", str(out), "--quiet"]) == 2
    assert "diagonal Gaussian" in capsys.readouterr().err
    assert not (out / "metrics.jsonl").exists()
    assert main(["train", "vae", "--free-bits", "0.5", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert main(["train", "vae", "--flow-steps", "3", "--out", str(tmp_path / "y"), "--quiet"]) == 2


@pytest.mark.parametrize("preset,extra", [("hvae-vampprior", ["--normalize-gradients", "--pseudo-inputs", "20"]),
                                          ("vampprior-data", ["--no-normalize-gradients", "--pseudo-inputs", "20"])])
def test_vampprior_presets_train_evaluate_and_draw_pseudo_inputs(tmp_path, preset, extra):
    out = tmp_path / preset
    assert main(["train", preset, "--epochs", "1", "--eval-samples", "20", "--out", str(out), "--quiet", *extra]) == 0
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    # the VampPrior presets normalise gradients by default (§5.1); --no-normalize-gradients turns it off
    assert config["options"]["normalize_gradients"] == ("--no-normalize-gradients" not in extra)
    assert summary["test_log_likelihood"] < 0
    for name in ("pseudo_inputs.png", "samples_pseudo_input_0.png", "loglik_hist.png"):
        assert (out / "figures" / name).exists()
    if preset.startswith("hvae"):
        assert set(summary["active_units"]) == {"z1", "z2"}
    assert main(["evaluate", str(out), "--num-samples", "10", "--quiet"]) == 0


def test_stein_hyperprior_trains_by_smi_from_the_command_line(tmp_path):
    out = tmp_path / "stein"
    assert main(["train", "stein-hyperprior", "--epochs", "2", "--num-components", "3", "--m-dim", "2",
                 "--eval-samples", "50", "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert config["regime"] == "smi" and config["model"]["num_components"] == 3
    assert len(summary["q_m_loc"]) == 3 and len(summary["q_m_loc"][0]) == 2
    # the predictive ELBO (Jensen) lies below the predictive log-likelihood, averaged over the test set
    assert summary["test_predictive_elbo"] <= summary["test_log_likelihood"] < 0
    assert set(summary["active_units"]) == {"z"}  # the global m has no per-point mean
    lines = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [ln["epoch"] for ln in lines] == [1, 2] and all(ln["valid_elbo"] < 0 for ln in lines)
    assert (out / "q_m.nc").exists() and (out / "figures" / "q_m_means.png").exists()
    assert main(["evaluate", str(out), "--num-samples", "10", "--quiet"]) == 0


def test_soft_introvae_game_trains_resumes_and_scores_from_the_command_line(tmp_path):
    out = tmp_path / "intro"
    base = ["train", "sintrovae-prior", "--batch-size", "64", "--warmup-iterations", "10", "--grid-size", "64",
            "--out", str(out), "--quiet"]
    assert main([*base, "--iterations", "20"]) == 0
    assert main([*base, "--iterations", "30", "--resume"]) == 0
    steps = [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [20, 30]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 30 and summary["dataset"] == "8gaussians"
    assert 0 < summary["gnelbo"] < 1 and summary["kl"] > 0 and summary["jsd"] > 0
    assert (out / "figures" / "density.png").exists()
    # the checkpoint holds the game's clipped MoG prior: load_run must rebuild it to sample
    assert main(["sample", str(out), "-n", "4"]) == 0


def test_trainer_specific_flags_are_refused(tmp_path, capsys):
    assert main(["train", "sintrovae", "--epochs", "3", "--out", str(tmp_path / "a")]) == 2
    assert "epochs does not apply to preset 'sintrovae'" in capsys.readouterr().err
    assert main(["train", "stein-hyperprior", "--objective", "iwae", "--out", str(tmp_path / "b")]) == 2
    assert main(["train", "vae", "--particle-lr", "0.1", "--out", str(tmp_path / "c")]) == 2
    assert main(["train", "vae", "--iterations", "10", "--out", str(tmp_path / "d")]) == 2
    assert main(["train", "vae", "--channels", "8,16", "--out", str(tmp_path / "e")]) == 2
    assert "channels is not an option of preset 'vae'" in capsys.readouterr().err
    assert main(["train", "sintrovae", "--milestones", "ten", "--out", str(tmp_path / "f")]) == 2
    assert not any((tmp_path / n).exists() for n in "abcdef")


def test_the_readme_usage_block_lists_exactly_the_parser_flags():
    import re
    from pathlib import Path

    from pyrozoo.cli import build_parser
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Command line", 1)[1].split("```", 2)[1]
    for command in ("train", "evaluate", "sample"):
        lines = block.split(f"pyrozoo {command}", 1)[1].split("\npyrozoo ", 1)[0]
        documented = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", lines))
        sub = build_parser()._subparsers._group_actions[0].choices[command]
        flags = {s for a in sub._actions for s in a.option_strings if s not in ("-h", "--help")}
        primary = {a.option_strings[0] for a in sub._actions if a.option_strings and a.option_strings[0] != "-h"}
        assert documented <= flags, (command, documented - flags)
        assert primary <= documented, (command, primary - documented)
        # every documented choice list is the parser's
        for flag, listed in re.findall(r"(--[\w-]+) ([a-z][\w-]*(?:\|[\w-]+)+)", lines):
            action = next(a for a in sub._actions if flag in a.option_strings)
            assert set(listed.split("|")) == set(action.choices), flag
