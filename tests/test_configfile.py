"""Run configurations as files: every run writes config.yaml, ``pyrozoo train --config`` replays a
run bit for bit, flags override the file, and unknown or misspelt keys are refused by name."""

import json

import pytest
import torch
import yaml

import pyrozoo
from pyrozoo.cli import main
from pyrozoo.runs import read_run_config

FLAGS = ["--epochs", "3", "--z-dim", "3", "--hidden", "24,12", "--lr", "2e-3", "--warmup", "1",
         "--eval-samples", "10", "--quiet"]
TIMINGS = ("train_seconds", "log_likelihood_seconds")


def _state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)


def _metrics(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _summary(run_dir):
    return {k: v for k, v in json.loads((run_dir / "summary.json").read_text()).items() if k not in TIMINGS}


def test_a_run_replays_bit_for_bit_from_its_config_yaml(tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["train", "vae", *FLAGS, "--out", str(first)]) == 0
    written = yaml.safe_load((first / "config.yaml").read_text())
    assert written == json.loads((first / "config.json").read_text())
    assert written["options"]["hidden"] == [24, 12] and written["options"]["lr"] == 2e-3
    assert main(["train", "--config", str(first / "config.yaml"), "--out", str(again)]) == 0
    a, b = _state(first), _state(again)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert _metrics(first) == _metrics(again)
    assert _summary(first) == _summary(again)
    assert (first / "config.yaml").read_text() == (again / "config.yaml").read_text()


def test_flags_override_the_file_and_python_takes_the_file_too(tmp_path):
    source = tmp_path / "vae.yaml"
    source.write_text("preset: vae\ndataset: digits\nepochs: 2\nlr: 5e-4\noptions:\n  z_dim: 3\n  hidden: [16]\n"
                      "  eval_samples: 5\n  quiet: true\n")
    assert main(["train", "--config", str(source), "--epochs", "1", "--z-dim", "2", "--out", str(tmp_path / "a")]) == 0
    options = json.loads((tmp_path / "a" / "config.json").read_text())["options"]
    assert (options["epochs"], options["z_dim"], options["lr"], options["hidden"]) == (1, 2, 5e-4, [16])
    run = pyrozoo.train(config=source, out=tmp_path / "b", evaluate=False, epochs=1)
    assert run.preset == "vae" and run.config["options"]["lr"] == 5e-4 and len(run.metrics) == 1
    assert read_run_config(source) == {"preset": "vae", "dataset": "digits", "derived": {},
                                       "options": {"z_dim": 3, "hidden": [16], "eval_samples": 5, "quiet": True,
                                                   "epochs": 2, "lr": 5e-4}}
    as_json = tmp_path / "vae.json"
    as_json.write_text(json.dumps({"preset": "vae", "options": {"epochs": 1, "quiet": True}}))
    assert pyrozoo.train(config=as_json, out=tmp_path / "c", evaluate=False).config["options"]["epochs"] == 1


@pytest.mark.parametrize("text, key, hint", [
    ("preset: vae\nepoch: 3\n", "'epoch'", "did you mean epochs"),
    ("preset: vae\noptions:\n  lrr: 0.1\n", "'lrr'", "did you mean lr"),
    ("preset: vae\ndatset: mnist\n", "'datset'", "did you mean dataset"),
])
def test_a_misspelt_key_is_refused_naming_it_and_the_valid_keys(tmp_path, capsys, text, key, hint):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"unknown {'option' if 'options' in text else 'key'} {key}" in err and hint in err
    assert "valid" in err and "batch_size" in err and str(path) in err
    with pytest.raises(ValueError, match=key):
        pyrozoo.train(config=path, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, match", [
    ("- vae\n", "must hold a mapping"),
    ("preset: vae\nepochs: [3\n", "is not valid YAML"),
    ("preset: vae\nepochs: three\n", "epochs must be an integer"),
    ("preset: vae\nepochs: 2\noptions:\n  epochs: 3\n", "both at the top level and under options"),
    ("preset: vae\nregime: introspective\n", "is for the introspective regime"),
    ("preset: vae\nmodel: {likelihood: gaussian}\n", "written for a different model"),
    ("epochs: 2\n", "names no preset"),
])
def test_broken_configuration_files_get_one_line_errors(tmp_path, capsys, text, match):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_file_and_the_preset_must_agree(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("preset: vae\n")
    assert main(["train", "iwae", "--config", str(path), "--out", str(tmp_path / "a")]) == 2
    assert "is a configuration of preset 'vae', not 'iwae'" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml does not exist" in capsys.readouterr().err


def test_auto_resume_from_a_config_file_starts_then_continues(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text("preset: vae\nepochs: 2\nz_dim: 2\nhidden: [8]\neval_samples: 2\nquiet: true\n")
    out = tmp_path / "job"
    assert main(["train", "--config", str(path), "--out", str(out), "--auto-resume"]) == 0
    assert len(pyrozoo.load(out).metrics) == 2
    path.write_text(path.read_text().replace("epochs: 2", "epochs: 3"))  # a longer job, the same run
    assert main(["train", "--config", str(path), "--out", str(out), "--auto-resume"]) == 0
    run = pyrozoo.load(out)
    assert [r["epoch"] for r in run.metrics] == [1, 2, 3] and run.config["resumes"][-1]["changed"] == {"epochs": [2, 3]}
    path.write_text(path.read_text().replace("z_dim: 2", "z_dim: 4"))
    assert main(["train", "--config", str(path), "--out", str(out), "--auto-resume"]) == 2
    assert "a resumed run cannot change z_dim" in capsys.readouterr().err


@pytest.mark.parametrize("preset, options", [
    ("stein-hyperprior", dict(epochs=2, num_components=3, m_dim=2, z_dim=3, hidden=[16])),
    ("rvae", dict(phase_epochs=[1, 1], z_dim=2, hidden=[16], num_centres=16)),
    ("sintrovae-prior", dict(iterations=30, warmup_iterations=10, batch_size=64, num_components=4)),
])
def test_every_regime_replays_from_its_config_yaml(tmp_path, preset, options):
    first = pyrozoo.train(preset, out=tmp_path / "first", evaluate=False, quiet=True, **options)
    again = pyrozoo.train(config=first.path / "config.yaml", out=tmp_path / "again", evaluate=False)
    a, b = _state(first.path)["model"], _state(again.path)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _metrics(first.path) == _metrics(again.path)
